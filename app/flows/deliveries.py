"""Act on one accepted webhook delivery: route it to its event family's handler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.adapters.github.models import RepoRef
from app.bot.events import DISPATCH_EVENT_TYPE
from app.flows.events.common import Delivery, DeliveryDeps, Event, Lifecycle
from app.flows.events.router import Route, routes

__all__ = ["DISPATCH_EVENT_TYPE", "DeliveryDeps", "Lifecycle", "handle"]

_ROUTES: Mapping[tuple[str, str | None], Route] = routes()


async def handle(job: Mapping[str, Any], deps: DeliveryDeps) -> str:
    """Do what the delivery asks and return a short outcome for the inbox and the logs."""
    event, action = str(job["event"]), job.get("action")
    payload: Mapping[str, Any] = job.get("payload") or {}
    route = _ROUTES.get((event, action))
    if route is not None and route.account is not None:
        return await route.account(Event(job, payload, deps, event, action))
    installation_id = job.get("installation_id")
    if installation_id is None or not job.get("repository"):
        return "ignored: no installation or repository"
    if deps.lifecycle is not None and await deps.lifecycle.is_paused(int(installation_id)):
        return "ignored: installation suspended"
    owner, name = str(job["repository"]).split("/", 1)
    sender = payload.get("sender") or {}
    if sender.get("login") == deps.bot_login:
        return "ignored: our own event"
    if route is None or route.repository is None:
        return f"ignored: {event}.{action}"
    delivery = Delivery(
        job,
        payload,
        deps,
        event,
        action,
        repo=RepoRef(int(installation_id), owner, name),
        sender=str(sender["login"]) if sender.get("login") else None,
        from_person=sender.get("type") == "User",
    )
    return await route.repository(delivery)
