"""The pure audit end to end on the toy planner, and its three renderings."""

from __future__ import annotations

from app.engine.audit import audit, recommendation_id
from app.engine.model import Index, Query
from app.engine.render import to_json, to_markdown, to_text
from tests.fakes import NOW, FakeOracle, column, snapshot, table

SNAP = snapshot(
    table("posts", 2e5, column("id"), column("user_id", distinct=200), column("email", "text")),
    indexes=[
        Index("public", "posts_user_id_idx", "public.posts", ("user_id",), size_bytes=4 << 20),
        Index("public", "posts_user_id_2", "public.posts", ("user_id",), size_bytes=4 << 20),
    ],
)
QUERIES = [
    Query("SELECT * FROM posts WHERE id = 42", calls=30),
    Query("SELECT * FROM posts WHERE email = 'ann@example.com'", calls=5),
    Query("SELECT 1"),
]


def run() -> dict[str, object]:
    return to_json(audit(SNAP, QUERIES, FakeOracle(SNAP), now=NOW))


def test_report_contract_and_redaction() -> None:
    report = run()
    assert report["version"] == 1
    assert report["workload"] == {"statements": 3, "analyzed": 2, "skipped": 1}
    recs = report["recommendations"]
    assert isinstance(recs, list)
    creates = {tuple(r["columns"]) for r in recs if r["action"] == "create_index"}
    assert creates == {("id",), ("email",)}
    drops = [r for r in recs if r["action"] == "drop_index"]
    assert [r["index_name"] for r in drops] == ["posts_user_id_idx"]  # the shorter name stays
    text = str(report)
    assert "ann@example.com" not in text and "42" not in text  # literal values never shown


def test_ids_are_stable_and_distinct() -> None:
    first, second = run(), run()
    ids = [r["id"] for r in first["recommendations"]]  # type: ignore[index]
    assert ids == [r["id"] for r in second["recommendations"]]  # type: ignore[index]
    assert len(set(ids)) == len(ids)


def test_text_and_markdown_name_every_recommendation_and_skip() -> None:
    report = audit(SNAP, QUERIES, FakeOracle(SNAP), now=NOW)
    text, markdown = to_text(report), to_markdown(report)
    for rec in report.recommendations:
        assert rec.ddl in text and rec.ddl in markdown
        assert recommendation_id(rec) in text
    assert "reads no table" in text and "reads no table" in markdown
