"""`dbarchitect audit` as a person runs it: a real process, real servers, exit codes, output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from app.adapters.pgserver import PgServer, free_port

SEED = """
CREATE TABLE accounts AS
  SELECT g AS id, 'user' || g || '@example.com' AS email, (g % 50) AS plan
  FROM generate_series(1, 100000) g;
ANALYZE accounts
"""
WORKLOAD = "SELECT * FROM accounts WHERE email = $1;\nSELECT 1;\nSELECT * FROM WHERE;\n"


def dbarchitect(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def target15(pg15: PgServer) -> str:
    dsn = pg15.create_database("cli_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        for statement in SEED.split(";\n"):
            conn.execute(statement.encode())
    return dsn


def test_json_report_follows_the_contract(target15: str, tmp_path: Path) -> None:
    queries = tmp_path / "workload.sql"
    queries.write_text(WORKLOAD)
    done = dbarchitect("audit", "--dsn", target15, "--queries", str(queries), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == 2
    assert report["target"]["hypopg"] is True
    assert report["workload"] == {
        "statements": 3,
        "analyzed": 1,
        "skipped": 2,
        "sources": {"file": 3},
    }
    assert report["slow_statements"] == []
    (rec,) = report["recommendations"]
    assert rec["id"].startswith("create_index:") and len(rec["id"]) == len("create_index:") + 8
    assert (rec["action"], rec["table"], rec["columns"]) == (
        "create_index",
        "public.accounts",
        ["email"],
    )
    assert rec["ddl"].startswith("CREATE INDEX CONCURRENTLY accounts_email_idx ON public.accounts")
    assert {"include", "where", "using", "index_name", "confidence", "queries", "reasons"} <= set(
        rec
    )
    assert rec["queries"][0]["before"]["cost"] > rec["queries"][0]["after"]["cost"]
    assert {s["reason"] for s in report["skipped_queries"]} >= {"reads no table"}
    assert rec["descending"] == [False]
    # Not validated: the report says so, why, and how to measure it.
    assert rec["measurement"]["method"] == "estimate-only"
    assert rec["measurement"]["cause"] == "not-configured"
    assert "--validate-dsn" in rec["measurement"]["reason"]


def test_text_report_reads_queries_from_stdin_and_shows_progress(target15: str) -> None:
    done = dbarchitect("audit", "--dsn", target15, "--queries", "-", stdin=WORKLOAD)
    assert done.returncode == 0, done.stderr
    assert "CREATE INDEX CONCURRENTLY accounts_email_idx" in done.stdout
    assert "Skipped statements (2)" in done.stdout
    for stage in ("collect", "analyse", "what-if", "select"):
        assert stage in done.stderr


def test_unreachable_target_exits_3_without_leaking_the_password() -> None:
    dsn = f"postgresql://app:s3cret-pw@127.0.0.1:{free_port()}/app"
    done = dbarchitect("audit", "--dsn", dsn)
    assert done.returncode == 3
    assert "refused" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout


def test_missing_pg_stat_statements_says_what_to_run(target15: str) -> None:
    done = dbarchitect("audit", "--dsn", target15)
    assert done.returncode == 3
    assert "CREATE EXTENSION pg_stat_statements" in done.stderr


def test_without_hypopg_builds_need_consent(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
    done = dbarchitect(
        "audit", "--dsn", fresh_db18, "--queries", "-", stdin="SELECT * FROM t WHERE id = $1"
    )
    assert done.returncode == 3
    assert "hypopg" in done.stderr.lower() and "--allow-build" in done.stderr
    allowed = dbarchitect(
        "audit",
        "--dsn",
        fresh_db18,
        "--allow-build",
        "--queries",
        "-",
        stdin="SELECT * FROM t WHERE id = $1",
    )
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("audit",),
        ("audit", "--dsn", "x", "--format", "yaml"),
        ("audit", "--dsn", "x", "--queries", "/nonexistent/workload.sql"),
        ("audit", "--dsn", "host=localhost port=notaport"),
    ],
)
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    done = dbarchitect(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr


HEAD_REVISION = '''"""the project's own head"""
revision = "0001base"
down_revision = None
'''


def test_validated_audit_writes_a_chained_revision_and_evidence(
    target15: str, tmp_path: Path
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_base.py").write_text(HEAD_REVISION)
    out = tmp_path / "out"
    done = dbarchitect(
        "audit", "--dsn", target15, "--queries", "-", "--format", "json",
        "--validate-dsn", target15, "--out", str(out), "--migrations-dir", str(versions),
        stdin="SELECT * FROM accounts WHERE email = $1;\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (rec,) = json.loads(done.stdout)["recommendations"]
    assert rec["validation"]["where"] == "sandbox" and rec["validation"]["skipped"] is None
    assert rec["measurement"]["method"] == "sandbox" and rec["measurement"]["cause"] is None
    assert rec["eligible"] is True and rec["confidence"] >= 0.8, rec["confidence_breakdown"]
    query = rec["queries"][0]
    assert query["after"]["ms_p50"] * 10 < query["before"]["ms_p50"]
    (revision,) = out.glob("*.py")
    assert 'down_revision = "0001base"' in revision.read_text()
    evidence = (out / "evidence" / (rec["id"].replace(":", "-") + ".md")).read_text()
    assert "accounts_email_idx" in evidence and "```mermaid" in evidence
    assert "**Method: `sandbox`**. Measured on the sandbox copy" in evidence
    assert "@example.com" not in evidence  # sampled emails were measured, never printed
    assert "wrote 1 revision(s) and 1 evidence file(s)" in done.stderr


def test_confidence_can_only_be_raised(target15: str) -> None:
    done = dbarchitect("audit", "--dsn", target15, "--min-confidence", "0.5")
    assert done.returncode == 2
    assert "min_confidence must be between 0.80 and 1.0" in done.stderr


def test_unreachable_sandbox_exits_3_and_says_which_connection(target15: str) -> None:
    sandbox = f"postgresql://app:s3cret-pw@127.0.0.1:{free_port()}/copy"
    done = dbarchitect("audit", "--dsn", target15, "--validate-dsn", sandbox)
    assert done.returncode == 3
    assert "validation sandbox:" in done.stderr and "s3cret-pw" not in done.stderr


def test_migrations_dir_must_exist_and_needs_out(target15: str, tmp_path: Path) -> None:
    missing = dbarchitect("audit", "--dsn", target15, "--migrations-dir", str(tmp_path / "no"))
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    alone = dbarchitect("audit", "--dsn", target15, "--migrations-dir", str(tmp_path))
    assert alone.returncode == 2 and "needs --out" in alone.stderr


BEHAVIOR_SEED = """
CREATE TABLE "BehaviorLog" AS
  SELECT g AS id, (g % 50) AS "userId",
         timestamptz '2025-01-01' + g * interval '1 second' AS "createdAt"
  FROM generate_series(1, 400000) g;
CREATE TABLE "Session" AS
  SELECT g AS id, 'user' || (g % 100) || '@example.com' AS "userEmail",
         timestamptz '2025-01-01' + g * interval '1 minute' AS "startedAt"
  FROM generate_series(1, 200000) g;
ANALYZE
"""
#: Literal statements, as a workload file or a log sample holds them: each seen once.
LITERAL_WORKLOAD = """
SELECT * FROM "BehaviorLog" WHERE "userId" = 42 ORDER BY "createdAt" DESC LIMIT 1000;
SELECT * FROM "Session" WHERE "userEmail" = 'user7@example.com' ORDER BY "startedAt" DESC LIMIT 100;
"""


def test_one_sampled_literal_becomes_a_composite_and_never_reaches_the_output(
    pg15: PgServer, tmp_path: Path
) -> None:
    dsn = pg15.create_database("cli_literals")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        for statement in BEHAVIOR_SEED.split(";\n"):
            conn.execute(statement.encode())
    queries = tmp_path / "workload.sql"
    queries.write_text(LITERAL_WORKLOAD)
    out = tmp_path / "out"
    done = dbarchitect(
        "audit", "--dsn", dsn, "--queries", str(queries), "--format", "json",
        "--validate-dsn", dsn, "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recs = json.loads(done.stdout)["recommendations"]
    assert {(r["table"], tuple(r["columns"]), r["where"]) for r in recs} == {
        ("public.BehaviorLog", ("userId", "createdAt"), None),
        ("public.Session", ("userEmail", "startedAt"), None),
    }
    text = dbarchitect("audit", "--dsn", dsn, "--queries", str(queries), "--verbose")
    assert text.returncode == 0, text.stderr
    written = [p.read_text() for p in sorted(out.rglob("*")) if p.is_file()]
    assert any("CREATE INDEX CONCURRENTLY" in w for w in written)  # a migration was drafted
    for output in (done.stdout, done.stderr, text.stdout, text.stderr, *written):
        assert not re.search(r"\)\s+WHERE\b", output)  # no partial index, proposed or rejected
        assert not re.search(r"=\s*42\b", output)
        assert "user7@example.com" not in output
