"""The webhook (event, action) pairs DB Architect acts on, by family: pure data, no I/O.

The receiver (``app.web.envelope``) reads :data:`ACCEPTED_EVENTS` to decide what to queue,
and the worker's router (``app.flows.events.router``) binds each family to its handler
module, so the two can never disagree about which deliveries have a job.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCEPTED_EVENTS", "DISPATCH_EVENT_TYPE", "FAMILIES", "Family", "family_of"]

#: The ``event_type`` a ``repository_dispatch`` must carry to start an audit.
DISPATCH_EVENT_TYPE = "db-architect-audit"


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of delivery: its handler module under ``app.flows.events`` and what it takes."""

    name: str
    event: str
    actions: frozenset[str]
    #: Whether it acts on one repository (installation events act on the whole account).
    repository: bool = True


FAMILIES: tuple[Family, ...] = (
    Family("comments", "issue_comment", frozenset({"created"})),
    Family("dispatch", "repository_dispatch", frozenset({DISPATCH_EVENT_TYPE})),
    Family("check_runs", "check_run", frozenset({"rerequested", "requested_action"})),
    Family(
        "installations",
        "installation",
        frozenset({"created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"}),
        repository=False,
    ),
    Family(
        "installations",
        "installation_repositories",
        frozenset({"added", "removed"}),
        repository=False,
    ),
    Family("closed_pulls", "pull_request", frozenset({"closed"})),
    Family("reviews", "pull_request_review", frozenset({"submitted"})),
    Family("reviews", "pull_request_review_comment", frozenset({"created"})),
)

#: (X-GitHub-Event, action) pairs a job exists for; everything else is acknowledged and dropped.
ACCEPTED_EVENTS: frozenset[tuple[str, str]] = frozenset(
    (family.event, action) for family in FAMILIES for action in family.actions
)

_BY_PAIR: dict[tuple[str, str], Family] = {
    (family.event, action): family for family in FAMILIES for action in family.actions
}


def family_of(event: str, action: str | None) -> Family | None:
    """The family that handles (event, action), or None when no job exists for it."""
    return None if action is None else _BY_PAIR.get((event, action))
