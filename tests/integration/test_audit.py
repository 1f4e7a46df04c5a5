"""The whole audit on real servers: PostgreSQL 15 + HypoPG and 18 with rolled-back builds agree."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app.adapters.errors import MissingPrerequisite
from app.adapters.pgserver import PgServer
from app.engine.advisor.audit import AuditConfig
from app.engine.advisor.rules import RuleConfig
from app.engine.render import to_json
from app.engine.sql import redact
from app.flows.audit_target import WorkloadSpec, audit_target
from tests.integration.advisor_cases import WORKLOAD, seed, workload_text

# The case tables are minutes old: judge unused indexes since the last statistics reset.
CONFIG = AuditConfig(rules=replace(RuleConfig(), unused_min_days=0))


def _report(dsn: str, *, allow_build: bool) -> dict[str, Any]:
    spec = WorkloadSpec(queries_text=workload_text())
    return to_json(audit_target(dsn, spec, config=CONFIG, allow_build=allow_build))


@pytest.fixture(scope="module")
def reports(pg15: PgServer, pg18: PgServer) -> dict[str, dict[str, Any]]:
    """One audit per server of the same seeded cases (seeding takes a few seconds)."""
    out = {}
    for name, server, extensions in (("pg15", pg15, ("hypopg",)), ("pg18", pg18, ())):
        dsn = server.create_database("advisor_cases")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for ext in extensions:
                conn.execute(f"CREATE EXTENSION {ext}".encode())
        seed(dsn)
        out[name] = _report(dsn, allow_build=name == "pg18")
    return out


@pytest.fixture(params=["pg15", "pg18"])
def report(request: pytest.FixtureRequest, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = reports[request.param]
    return result


def creates(report: dict[str, Any], table: str) -> list[list[str]]:
    return [
        r["columns"]
        for r in report["recommendations"]
        if r["action"] == "create_index" and r["table"] == f"public.{table}"
    ]


def skipped_reason(report: dict[str, Any], case: str) -> str:
    text = redact(WORKLOAD[case])
    reasons = [s["reason"] for s in report["skipped_queries"] if s["query"] == text]
    assert reasons, f"{case} was not skipped"
    return str(reasons[0])


def test_what_if_method_and_calls(reports: dict[str, dict[str, Any]]) -> None:
    assert reports["pg15"]["whatif"]["method"] == "hypopg"
    assert reports["pg18"]["whatif"]["method"] == "rolled-back-build"
    assert all(r["whatif"]["calls"] > 0 for r in reports.values())


def test_single_column_index_for_equality_on_an_unindexed_table(report: dict[str, Any]) -> None:
    assert creates(report, "c_single") == [["id"]]


def test_two_equalities_get_one_two_column_index(report: dict[str, Any]) -> None:
    assert creates(report, "c_pair") == [["user_id", "blog_id"]]


def test_equality_columns_come_before_the_range(report: dict[str, Any]) -> None:
    assert creates(report, "c_range") == [["tenant_id", "created_at"]]


def test_order_by_limit_gets_an_index_that_delivers_the_order(report: dict[str, Any]) -> None:
    assert creates(report, "c_feed") == [["kind", "created_at"]]


def test_join_key_of_a_join(report: dict[str, Any]) -> None:
    assert creates(report, "c_lines") == [["order_id"]]
    assert creates(report, "c_orders") == []  # customer_id is indexed already


def test_update_and_delete_predicates(report: dict[str, Any]) -> None:
    assert creates(report, "c_upd") == [["k"]]
    assert creates(report, "c_del") == [["k"]]


def test_base_table_behind_a_view(report: dict[str, Any]) -> None:
    (columns,) = creates(report, "c_users")
    assert columns[0] == "email"


def test_parent_of_a_partitioned_table(report: dict[str, Any]) -> None:
    (columns,) = creates(report, "c_events")
    assert columns[0] == "tenant_id"


def test_no_index_where_one_exists_or_cannot_help(report: dict[str, Any]) -> None:
    assert creates(report, "c_indexed") == []
    assert {
        "candidate": "public.c_indexed (id)",
        "reason": "covered by existing index c_indexed_pkey",
    } in report["rejected"]
    assert creates(report, "c_fence") == []  # the predicate sits outside a MATERIALIZED CTE


def test_statements_that_cannot_use_an_index_are_skipped_with_reasons(
    report: dict[str, Any],
) -> None:
    assert skipped_reason(report, "select_1") == "reads no table"
    assert skipped_reason(report, "catalog") == "reads only system catalogs"
    assert skipped_reason(report, "unparseable").startswith("could not parse")


def test_duplicate_and_unused_indexes(report: dict[str, Any]) -> None:
    drops = {r["index_name"] for r in report["recommendations"] if r["action"] == "drop_index"}
    assert {"c_dup_a_again_idx", "c_dup_a_idx", "c_dup_s_idx"} <= drops
    assert "c_orders_pkey" not in drops  # primary keys are never dropped


def test_hypopg_and_rolled_back_builds_agree(reports: dict[str, dict[str, Any]]) -> None:
    def shape(report: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
        return {(r["action"], r["table"], tuple(r["columns"])) for r in report["recommendations"]}

    assert shape(reports["pg15"]) == shape(reports["pg18"])


def test_rolled_back_builds_leave_the_catalog_unchanged(fresh_db18: str) -> None:
    seed(fresh_db18)
    catalog = "SELECT count(*) FROM pg_class WHERE relkind = 'i'"
    with psycopg.connect(fresh_db18) as conn:
        before = conn.execute(catalog).fetchone()
    _report(fresh_db18, allow_build=True)
    with psycopg.connect(fresh_db18) as conn:
        assert conn.execute(catalog).fetchone() == before


def test_builds_need_consent_when_hypopg_is_missing(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
    with pytest.raises(MissingPrerequisite, match="hypopg"):
        _report(fresh_db18, allow_build=False)


def test_workload_from_pg_stat_statements(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(
            "CREATE TABLE t AS SELECT g AS id, g % 10 AS v FROM generate_series(1, 100000) g"
        )
        conn.execute("ANALYZE t")
        conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(20):
            conn.execute("SELECT * FROM t WHERE id = %s", (i,))
    report = to_json(audit_target(fresh_db18, WorkloadSpec(), allow_build=True))
    (rec,) = [r for r in report["recommendations"] if r["action"] == "create_index"]
    assert (rec["table"], rec["columns"]) == ("public.t", ["id"])
    (query,) = rec["queries"]
    assert query["calls"] == 20 and "$1" in query["query"]
    assert query["after"]["cost"] < query["before"]["cost"]


def test_an_index_the_workload_plans_use_is_never_called_unused(fresh_db15: str) -> None:
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute(
            "CREATE TABLE t AS SELECT g AS id, g % 1000 AS v FROM generate_series(1, 100000) g"
        )
        conn.execute("CREATE INDEX t_v_idx ON t (v)")
        conn.execute("CREATE INDEX t_id_idx ON t (id)")
        conn.execute("ANALYZE t")
        conn.execute("SELECT pg_stat_reset()")
    spec = WorkloadSpec(queries_text="SELECT * FROM t WHERE v = $1")
    report = to_json(audit_target(fresh_db15, spec, config=CONFIG))
    drops = {r["index_name"] for r in report["recommendations"] if r["action"] == "drop_index"}
    assert drops == {"t_id_idx"}  # 0 scans and no plan of the workload uses it
    (why,) = [r["reason"] for r in report["rejected"] if r["candidate"] == "drop t_v_idx"]
    assert why.startswith("not unused: the workload's plan for 'SELECT * FROM t WHERE v = $1'")


OWN_ENTRIES = "SELECT query FROM pg_stat_statements WHERE query LIKE '%dbarchitect%'"


@pytest.mark.parametrize("superuser", [True, False])
def test_audit_does_not_flood_the_targets_pg_stat_statements(
    pg15: PgServer, fresh_db15: str, superuser: bool
) -> None:
    """Unique prepared/savepoint names once left ~16 entries per analysed statement behind."""
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        for ext in ("hypopg", "pg_stat_statements"):
            conn.execute(f"CREATE EXTENSION {ext}".encode())
        conn.execute(
            "CREATE TABLE t AS SELECT g AS id, g % 500 AS v, g % 7 AS w"
            " FROM generate_series(1, 100000) g"
        )
        conn.execute("ANALYZE t")
        conn.execute("DROP ROLE IF EXISTS advisor_ro")
        conn.execute("CREATE ROLE advisor_ro LOGIN PASSWORD 'ro-pw' IN ROLE pg_read_all_stats")
        conn.execute("GRANT SELECT ON t TO advisor_ro")
        conn.execute("SELECT pg_stat_statements_reset()")
    reader = make_conninfo(fresh_db15, user="advisor_ro", password="ro-pw")
    dsn = fresh_db15 if superuser else reader
    statements = [f"SELECT * FROM t WHERE v = $1 AND w = $2 AND id > {i}" for i in range(30)]
    audit_target(dsn, WorkloadSpec(queries_text=";\n".join(statements)), config=CONFIG)
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        own = [r[0] for r in conn.execute(OWN_ENTRIES.encode())]
        conn.execute("DROP OWNED BY advisor_ro")
        conn.execute("DROP ROLE advisor_ro")
    # Before tracking is switched off, the session set-up itself is recorded once.
    assert len(own) <= 1 if superuser else len(own) <= 20, own  # not one per what-if call (420)
