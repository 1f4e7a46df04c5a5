"""``repository_dispatch``: an audit asked for by a workflow or script, with its options."""

from __future__ import annotations

import structlog

from app.flows.events.common import Delivery

__all__ = ["handle"]

log = structlog.get_logger(__name__)


async def handle(d: Delivery) -> str:
    """Queue the audit the dispatch's ``client_payload`` describes, or say what is wrong.

    Only the ``event_type`` of ``registry.DISPATCH_EVENT_TYPE`` is routed here.
    """
    try:
        tables, dry_run, min_confidence = _options(d.payload.get("client_payload"))
    except ValueError as err:
        log.warning("dispatch_refused", problem=str(err))
        return f"refused: client_payload {err}"
    return await d.audit(
        "dispatch", d.sender, dry_run=dry_run, tables=tables, min_confidence=min_confidence
    )


def _options(options: object) -> tuple[tuple[str, ...], bool | None, float | None]:
    """``tables`` (list or comma-separated), ``dry_run`` and ``min_confidence`` (≥ 0.8)."""
    if options in (None, ""):
        return (), None, None
    if not isinstance(options, dict):
        raise ValueError("must be an object")
    tables = options.get("tables") or ()
    if isinstance(tables, str):
        tables = [t.strip() for t in tables.split(",") if t.strip()]
    if not isinstance(tables, list | tuple) or not all(isinstance(t, str) for t in tables):
        raise ValueError("`tables` must be a list of names or a comma-separated string")
    dry_run = options.get("dry_run")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise ValueError("`dry_run` must be true or false")
    bar = options.get("min_confidence")
    if bar is not None and (
        isinstance(bar, bool) or not isinstance(bar, int | float) or not 0.8 <= bar <= 1
    ):
        raise ValueError("`min_confidence` must be a number from 0.8 to 1")
    return tuple(tables), dry_run, None if bar is None else float(bar)
