"""Candidate generation: key order, partial and covering variants, what is turned away up front."""

from __future__ import annotations

from app.engine.advisor.candidates import CandidateSet, covered_by, generate
from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Candidate, Index, IndexKey, Query
from tests.fakes import column, snapshot, table

POSTS = table(
    "posts",
    2e5,
    column("id"),
    column("user_id", distinct=2e4),
    column("blog_id", distinct=500),
    column("created_at"),
    column("status", "text", distinct=3),
    column("meta", "jsonb", btree=False),
)


def run(*sqls: str, indexes: tuple[Index, ...] = (), calls: int = 1) -> CandidateSet:
    catalog = Catalog(snapshot(POSTS, indexes=indexes))
    analyzed = [analyze(Query(s, calls=calls), catalog) for s in sqls]
    return generate([a for a in analyzed if isinstance(a, Analyzed)], catalog)


def labels(cs: CandidateSet) -> set[str]:
    return {c.label() for c in cs.candidates}


def test_equalities_first_most_selective_first_then_range() -> None:
    cs = run("SELECT id FROM posts WHERE blog_id = $1 AND user_id = $2 AND created_at > $3")
    assert "public.posts (user_id, blog_id, created_at)" in labels(cs)
    assert "public.posts (blog_id, user_id, created_at)" not in labels(cs)
    assert "public.posts (user_id, blog_id)" in labels(cs)
    assert "public.posts (user_id, created_at)" in labels(cs)


def test_sort_keys_follow_equalities_and_direction_is_normalised() -> None:
    cs = run("SELECT * FROM posts WHERE user_id = $1 ORDER BY created_at DESC LIMIT 10")
    assert "public.posts (user_id, created_at)" in labels(cs)  # read backwards for DESC


def test_mixed_directions_are_kept() -> None:
    cs = run("SELECT * FROM posts ORDER BY blog_id DESC, created_at LIMIT 10")
    assert "public.posts (blog_id, created_at DESC)" in labels(cs)


def test_partial_candidate_for_constant_predicate() -> None:
    sql = "SELECT * FROM posts WHERE status = 'pending' ORDER BY created_at LIMIT $1"
    cs = run(sql, calls=20)
    assert "public.posts (created_at) WHERE status = 'pending'" in labels(cs)
    assert cs.evidence == {
        "status = 'pending'": "all 20 calls of this statement use status = 'pending'"
    }


def test_one_sampled_literal_is_a_key_not_a_partial_predicate() -> None:
    cs = run("SELECT * FROM posts WHERE user_id = 42 ORDER BY created_at DESC LIMIT 1000")
    assert labels(cs) == {
        "public.posts (user_id)",
        "public.posts (user_id, created_at)",
        "public.posts (created_at)",
    }
    assert not any(c.where for c in cs.candidates) and cs.evidence == {}


def test_is_null_is_written_into_the_statement_and_needs_no_sample_count() -> None:
    cs = run("SELECT id FROM posts WHERE user_id = $1 AND created_at IS NULL")
    assert "public.posts (user_id) WHERE created_at IS NULL" in labels(cs)
    assert cs.evidence == {}  # nothing to say: no value was sampled


def test_covering_candidate_for_narrow_reads() -> None:
    cs = run("SELECT id FROM posts WHERE user_id = $1")
    assert "public.posts (user_id) INCLUDE (id)" in labels(cs)


def test_json_column_is_never_a_btree_key() -> None:
    cs = run("SELECT * FROM posts WHERE meta = $1")
    assert not cs.candidates
    assert any("no B-tree operator class" in r.reason for r in cs.rejected)


def test_candidate_covered_by_existing_index_prefix_is_rejected_with_its_name() -> None:
    existing = Index("public", "posts_user_blog", "public.posts", ("user_id", "blog_id"))
    cs = run("SELECT * FROM posts WHERE user_id = $1", indexes=(existing,))
    assert "public.posts (user_id)" not in labels(cs)
    assert any(r.reason == "covered by existing index posts_user_blog" for r in cs.rejected)


def test_invalid_or_partial_existing_index_does_not_cover() -> None:
    invalid = Index("public", "bad", "public.posts", ("user_id",), valid=False)
    partial = Index("public", "part", "public.posts", ("user_id",), where="(status = 'x'::text)")
    cand = Candidate("public.posts", (IndexKey("user_id"),))
    assert covered_by(cand, [invalid, partial]) is None


def test_direction_must_match_for_multicolumn_cover() -> None:
    existing = Index(
        "public", "i", "public.posts", ("blog_id", "created_at"), descending=(False, False)
    )
    mixed = Candidate(
        "public.posts", (IndexKey("blog_id"), IndexKey("created_at", descending=True))
    )
    assert covered_by(mixed, [existing]) is None
    flipped = Candidate("public.posts", (IndexKey("blog_id", True), IndexKey("created_at", True)))
    assert covered_by(flipped, [existing]) is existing


def test_candidate_serves_every_statement_that_mentions_its_leading_key() -> None:
    cs = run(
        "SELECT * FROM posts WHERE user_id = $1",
        "SELECT * FROM posts WHERE user_id = $1 AND blog_id = $2",
    )
    single = next(c for c in cs.candidates if c.label() == "public.posts (user_id)")
    assert cs.serves[single] == frozenset({0, 1})


def test_the_evidence_threshold_is_a_setting() -> None:
    catalog = Catalog(snapshot(POSTS))
    sql = "SELECT * FROM posts WHERE user_id = 42 ORDER BY created_at LIMIT 9"
    stmt = analyze(Query(sql), catalog)
    assert isinstance(stmt, Analyzed)
    strict = generate([stmt], catalog)
    lenient = generate([stmt], catalog, min_constant_calls=1)
    assert "public.posts (created_at) WHERE user_id = 42" not in labels(strict)
    assert "public.posts (created_at) WHERE user_id = 42" in labels(lenient)
    assert lenient.evidence == {"user_id = 42": "all 1 call of this statement use user_id = 42"}
