"""The worker's router: each registered (event, action) pair goes to its family's handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.bot.events import FAMILIES, Family
from app.flows.events import (
    check_runs,
    closed_pulls,
    comments,
    dispatch,
    installations,
    reviews,
)
from app.flows.events.common import Delivery, Event

__all__ = ["ACCOUNT_HANDLERS", "REPOSITORY_HANDLERS", "Route", "routes"]

#: Families about one repository (``Family.repository``): family name → handler.
REPOSITORY_HANDLERS: Mapping[str, Callable[[Delivery], Awaitable[str]]] = MappingProxyType(
    {
        "comments": comments.handle,
        "dispatch": dispatch.handle,
        "check_runs": check_runs.handle,
        "closed_pulls": closed_pulls.handle,
        "reviews": reviews.handle,
    }
)
#: Families about the whole installation (no repository, no sender checks).
ACCOUNT_HANDLERS: Mapping[str, Callable[[Event], Awaitable[str]]] = MappingProxyType(
    {"installations": installations.handle}
)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one (event, action) goes: exactly one of the two handlers is set."""

    family: Family
    repository: Callable[[Delivery], Awaitable[str]] | None = None
    account: Callable[[Event], Awaitable[str]] | None = None


def routes(families: tuple[Family, ...] = FAMILIES) -> dict[tuple[str, str | None], Route]:
    """(event, action) → :class:`Route` for every registered pair.

    Raises:
        LookupError: the registry names a family that has no handler here; add its module
            to :data:`REPOSITORY_HANDLERS` or :data:`ACCOUNT_HANDLERS`.
    """
    table: dict[tuple[str, str | None], Route] = {}
    for family in families:
        handlers = REPOSITORY_HANDLERS if family.repository else ACCOUNT_HANDLERS
        if family.name not in handlers:
            raise LookupError(
                f"the event family {family.name!r} ({family.event}) is registered in "
                "app/bot/events.py but app/flows/events/router.py has no handler "
                f"for it among the {'repository' if family.repository else 'account'} handlers"
            )
        route = (
            Route(family, repository=REPOSITORY_HANDLERS[family.name])
            if family.repository
            else Route(family, account=ACCOUNT_HANDLERS[family.name])
        )
        for action in family.actions:
            table[(family.event, action)] = route
    return table
