"""The inbox recovery loop: deliveries kept while Redis was down are enqueued once it is back."""

from __future__ import annotations

import asyncio

import psycopg
import structlog

from app.adapters.store import Store
from app.web.state import DeliveryQueue, QueueUnavailable

__all__ = ["BATCH", "requeue_pending", "run_recovery"]

log = structlog.get_logger(__name__)

#: Deliveries re-enqueued per turn at most (the next turn takes the rest).
BATCH = 200


async def requeue_pending(
    store: Store, queue: DeliveryQueue, *, older_than_s: float, limit: int = BATCH
) -> int:
    """Enqueue unfinished inbox deliveries again; returns how many jobs were new in Redis.

    A delivery whose job is still queued, running or kept is not enqueued twice: its job id
    is its delivery id, and an existing id wins. Each turn is one SELECT, one Redis round
    trip and one UPDATE; when Redis fails, no attempt is counted (nothing backs off).

    Raises:
        psycopg.Error: the store is unreachable.
    """
    pending = await store.pending_deliveries(older_than_s=older_than_s, limit=limit)
    if not pending:
        return 0
    try:
        created = await queue.enqueue_many(pending)
    except QueueUnavailable as err:
        log.warning("inbox.requeue_failed", reason=str(err), pending=len(pending))
        return 0
    await store.note_requeued([d.delivery_id for d in pending])
    enqueued = sum(created)
    log.info("inbox.requeued", enqueued=enqueued, already_queued=len(pending) - enqueued)
    return enqueued


async def run_recovery(store: Store, queue: DeliveryQueue, interval_s: float) -> None:
    """Every ``interval_s``, enqueue what is due again; survives store and Redis outages.

    Runs until cancelled (the app's lifespan cancels it at shutdown).
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            await requeue_pending(store, queue, older_than_s=interval_s)
        except psycopg.Error as err:
            log.warning("inbox.recovery_failed", error=type(err).__name__)
        except Exception:
            log.exception("inbox.recovery_crashed")
