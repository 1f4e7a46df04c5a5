"""A hostile target: workload text and pg_stats values written by whoever can connect to it.

pg_stat_statements records every role's statements and pg_stats every column's common values,
so both are attacker-controlled. Validation executes the statements for real with the tool's
role inside a transaction that rolls back: values must be bound (never pasted into SQL), and
a statement that reaches a function whose effects a rollback does not undo must never run.
"""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from app.adapters.errors import TargetError, TargetQueryError
from app.adapters.measure import measure
from app.adapters.target_pg import connect
from app.adapters.target_pg.ask import run_select
from app.adapters.validate import Budget, Planned, validate
from app.adapters.whatif import make_oracle
from app.engine.advisor.params import ParamSet, parameter_sets
from app.engine.advisor.scans import analyze
from app.engine.advisor.whatif import CostRequest
from app.engine.catalog import Catalog
from app.engine.guard import UnsafeSql, allowed_from, check_select
from app.engine.model import Analyzed, Query, Recommendation
from app.engine.proof.evidence import Timing
from app.engine.verdict import Affected

INJECTION = "'); DROP TABLE canary; --"
SEED = f"""
CREATE TABLE canary (id int PRIMARY KEY);
INSERT INTO canary VALUES (1);
CREATE TABLE t (id int PRIMARY KEY, tag text NOT NULL, n int NOT NULL);
INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN {psycopg.sql.quote(INJECTION)}
    WHEN g % 3 = 1 THEN E'back\\\\slash''quote' ELSE 'tag' || g END, g % 100
FROM generate_series(1, 6000) AS g;
CREATE SEQUENCE s;
CREATE VIEW v AS SELECT id, tag, nextval('s') AS ticket FROM t;
CREATE FUNCTION quiet(x int) RETURNS int LANGUAGE sql VOLATILE
    AS 'SELECT pg_catalog.setval(''s'', 1000) + x';
CREATE VIEW w AS SELECT id, tag, quiet(n) AS q FROM t;
CREATE TABLE audit_log (at timestamptz);
CREATE FUNCTION remember() RETURNS trigger LANGUAGE plpgsql
    AS 'BEGIN PERFORM pg_catalog.setval(''s'', 2000); RETURN NEW; END';
DO $$BEGIN CREATE ROLE mallory NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;
CREATE FUNCTION liar(x int) RETURNS int LANGUAGE sql IMMUTABLE
    AS 'SELECT x + pg_catalog.length(pg_catalog.pg_advisory_lock(4243)::text)';
ALTER FUNCTION liar(int) OWNER TO mallory;
CREATE VIEW plain AS SELECT id, tag, random() AS r FROM t;
CREATE TRIGGER remember BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION remember();
"""

#: Statements a low-privileged role could leave in pg_stat_statements; each reaches a function
#: whose effect outlives the rollback (or acts with our privileges), directly or hidden.
HOSTILE = [
    "SELECT nextval('s'), id FROM t WHERE tag = $1",
    "SELECT pg_catalog.setval('s', 500) FROM t WHERE tag = $1",
    "SELECT pg_advisory_lock(4242), id FROM t WHERE tag = $1",
    "SELECT id FROM t WHERE tag = $1 AND pg_terminate_backend(pg_backend_pid() * 0) IS NULL",
    "SELECT ticket FROM v WHERE tag = $1",
    "SELECT q FROM w WHERE tag = $1",
    "UPDATE t SET n = n + 1 WHERE tag = $1",
    "SELECT id FROM t WHERE tag = $1 AND public.quiet(n) > 0",
    "SELECT id FROM t WHERE tag = $1 AND liar(n) >= 0",
]


def seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED.encode())
        conn.execute("VACUUM ANALYZE t")


def sequence_state(dsn: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT last_value, is_called FROM s").fetchone()
        assert row is not None
        locks = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
        canary = conn.execute("SELECT count(*) FROM canary").fetchone()
    return (*row, locks, canary)


def planned(dsn: str, text: str) -> Planned:
    with connect(dsn) as target:
        catalog = Catalog(target.snapshot())
    stmt = analyze(Query(text, calls=100), catalog)
    assert isinstance(stmt, Analyzed), stmt
    sets, notes = parameter_sets(stmt, catalog)
    return Planned(Affected(stmt, write=stmt.query.text.startswith("UPDATE")), tuple(sets), notes)


def tag_index() -> Recommendation:
    return Recommendation(
        action="create_index",
        table="public.t",
        columns=("tag",),
        index_name="t_tag_idx",
        ddl="CREATE INDEX CONCURRENTLY t_tag_idx ON public.t USING btree (tag)",
    )


def test_common_values_from_pg_stats_are_bound_not_pasted(fresh_db18: str) -> None:
    """A most common value that is SQL is measured as a value; the canary table survives."""
    seed(fresh_db18)
    plan = planned(fresh_db18, "SELECT id FROM t WHERE tag = $1")
    values = {v for s in plan.param_sets for v in s.values}
    assert INJECTION in values or "back\\slash'quote" in values, plan.param_sets
    with connect(fresh_db18) as session:
        evidence = validate(session, tag_index(), [plan], where="target", budget=Budget(runs=2))
    assert evidence.skipped is None, evidence.skipped
    runs = evidence.statements[0].before
    assert runs and all(isinstance(r, Timing) for r in runs), runs
    assert sequence_state(fresh_db18)[3] == (1,)


@pytest.mark.parametrize("text", HOSTILE)
def test_statements_reaching_volatile_functions_are_never_executed(
    fresh_db15: str, text: str
) -> None:
    """Costed maybe, executed never: the sequence, the locks and the canary stay as they were."""
    seed(fresh_db15)
    before = sequence_state(fresh_db15)
    plan = planned(fresh_db15, text)
    with connect(fresh_db15) as session:
        evidence = validate(session, tag_index(), [plan], where="target", budget=Budget(runs=2))
        during = sequence_state(fresh_db15)  # session-level advisory locks outlive the rollback
    assert during == before
    statement = evidence.statements[0]
    assert not statement.before and not statement.after
    assert any("may act beyond the rolled-back transaction" in note for note in statement.notes), (
        statement.notes
    )


def test_harmless_volatile_functions_and_plain_views_are_still_measured(fresh_db15: str) -> None:
    seed(fresh_db15)
    plan = planned(fresh_db15, "SELECT id, r, clock_timestamp() FROM plain WHERE tag = $1")
    with connect(fresh_db15) as session:
        evidence = validate(session, tag_index(), [plan], where="target", budget=Budget(runs=2))
    statement = evidence.statements[0]
    assert statement.before and all(isinstance(r, Timing) for r in statement.before), statement


def test_measure_refuses_a_statement_that_calls_dblink_like_functions(fresh_db18: str) -> None:
    seed(fresh_db18)
    with connect(fresh_db18) as session:
        results = measure(session, "SELECT nextval('s')", [ParamSet("literal", ())], runs=1)
    assert sequence_state(fresh_db18)[:2] == (1, False)
    assert "(nextval(regclass): volatile" in str(results[0])


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1; DELETE FROM canary",
        "SELECT 1 /* */; DELETE FROM canary",
        "SELECT E'\\\\'; DELETE FROM canary; --'",
        "SELECT $a$ ; $a$; DELETE FROM canary",
        "DELETE FROM canary",
        "COPY canary TO PROGRAM 'true'",
        "DO $$BEGIN DELETE FROM canary; END$$",
        "SELECT 1 /* unterminated",
    ],
)
def test_stacked_or_utility_statements_change_nothing(fresh_db18: str, text: str) -> None:
    """Several statements, a utility, a broken comment: refused or rolled back, never applied."""
    seed(fresh_db18)
    with connect(fresh_db18) as session:
        try:
            results = measure(session, text, [ParamSet("literal", ())], runs=1)
        except ValueError as exc:
            results = [exc]
        assert not any(isinstance(r, Timing) for r in results) or text == "DELETE FROM canary"
    assert sequence_state(fresh_db18)[3] == (1,)


#: What a commenter could write after `/ask` (or talk the model into writing).
HOSTILE_ASK = [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM dblink('dbname=x', 'DELETE FROM canary') AS r(x int)",
    "SELECT dblink_exec('dbname=x', 'DELETE FROM canary')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(1, '/tmp/x')",
    "SELECT pg_sleep(60)",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_catalog.set_config('role', 'postgres', false)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "SELECT pg_advisory_lock(1)",
    "SELECT nextval('s')",
    "SELECT id FROM t; DELETE FROM canary",
    "COMMIT; DELETE FROM canary",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "DO $$BEGIN DELETE FROM canary; END$$",
    "COPY canary TO PROGRAM 'touch /tmp/pwned'",
    "WITH d AS (DELETE FROM canary RETURNING *) SELECT * FROM d",
    "SELECT * INTO stolen FROM t",
    "SELECT * FROM t FOR UPDATE",
    "SELECT quiet(1)",
    "SELECT public.quiet(1)",
    "SELECT id FROM t WHERE id = (SELECT nextval('s'))",
    "SELECT current_setting('data_directory')",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT id::regclass FROM t",
    "TABLE canary; DELETE FROM canary",
    "EXPLAIN ANALYZE DELETE FROM canary",
    "CALL quiet(1)",
]


@pytest.mark.parametrize("text", HOSTILE_ASK)
def test_the_ask_guard_refuses_every_escape(fresh_db18: str, text: str) -> None:
    """Refused by the guard; and what the runner does anyway with it changes nothing."""
    seed(fresh_db18)
    with connect(fresh_db18) as target:
        allowed = allowed_from(target.snapshot())
    with pytest.raises(UnsafeSql):
        check_select(text, allowed)
    before = sequence_state(fresh_db18)
    with contextlib.suppress(TargetError):
        run_select(fresh_db18, text, timeout_ms=500)
    assert sequence_state(fresh_db18)[1:] == before[1:]  # the canary, locks (nextval aside)


@pytest.mark.parametrize("text", ["SELECT ticket FROM v", "SELECT q FROM w", "SELECT * FROM lock"])
def test_ask_never_runs_a_view_that_hides_a_volatile_function(fresh_db18: str, text: str) -> None:
    """The guard sees only the view's name; the runner walks the view and refuses to run it."""
    seed(fresh_db18)
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE VIEW lock AS SELECT pg_advisory_lock(7)::text AS locked")
        conn.execute("GRANT SELECT ON lock TO PUBLIC")
    with connect(fresh_db18) as target:
        allowed = allowed_from(target.snapshot())
    checked = check_select(text, allowed)  # the view itself is an allowed relation
    before = sequence_state(fresh_db18)
    with pytest.raises(TargetQueryError, match="the query was not run: it reaches functions"):
        run_select(fresh_db18, checked, timeout_ms=2_000)
    assert sequence_state(fresh_db18) == before


def test_ask_still_runs_plain_views(fresh_db18: str) -> None:
    seed(fresh_db18)
    with connect(fresh_db18) as target:
        allowed = allowed_from(target.snapshot())
    answer = run_select(fresh_db18, check_select("SELECT count(*) FROM plain", allowed))
    assert answer.rows == (("6000",),)


def test_planning_never_calls_a_function_written_by_an_untrusted_role(fresh_db15: str) -> None:
    """The planner folds IMMUTABLE calls with constant arguments: EXPLAIN alone would run them."""
    seed(fresh_db15)
    text = "SELECT id FROM t WHERE n = liar(1) AND tag = $1"
    with connect(fresh_db15) as target:
        oracle = make_oracle(target, target.snapshot(), allow_build=True)
        (cost,) = oracle.costs([CostRequest(text, 1, frozenset())])
        held = sequence_state(fresh_db15)[2]  # while our session is still open
    assert held == (0,)
    assert cost is None
    assert "may act beyond" in oracle.errors[text]
