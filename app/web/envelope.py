"""The few fields of a webhook delivery we route on, read leniently from GitHub's JSON body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import msgspec

from app.adapters.store import Delivery

__all__ = [
    "ACCEPTED_EVENTS",
    "BadPayload",
    "Delivery",
    "Envelope",
    "accepts",
    "delivery_from",
    "parse_envelope",
]

#: (X-GitHub-Event, action) pairs a job exists for; everything else is acknowledged and dropped.
ACCEPTED_EVENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("issue_comment", "created"),
        ("repository_dispatch", "db-architect-audit"),
        ("check_run", "rerequested"),
        ("check_run", "requested_action"),
        ("installation", "created"),
        ("installation", "deleted"),
        ("installation", "suspend"),
        ("installation", "unsuspend"),
        ("installation", "new_permissions_accepted"),
        ("installation_repositories", "added"),
        ("installation_repositories", "removed"),
        ("pull_request", "closed"),
        ("pull_request_review", "submitted"),
        ("pull_request_review_comment", "created"),
    }
)


def accepts(event: str, action: str | None) -> bool:
    """Whether a job handles this (event, action); GitHub keeps adding both, so default to no."""
    return action is not None and (event, action) in ACCEPTED_EVENTS


class BadPayload(ValueError):
    """The body is not a JSON object (GitHub always sends one)."""


#: GitHub ids are PostgreSQL bigints in the store; anything else reads as missing.
_MAX_ID = 2**63 - 1
_Id = Annotated[int, msgspec.Meta(ge=0, le=_MAX_ID)]


class _Installation(msgspec.Struct):
    id: _Id | None = None


class _Repository(msgspec.Struct):
    id: _Id | None = None
    full_name: str | None = None


class _Sender(msgspec.Struct):
    login: str | None = None
    type: str | None = None


class _Body(msgspec.Struct):
    """The top of a payload; msgspec skips every other field without building it."""

    action: str | None = None
    installation: _Installation | None = None
    repository: _Repository | None = None
    sender: _Sender | None = None


_DECODER = msgspec.json.Decoder(_Body)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Routing fields of one payload; any of them may be missing (``ping`` has none)."""

    action: str | None = None
    installation_id: int | None = None
    repository: str | None = None
    repository_id: int | None = None
    sender: str | None = None
    sender_type: str | None = None


def parse_envelope(body: bytes) -> Envelope:
    """Read the routing fields of ``body``; a field of an unexpected type reads as missing.

    Strict schema validation would refuse many real payloads (GitHub adds and drops fields),
    so only the shape of the few fields we use is checked, and only leniently.

    Raises:
        BadPayload: the body is not JSON, or not a JSON object.
    """
    try:
        parsed = _DECODER.decode(body)
    except msgspec.ValidationError:
        return _parse_loosely(body)
    except msgspec.DecodeError as err:
        raise BadPayload(f"the body is not valid JSON: {err}") from None
    inst, repo, sender = parsed.installation, parsed.repository, parsed.sender
    return Envelope(
        action=parsed.action,
        installation_id=inst.id if inst else None,
        repository=repo.full_name if repo else None,
        repository_id=repo.id if repo else None,
        sender=sender.login if sender else None,
        sender_type=sender.type if sender else None,
    )


def _parse_loosely(body: bytes) -> Envelope:
    """The slow path for a body whose fields have unexpected types: keep what fits."""
    data = msgspec.json.decode(body)
    if not isinstance(data, dict):
        raise BadPayload(f"the body is JSON but not an object (a {type(data).__name__})")
    inst, repo, sender = (
        _mapping(data.get(key)) for key in ("installation", "repository", "sender")
    )
    return Envelope(
        action=_text(data.get("action")),
        installation_id=_integer(inst.get("id")),
        repository=_text(repo.get("full_name")),
        repository_id=_integer(repo.get("id")),
        sender=_text(sender.get("login")),
        sender_type=_text(sender.get("type")),
    )


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_ID:
        return value
    return None


def delivery_from(delivery_id: str, event: str, envelope: Envelope, body: bytes) -> Delivery:
    """The inbox row and job argument for an accepted request (``body`` as signed)."""
    return Delivery(
        delivery_id=delivery_id,
        event=event,
        action=envelope.action,
        installation_id=envelope.installation_id,
        repository=envelope.repository,
        sender=envelope.sender,
        sender_type=envelope.sender_type,
        payload=body,
    )
