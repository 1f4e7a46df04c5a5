"""Envelope parsing (strict on the fields we read), the allow-list and the delivery job argument."""

from __future__ import annotations

import contextlib
import json
import random

import msgspec
import pytest

from app.adapters.queue import dumps, loads
from app.web.envelope import (
    ACCEPTED_EVENTS,
    BadPayload,
    Delivery,
    Envelope,
    accepts,
    check_decodable,
    delivery_from,
    parse_envelope,
)
from tests.fuzz_bodies import mutated
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
    "body",
    [
        {"action": 7},
        {"installation": {"id": "42"}},
        {"sender": {"login": "bob", "type": 1}},
        {"action": "created", "installation": [42]},
        {"repository": "acme/shop"},
        {"installation": {"id": True}},
        {"installation": {"id": 2**70}, "action": "created"},
        {"installation": {"id": -1}},
        {"repository": {"id": 1.5, "full_name": "a/b"}},
        {"repository": {"full_name": "acme/sh\x00op"}},
        {"action": "created\x00"},
        {"sender": {"login": "\x00"}},
    ],
)
def test_fields_we_read_of_unexpected_types_values_or_with_nul_are_refused(
    body: dict[str, object],
) -> None:
    with pytest.raises(BadPayload):
        parse_envelope(json.dumps(body).encode())


def test_the_largest_bigint_and_nulls_read_as_given() -> None:
    assert parse_envelope(b'{"installation": {"id": 9223372036854775807}}') == Envelope(
        installation_id=2**63 - 1
    )
    assert parse_envelope(b'{"action": null, "installation": null}') == Envelope()


@pytest.mark.parametrize(
    "body",
    [
        b'{"sender":{"type":5},',
        b"0,",
        b"[" * 1000 + b"]" * 1000,
        b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"action": "\\ud800"}',
        b'{"action": "a\x00b"}',
        b'{"action": "\xff"}',
    ],
)
def test_malformed_bodies_are_refused_with_bad_payload_only(body: bytes) -> None:
    with pytest.raises(BadPayload):
        parse_envelope(body)


@pytest.mark.parametrize(
    "body", [b'{"x": "\xff"}', b'{"x": 1e999}', b'{"x": [' + b"[" * 3000 + b"]" * 3001 + b"}"]
)
def test_what_the_envelope_skips_is_still_checked_before_a_delivery_is_kept(body: bytes) -> None:
    with contextlib.suppress(BadPayload):  # the skim may or may not see it...
        parse_envelope(body)
    with pytest.raises(BadPayload):  # ...the whole decode does
        check_decodable(body)


def test_duplicate_keys_read_as_the_worker_reads_them() -> None:
    body = b'{"action": "created", "repository": {"full_name": "a/b"}, "action": "deleted"}'

    assert parse_envelope(body).action == msgspec.json.decode(body)["action"] == "deleted"


def test_a_fuzzed_body_is_read_or_refused_never_crashes() -> None:
    rng = random.Random(13)
    seeds = [
        json.dumps(p).encode() for p in (issue_comment("/audit"), installation_event("created"))
    ]
    for _ in range(2000):
        body = mutated(rng, rng.choice(seeds))
        with contextlib.suppress(BadPayload):
            parse_envelope(body)
            check_decodable(body)


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
