"""Lenient envelope parsing, the (event, action) allow-list and the delivery job argument."""

from __future__ import annotations

import json

import pytest

from app.adapters.queue import dumps, loads
from app.web.envelope import (
    ACCEPTED_EVENTS,
    BadPayload,
    Delivery,
    Envelope,
    accepts,
    delivery_from,
    parse_envelope,
)
from tests.payloads import installation_event, issue_comment, repository_dispatch


def test_the_routing_fields_of_a_real_shaped_payload() -> None:
    body = json.dumps(issue_comment("/audit")).encode()

    assert parse_envelope(body) == Envelope(
        action="created",
        installation_id=42,
        repository="acme/shop",
        repository_id=118,
        sender="alice",
        sender_type="User",
    )


def test_missing_fields_read_as_none() -> None:
    assert parse_envelope(b"{}") == Envelope()
    assert parse_envelope(b'{"zen": "Design for failure.", "hook_id": 1}') == Envelope()
    envelope = parse_envelope(json.dumps(installation_event("created")).encode())
    assert (envelope.action, envelope.installation_id, envelope.repository) == (
        "created",
        42,
        None,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"action": 7, "installation": {"id": "42"}, "sender": {"login": "bob", "type": 1}},
            Envelope(sender="bob"),
        ),
        (
            {"action": "created", "installation": [42], "repository": "acme/shop"},
            Envelope(action="created"),
        ),
        ({"action": None, "installation": {"id": True}}, Envelope()),
        ({"installation": {"id": 2**70}, "action": "created"}, Envelope(action="created")),
        ({"installation": {"id": 2**63 - 1}}, Envelope(installation_id=2**63 - 1)),
        ({"installation": {"id": -1}}, Envelope()),
        ({"repository": {"id": 1.5, "full_name": "a/b"}}, Envelope(repository="a/b")),
    ],
)
def test_fields_of_unexpected_types_read_as_missing_and_the_rest_is_kept(
    body: dict[str, object], expected: Envelope
) -> None:
    assert parse_envelope(json.dumps(body).encode()) == expected


@pytest.mark.parametrize(
    "body", [b"", b"{", b"not json", b"\xff\xfe", b"[]", b"42", b'"x"', b"null"]
)
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(BadPayload):
        parse_envelope(body)


def test_the_allow_list() -> None:
    assert accepts("issue_comment", "created")
    assert accepts("repository_dispatch", "db-architect-audit")
    assert accepts("installation_repositories", "removed")
    assert not accepts("issue_comment", "edited")
    assert not accepts("repository_dispatch", "something-else")
    assert not accepts("ping", None)
    assert not accepts("installation", None)
    assert accepts("pull_request_review", "submitted")
    assert accepts("pull_request_review_comment", "created")
    assert not accepts("pull_request_review", "dismissed")
    assert len(ACCEPTED_EVENTS) == 14


def test_the_job_argument_is_json_and_round_trips() -> None:
    payload = repository_dispatch({"tables": ["orders"], "dry_run": True})
    body = json.dumps(payload, indent=2).encode()
    delivery = delivery_from("d-1", "repository_dispatch", parse_envelope(body), body)

    job = loads(dumps(delivery.to_job()))

    assert job["payload"] == payload
    assert job["action"] == "db-architect-audit"
    assert job["sender_type"] == "Bot"
    back = Delivery.from_job(job)
    assert back.to_job() == delivery.to_job()
    assert json.loads(back.payload) == payload


def test_the_enqueued_job_is_what_arq_would_store() -> None:
    from arq.jobs import deserialize_job

    from app.adapters.queue import DELIVERY_JOB
    from app.web.state import delivery_job_bytes

    body = json.dumps(issue_comment("/audit"), indent=1).encode()
    delivery = delivery_from("d-2", "issue_comment", parse_envelope(body), body)

    job = deserialize_job(delivery_job_bytes(delivery, 1_700_000_000_000), deserializer=loads)

    assert job.function == DELIVERY_JOB
    assert job.args == [delivery.to_job()]
    assert job.kwargs == {}
    assert job.job_try is None
    assert job.enqueue_time.timestamp() == 1_700_000_000
