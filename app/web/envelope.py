"""The few fields of a webhook delivery we route on, read leniently from GitHub's JSON body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from app.adapters.store import Delivery
from app.bot.events import ACCEPTED_EVENTS

__all__ = [
    "ACCEPTED_EVENTS",
    "BadPayload",
    "Delivery",
    "Envelope",
    "accepts",
    "check_decodable",
    "delivery_from",
    "parse_envelope",
]


def accepts(event: str, action: str | None) -> bool:
    """Whether a job handles this (event, action); GitHub keeps adding both, so default to no."""
    return action is not None and (event, action) in ACCEPTED_EVENTS


class BadPayload(ValueError):
    """The body is not a webhook payload: not a JSON object, or a field we read is amiss."""


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
_TOO_DEEP = (
    "the body nests JSON deeper than Python can decode (GitHub's payloads nest a few levels)"
)


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
    """Read the routing fields of ``body``, which must have the types GitHub documents.

    Only the few fields we use are checked (GitHub adds and drops others all the time);
    everything else is skipped without being built.

    Raises:
        BadPayload: the body is not JSON, not a JSON object, nests absurdly deep, or a field
            we read has another type, is out of range or holds a NUL (which PostgreSQL text
            cannot store).
    """
    try:
        parsed = _DECODER.decode(body)
    except msgspec.ValidationError as err:
        raise BadPayload(f"the body is not a webhook payload as GitHub sends it: {err}") from None
    except msgspec.DecodeError as err:
        raise BadPayload(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise BadPayload(_TOO_DEEP) from None
    inst, repo, sender = parsed.installation, parsed.repository, parsed.sender
    envelope = Envelope(
        action=parsed.action,
        installation_id=inst.id if inst else None,
        repository=repo.full_name if repo else None,
        repository_id=repo.id if repo else None,
        sender=sender.login if sender else None,
        sender_type=sender.type if sender else None,
    )
    for name in ("action", "repository", "sender", "sender_type"):
        value = getattr(envelope, name)
        if value is not None and "\x00" in value:
            raise BadPayload(
                f"the payload's {name} holds a NUL character, which no GitHub name has"
            )
    return envelope


def check_decodable(body: bytes) -> None:
    """Make sure the whole body decodes as the delivery job will decode it.

    :func:`parse_envelope` skips the fields it does not read without validating all of them
    (invalid UTF-8 in a skipped string, a number beyond a double); a delivery that is kept
    and queued must not fail later, in the worker, for that.

    Raises:
        BadPayload: some part of the body does not decode.
    """
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise BadPayload(f"the body is not valid JSON throughout: {err}") from None
    except RecursionError:
        raise BadPayload(_TOO_DEEP) from None


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
