"""A recommendation's PR identity and texts: branch, title, commit, body, hidden metadata."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import pytest

from app.bot.pulls.evidence_md import MAX_CHARS, evidence_markdown
from app.bot.pulls.fixpr import (
    BRANCH_PREFIX,
    MAX_TITLE,
    TRIMMED_NOTE,
    PrMeta,
    branch_name,
    commit_message,
    fingerprint,
    pr_body,
    pr_title,
    read_meta,
)
from app.engine.model import Recommendation, recommendation_id
from app.engine.proof.confidence import Assessment, Confidence
from app.engine.report import Report
from tests.fakes import column, snapshot, table

CREATE = Recommendation(
    "create_index",
    "public.orders",
    ("customer_id",),
    "orders_customer_id_idx",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx "
    "ON public.orders USING btree (customer_id)",
    reasons=("serves 2 statements of the workload",),
)
WIDE = dataclasses.replace(
    CREATE,
    columns=("customer_id", "created_at"),
    descending=(False, True),
    include=("total",),
    index_name="orders_customer_id_created_at_idx",
)
PARTIAL = dataclasses.replace(CREATE, where="deleted_at IS NULL")
UNUSED = Recommendation(
    "drop_index",
    "public.orders",
    ("status",),
    "orders_status_idx",
    "DROP INDEX CONCURRENTLY IF EXISTS public.orders_status_idx",
    rule="unused_index",
    definition="CREATE INDEX orders_status_idx ON public.orders USING btree (status)",
)
DUPLICATE = dataclasses.replace(
    UNUSED, index_name="orders_status_idx1", rule="duplicate_index", extra={"exact": 1.0}
)
COVERED = dataclasses.replace(DUPLICATE, extra={"exact": 0.0})
REINDEX = Recommendation(
    "reindex",
    "sales.events",
    ("kind",),
    "events_kind_idx",
    "REINDEX INDEX CONCURRENTLY sales.events_kind_idx",
    rule="invalid_index",
)
META = PrMeta(
    fingerprint=fingerprint(CREATE),
    rec_id=recommendation_id(CREATE),
    action="create_index",
    table="public.orders",
    revision="3f9a1c2b0d4e",
    confidence=0.91,
    audit_id=42,
)
GIT_REF_BAD = re.compile(r"\.\.|@\{|[\x00-\x20~^:?*\[\\]|//|/\.|\.lock(/|$)|[./]$")


def test_fingerprint_is_the_hex_of_the_id() -> None:
    assert recommendation_id(CREATE) == f"create_index:{fingerprint(CREATE)}"
    assert re.fullmatch(r"[0-9a-f]{8}", fingerprint(CREATE))


def test_branch_names() -> None:
    fp = fingerprint(CREATE)
    assert branch_name(CREATE) == f"db-architect/add-index/orders-{fp}"
    assert branch_name(UNUSED) == f"db-architect/drop-index/orders-{fingerprint(UNUSED)}"
    assert branch_name(REINDEX) == f"db-architect/reindex/sales.events-{fingerprint(REINDEX)}"
    assert branch_name(WIDE) != branch_name(CREATE)  # same table, another fingerprint


@pytest.mark.parametrize(
    "table_name",
    [
        'public."Order Items"',
        "app..weird",
        "s.tbl.lock",
        ".hidden",
        "public.заказы",
        "x" * 300,
        "public.a~b^c:d?e*f[g]\\h@{i}",
    ],
)
def test_branch_names_are_valid_git_refs(table_name: str) -> None:
    name = branch_name(dataclasses.replace(CREATE, table=table_name))
    assert name.startswith(BRANCH_PREFIX + "add-index/")
    assert len(name) <= 100
    assert not GIT_REF_BAD.search(name), name
    assert re.fullmatch(r"[A-Za-z0-9._/-]+", name)
    assert name.endswith("-" + fingerprint(dataclasses.replace(CREATE, table=table_name)))


def test_create_titles() -> None:
    assert pr_title(CREATE) == "perf(db): add index on orders (customer_id)"
    assert pr_title(WIDE) == (
        "perf(db): add index on orders (customer_id, created_at DESC) INCLUDE (total)"
    )
    assert (
        pr_title(PARTIAL) == "perf(db): add index on orders (customer_id) WHERE deleted_at IS NULL"
    )
    other = dataclasses.replace(CREATE, table="sales.orders", using="gin", columns=("tags",))
    assert pr_title(other) == "perf(db): add GIN index on sales.orders (tags)"


def test_long_predicates_are_cut_at_a_word() -> None:
    where = " AND ".join(f"flag_{i} IS NOT NULL" for i in range(20))
    title = pr_title(dataclasses.replace(WIDE, where=where))
    assert len(title) <= MAX_TITLE
    assert title.startswith("perf(db): add index on orders (customer_id, created_at DESC)")
    assert " WHERE flag_0 IS NOT NULL AND" in title and title.endswith("…")
    assert not re.search(r"flag_\d+ IS NOT N…$|flag_…$", title)  # cut between words


def test_very_long_keys_still_fit() -> None:
    keys = tuple(f"a_really_long_column_name_{i}" for i in range(8))
    title = pr_title(dataclasses.replace(CREATE, columns=keys, include=("x", "y")))
    assert len(title) <= MAX_TITLE and title.endswith("…")


def test_drop_and_reindex_titles() -> None:
    assert pr_title(UNUSED) == "perf(db): drop unused index orders_status_idx on orders"
    assert pr_title(DUPLICATE) == "perf(db): drop duplicate index orders_status_idx1 on orders"
    assert pr_title(COVERED) == "perf(db): drop redundant index orders_status_idx1 on orders"
    assert pr_title(REINDEX) == "perf(db): reindex invalid index events_kind_idx on sales.events"


def test_titles_differ_per_fingerprint() -> None:
    recs = [CREATE, WIDE, PARTIAL, UNUSED, DUPLICATE, REINDEX]
    assert len({pr_title(r) for r in recs}) == len(recs)


def test_commit_message() -> None:
    message = commit_message(CREATE, "migrations/versions/3f9a1c2b0d4e_orders.py")
    subject, blank, *body = message.splitlines()
    assert subject == pr_title(CREATE) and blank == ""
    assert "migrations/versions/3f9a1c2b0d4e_orders.py" in body[0]
    assert recommendation_id(CREATE) in message
    assert body[-1] == "Drafted by DB Architect; nothing is applied until a human merges."


# ---------------------------------------------------------------------- body and metadata


def report() -> Report:
    snap = snapshot(table("orders", 1e6, column("id"), column("customer_id", distinct=5000)))
    assessment = Assessment(Confidence(0.91, {"measured_speedup": 0.35}))
    return Report(
        snap,
        3,
        (),
        (),
        (CREATE,),
        (),
        "fake",
        0,
        assessments={recommendation_id(CREATE): assessment},
    )


def test_body_is_evidence_then_configuration_then_marker() -> None:
    evidence = evidence_markdown(report(), CREATE)
    body = pr_body(evidence, META, slug="acme-db")
    assert body.startswith(evidence.rstrip("\n"))
    config = body.index("### Configuration")
    assert body.index("Close this PR without merging") > config
    assert "will not propose this change again unless the recommendation changes" in body
    assert "refreshed only when the recommendation or its evidence changes" in body
    assert "<details><summary>DB Architect commands and options</summary>" in body
    assert "**acme-db[bot]**" in body
    last = body.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"<!-- db-architect:meta [A-Za-z0-9+/=]+ -->", last)
    assert read_meta(body) == META
    assert "Dry run" not in body


def test_dry_run_note_comes_first() -> None:
    body = pr_body("### Add index\n", META, dry_run_note=True)
    assert body.startswith("> [!NOTE]\n> **Dry run**")


def test_marker_is_compact_json() -> None:
    body = pr_body("x", META)
    encoded = re.findall(r"db-architect:meta (\S+) -->", body)[0]
    data = json.loads(base64.b64decode(encoded))
    assert data == {**dataclasses.asdict(META)} and data["version"] == 1
    assert ": " not in base64.b64decode(encoded).decode()


def test_meta_round_trip_without_audit_id() -> None:
    meta = dataclasses.replace(META, audit_id=None, confidence=1)
    assert read_meta(pr_body("x", meta)) == meta


def _marker(payload: object) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"<!-- db-architect:meta {base64.b64encode(raw).decode()} -->"


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "no marker here",
        "<!-- db-architect:meta !!!not-base64 -->",
        "<!-- db-architect:meta QUJD -->",  # base64 of "ABC": not JSON
        _marker(b"\xff\xfe"),
        _marker([1, 2]),
        _marker({**dataclasses.asdict(META), "version": 2}),
        _marker({**dataclasses.asdict(META), "confidence": "high"}),
        _marker({**dataclasses.asdict(META), "confidence": True}),
        _marker({**dataclasses.asdict(META), "audit_id": "42"}),
        _marker({k: v for k, v in dataclasses.asdict(META).items() if k != "rec_id"}),
    ],
)
def test_read_meta_is_tolerant(body: str | None) -> None:
    assert read_meta(body) is None


def test_read_meta_takes_the_last_marker() -> None:
    other = dataclasses.replace(META, audit_id=7)
    body = f"quoted by someone: {_marker(dataclasses.asdict(other))}\n\n" + pr_body("x", META)
    assert read_meta(body) == META


def test_long_evidence_is_trimmed_cleanly_and_keeps_the_marker() -> None:
    block = "```text\n" + "\n".join(f"plan line {i}" for i in range(40)) + "\n```\n\n"
    evidence = (
        "### Add index on public.orders (customer_id)\n\n<details><summary>Plans</summary>\n\n"
    )
    evidence += block * 400
    assert len(evidence) > MAX_CHARS
    body = pr_body(evidence, META, dry_run_note=True)
    assert len(body) <= MAX_CHARS
    assert read_meta(body) == META and body.rstrip().endswith("-->")
    assert TRIMMED_NOTE in body and "### Configuration" in body
    before_note = body[: body.index(TRIMMED_NOTE)]
    assert before_note.count("```") % 2 == 0  # the cut code block was closed
    assert before_note.count("<details>") == before_note.count("</details>")
    assert all(
        line == "" or line.startswith(("plan line", "```", "###", "<", ">"))
        for line in before_note.splitlines()
    )  # cut at a line boundary


def test_short_evidence_is_left_alone() -> None:
    evidence = evidence_markdown(report(), CREATE)
    assert TRIMMED_NOTE not in pr_body(evidence, META)
