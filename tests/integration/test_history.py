"""The store read back for people (PostgreSQL 18): audits, ledger, feedback, speed-ups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.adapters.history import History
from app.adapters.memory import FeedbackRow, LedgerEntry, Memory
from app.adapters.store import Store, open_store
from tests.report_json import measured_query

REPO, OTHER = "acme/shop", "acme/blog"


def report(*recs: tuple[str, str, float, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "version": 1,
        "recommendations": [
            {"id": rid, "action": "create_index", "table": table, "confidence": conf, "queries": qs}
            for rid, table, conf, qs in recs
        ],
    }


@pytest.fixture
def store_dsn(fresh_store: str) -> str:
    return fresh_store


@pytest.fixture
async def store(store_dsn: str) -> AsyncIterator[Store]:
    async with await open_store(store_dsn, max_size=2) as opened:
        yield opened


async def finished(store: Store, repository: str, rep: dict[str, Any] | None) -> int:
    audit_id = await store.start_audit(repository, 42, "comment", "alice", dry_run=False)
    summary = {"title": "1 pull request opened", "conclusion": "neutral", "results": {}}
    await store.finish_audit(audit_id, "done", summary, rep)
    return audit_id


async def test_audits_page_newest_first_and_filter_by_repository(store: Store) -> None:
    ids = [await finished(store, REPO if n % 2 else OTHER, None) for n in range(7)]
    running = await store.start_audit(REPO, 42, "dispatch", None, dry_run=True)
    history = History(store)

    first = await history.audits(limit=3)
    assert [a.id for a in first] == [running, ids[6], ids[5]]
    assert first[0].status == "running" and first[0].duration_s is None
    assert first[1].title == "1 pull request opened" and first[1].conclusion == "neutral"
    assert first[1].duration_s is not None and first[1].duration_s >= 0
    more = await history.audits(limit=3, before=first[-1].id)
    assert [a.id for a in more] == [ids[4], ids[3], ids[2]]
    shop = await history.audits(repository=REPO, limit=100)
    assert {a.repository for a in shop} == {REPO} and len(shop) == 4
    assert await history.audits(limit=0) != []  # bounded below by 1, not an error


async def test_one_audit_with_its_report_and_speedups(store: Store) -> None:
    rep = report(
        (
            "create_index:aa",
            "public.accounts",
            0.91,
            [measured_query(12.0, 0.3), measured_query(2.0, 2.1, write=True)],
        ),
        (
            "create_index:bb",
            "public.members",
            0.84,
            [measured_query(6.0, 1.5), measured_query(4.0, 0.5)],
        ),
        ("drop_index:cc", "public.orders", 0.5, []),
    )
    audit_id = await finished(store, REPO, rep)
    history = History(store)

    detail = await history.audit(audit_id)
    assert detail is not None and detail.audit.recommendations == 3
    assert (
        detail.report is not None and detail.report["recommendations"][0]["id"] == "create_index:aa"
    )
    assert detail.summary["conclusion"] == "neutral"
    assert await history.audit(audit_id + 1000) is None

    speedups = await history.speedups()
    assert [(s.rec_id, s.before_ms, s.after_ms) for s in speedups] == [
        ("create_index:aa", 12.0, 0.3),  # the write is left out: it is a cost, not a speed-up
        ("create_index:bb", 10.0, 2.0),
    ]
    assert speedups[0].ratio == pytest.approx(40.0)
    assert await history.speedups(repository=OTHER) == []


async def test_ledger_feedback_learned_and_ignores(store: Store) -> None:
    memory = Memory(store)
    await memory.upsert_recommendation(LedgerEntry(
        REPO, "aa", "create_index:aa", "create_index", "public.accounts", "pr_open", 0.9,
        {"measured_speedup": 0.35}, 12, descriptor="add index on accounts (email)",
    ))  # fmt: skip
    await memory.upsert_recommendation(
        LedgerEntry(
            OTHER, "bb", "create_index:bb", "create_index", "public.posts", "merged", 0.86, None, 3
        )
    )
    await memory.add_feedback(
        [
            FeedbackRow(REPO, "review", fingerprint="aa", author="carol", body="x" * 900,
                        classification="reject", reason="changes requested: write load"),
            FeedbackRow(REPO, "merge", fingerprint="bb", classification="accept", reason="merged",
                        embedding=[1.0] + [0.0] * 383),
        ]
    )  # fmt: skip
    await memory.add_ignore(REPO, "fingerprint", "aa", "carol")
    history = History(store)

    ledger = await history.recommendations()
    assert [(r.fingerprint, r.state, r.pr_number) for r in ledger] == [
        ("bb", "merged", 3),
        ("aa", "pr_open", 12),
    ]
    assert ledger[1].breakdown == {"measured_speedup": 0.35}
    assert ledger[1].descriptor == "add index on accounts (email)"
    assert [r.fingerprint for r in await history.recommendations(state="pr_open")] == ["aa"]

    said = await history.feedback(repository=REPO)
    assert [f.classification for f in said] == ["accept", "reject"]
    assert said[1].body is not None and len(said[1].body) == 500
    assert [f.embedded for f in said] == [True, False]

    learned = {item.classification: item for item in await history.learned()}
    assert learned["reject"].count == 1 and learned["reject"].embedded == 0
    assert learned["reject"].recent_reasons == ("changes requested: write load",)
    assert learned["accept"].embedded == 1

    (ignore,) = await history.ignores()
    assert (ignore.repository, ignore.kind, ignore.value, ignore.author) == (
        REPO,
        "fingerprint",
        "aa",
        "carol",
    )
