"""Both what-if oracles against real servers: HypoPG on PostgreSQL 15, rolled-back builds on 18."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import LiteralString

import psycopg
import pytest

from app.adapters import target_pg
from app.adapters.errors import MissingPrerequisite
from app.adapters.whatif import HypoPGOracle, RolledBackBuildOracle, make_oracle
from app.engine.advisor.scans import analyze
from app.engine.advisor.whatif import CostRequest
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Candidate, IndexKey, Query
from app.engine.sql import repair

SEED = """
CREATE TABLE t (a int NOT NULL, b int NOT NULL, c text);
INSERT INTO t SELECT g, g % 100, md5(g::text) FROM generate_series(1, 100000) AS g;
CREATE TABLE small (id int PRIMARY KEY, t_a int);
INSERT INTO small SELECT g, g * 7 FROM generate_series(1, 1000) AS g;
ANALYZE;
"""

BY_A = "SELECT * FROM t WHERE a = $1"
BY_B_ORDERED = "SELECT * FROM t WHERE b = $1 ORDER BY a LIMIT $2"
A = Candidate("public.t", (IndexKey("a"),))
B = Candidate("public.t", (IndexKey("b"),))
B_A = Candidate("public.t", (IndexKey("b"), IndexKey("a")))
SMALL = Candidate("public.small", (IndexKey("t_a"),))
NONE: frozenset[Candidate] = frozenset()

# Range-partitioned, one partition sub-partitioned by hash. The parent lost a column before
# its partitions were made, and ev_old was attached with its own column order, so no
# partition numbers its columns like the parent does.
PARTITIONED = """
CREATE TABLE ev (gone int, id bigint NOT NULL, tenant_id int NOT NULL, at date NOT NULL, kind text)
    PARTITION BY RANGE (at);
ALTER TABLE ev DROP COLUMN gone;
CREATE TABLE ev_old (kind text, at date NOT NULL, id bigint NOT NULL, tenant_id int NOT NULL);
ALTER TABLE ev ATTACH PARTITION ev_old FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE ev1 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE ev2 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
    PARTITION BY HASH (id);
CREATE TABLE ev2a PARTITION OF ev2 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE ev2b PARTITION OF ev2 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO ev (id, tenant_id, at, kind)
    SELECT g, g % 1000, DATE '2023-01-01' + (g % 1095), md5(g::text)
    FROM generate_series(1, 100000) AS g;
ANALYZE;
"""
BY_TENANT = "SELECT * FROM ev WHERE tenant_id = $1"
TENANT = Candidate("public.ev", (IndexKey("tenant_id"),))


def _seed(dsn: str, *extra: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED)
        for statement in extra:
            conn.execute(statement)


def _relations(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT oid, relname, relkind, relfilenode FROM pg_class ORDER BY oid"
        ).fetchall()


@pytest.fixture
def hypo15(fresh_db15: str) -> Iterator[target_pg.Target]:
    _seed(fresh_db15, "CREATE EXTENSION hypopg")
    with target_pg.connect(fresh_db15) as target:
        yield target


@pytest.fixture
def db18(fresh_db18: str) -> str:
    _seed(fresh_db18)
    return fresh_db18


@pytest.fixture
def build18(db18: str) -> Iterator[target_pg.Target]:
    with target_pg.connect(db18) as target:
        yield target


def _leftovers(target: target_pg.Target) -> tuple[int, int]:
    hypothetical = target.one("SELECT count(*) AS n FROM hypopg()")["n"]
    prepared = target.one("SELECT count(*) AS n FROM pg_prepared_statements")["n"]
    return hypothetical, prepared


# ------------------------------------------------------------------------------- HypoPG


def test_hypopg_candidate_lowers_cost_via_prepare_on_pg15(hypo15: target_pg.Target) -> None:
    assert hypo15.server_version_num < 160000  # the PREPARE + force_generic_plan path
    oracle = HypoPGOracle(hypo15)
    before, after = oracle.costs([CostRequest(BY_A, 1, NONE), CostRequest(BY_A, 1, frozenset({A}))])
    assert before is not None and after is not None
    assert after < before / 10
    assert oracle.calls == 2
    # Cached: the same requests plan nothing new.
    assert oracle.costs([CostRequest(BY_A, 1, frozenset({A}))]) == [after]
    assert oracle.calls == 2
    assert _leftovers(hypo15) == (0, 0)
    # Everything happened on the read-only session.
    assert hypo15.one("SHOW default_transaction_read_only") == {
        "default_transaction_read_only": "on"
    }


def test_hypopg_groups_sets_and_handles_failures(hypo15: target_pg.Target) -> None:
    oracle = HypoPGOracle(hypo15)
    broken = "SELECT * FROM t WHERE nope = $1"
    literal = "SELECT * FROM t WHERE b = 5 AND c LIKE '{%}' ORDER BY a LIMIT 10"
    write = "UPDATE t SET c = $2 WHERE a = $1"
    two_statements = "SELECT 1; DROP TABLE t"
    bad_candidate = Candidate("public.t", (IndexKey("missing_column"),))
    requests = [
        CostRequest(BY_B_ORDERED, 2, NONE),
        CostRequest(broken, 1, NONE),
        CostRequest(BY_B_ORDERED, 2, frozenset({B})),
        CostRequest(BY_B_ORDERED, 2, frozenset({B_A})),
        CostRequest(literal, 0, frozenset({B_A})),
        CostRequest(literal, 0, NONE),
        CostRequest(write, 2, NONE),
        CostRequest(write, 2, frozenset({A})),
        CostRequest(two_statements, 0, NONE),
        CostRequest(BY_A, 1, frozenset({A, bad_candidate})),
        CostRequest(BY_A, 0, frozenset({A})),  # miscounted $n: the server's count wins
    ]
    costs = oracle.costs(requests)
    base, missing, with_b, with_ba, lit_ba, lit, w0, w1, two, bad, miscounted = costs
    assert base is not None and with_b is not None and with_ba is not None
    assert with_ba < with_b < base
    assert lit is not None and lit_ba is not None and lit_ba < lit
    assert w0 is not None and w1 is not None and w1 < w0
    assert missing is None and "nope" in oracle.errors[broken]
    assert two is None and "one SQL statement" in oracle.errors[two_statements]
    assert bad is None and "missing_column" in oracle.index_errors[bad_candidate]
    assert miscounted is not None and miscounted < base
    assert _leftovers(hypo15) == (0, 0)
    assert hypo15.one("SELECT count(*) AS n FROM t")["n"] == 100000


def test_make_oracle_picks_by_extension(
    hypo15: target_pg.Target, build18: target_pg.Target
) -> None:
    assert make_oracle(hypo15, hypo15.snapshot()).kind == "hypopg"
    snapshot18 = build18.snapshot()
    assert make_oracle(build18, snapshot18).kind == "rolled-back-build"
    with pytest.raises(MissingPrerequisite) as caught:
        make_oracle(build18, snapshot18, allow_build=False)
    assert "CREATE EXTENSION hypopg" in str(caught.value)


# ------------------------------------------------------------------------------- real builds


def test_rolled_back_build_lowers_cost_via_generic_plan_on_pg18(
    db18: str, build18: target_pg.Target
) -> None:
    assert build18.server_version_num >= 160000  # EXPLAIN (GENERIC_PLAN)
    catalog = _relations(db18)
    oracle = RolledBackBuildOracle(build18)
    before, after = oracle.costs([CostRequest(BY_A, 1, NONE), CostRequest(BY_A, 1, frozenset({A}))])
    assert before is not None and after is not None
    assert after < before / 10
    assert oracle.calls == 2
    assert oracle.costs([CostRequest(BY_A, 1, NONE)]) == [before]
    assert oracle.calls == 2
    assert _relations(db18) == catalog
    assert not build18.in_transaction


def test_rolled_back_build_shares_builds_and_matches_fresh_costs(
    db18: str, build18: target_pg.Target
) -> None:
    catalog = _relations(db18)
    join = "SELECT * FROM small JOIN t ON t.a = small.t_a WHERE small.id = $1"
    sets = [NONE, frozenset({A}), frozenset({A, B}), frozenset({A, B_A}), frozenset({B, SMALL})]
    requests = [CostRequest(q, q.count("$"), s) for s in sets for q in (BY_A, BY_B_ORDERED, join)]
    batch = RolledBackBuildOracle(build18).costs(requests)
    assert all(c is not None for c in batch)
    for request, cost in zip(requests, batch, strict=True):
        alone = RolledBackBuildOracle(build18).costs([request])[0]
        assert alone == pytest.approx(cost), request
    assert _relations(db18) == catalog


def test_rolled_back_build_leaves_nothing_after_errors(
    db18: str, build18: target_pg.Target
) -> None:
    catalog = _relations(db18)
    bad = Candidate("public.t", (IndexKey("missing_column"),))
    oracle = RolledBackBuildOracle(build18)
    costs = oracle.costs(
        [
            CostRequest(BY_A, 1, frozenset({A})),
            CostRequest("SELECT * FROM t WHERE nope = $1", 1, frozenset({A})),
            CostRequest(BY_A, 1, frozenset({A, bad})),
            CostRequest("SELECT 1; DROP TABLE t", 0, frozenset({B})),
            CostRequest("INSERT INTO t (a, b) VALUES ($1, $2)", 2, frozenset({A})),
            CostRequest(BY_B_ORDERED, 2, frozenset({B})),
        ]
    )
    assert costs[0] is not None and costs[4] is not None and costs[5] is not None
    assert costs[1] is None and costs[2] is None and costs[3] is None
    assert "missing_column" in oracle.index_errors[bad]
    assert _relations(db18) == catalog
    assert not build18.in_transaction
    assert build18.one("SELECT count(*) AS n FROM t")["n"] == 100000
    assert build18.one("SELECT count(*) AS n FROM pg_prepared_statements")["n"] == 0


def test_rolled_back_build_via_prepare_on_pg15(fresh_db15: str) -> None:
    _seed(fresh_db15)
    catalog = _relations(fresh_db15)
    with target_pg.connect(fresh_db15) as target:
        oracle = make_oracle(target, target.snapshot())
        assert oracle.kind == "rolled-back-build"
        before, after, bad = oracle.costs(
            [
                CostRequest(BY_A, 1, NONE),
                CostRequest(BY_A, 1, frozenset({A})),
                CostRequest("SELECT * FROM t WHERE nope = $1", 1, frozenset({A})),
            ]
        )
        assert before is not None and after is not None and after < before / 10
        assert bad is None
        assert target.one("SELECT count(*) AS n FROM pg_prepared_statements")["n"] == 0
    assert _relations(fresh_db15) == catalog


def test_rolled_back_build_gives_up_on_locks_quickly(db18: str, build18: target_pg.Target) -> None:
    catalog = _relations(db18)
    holding = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(db18) as conn:  # a writer mid-transaction: ROW EXCLUSIVE on t
            conn.execute("UPDATE t SET c = c WHERE a = 1")
            holding.set()
            release.wait(30)
            conn.rollback()

    writer = threading.Thread(target=hold_lock)
    writer.start()
    try:
        assert holding.wait(10)
        oracle = RolledBackBuildOracle(build18, lock_timeout_ms=200)
        started = time.monotonic()
        locked, elsewhere = oracle.costs(
            [
                CostRequest(BY_A, 1, frozenset({A})),
                CostRequest("SELECT * FROM small WHERE t_a = $1", 1, frozenset({SMALL})),
            ]
        )
        assert time.monotonic() - started < 5
    finally:
        release.set()
        writer.join()
    assert locked is None
    assert "lock timeout" in oracle.errors[BY_A]
    assert elsewhere is not None
    assert _relations(db18) == catalog


def test_rolled_back_build_reports_unusable_fresh_index(
    db18: str, build18: target_pg.Target
) -> None:
    # HOT-updated rows still visible to an older snapshot make CREATE INDEX set indcheckxmin:
    # the index is then invisible to the planner inside the transaction that built it.
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute("CREATE TABLE hot (a int, b int) WITH (fillfactor = 50)")
        conn.execute("INSERT INTO hot SELECT g, g FROM generate_series(1, 20000) g")
        conn.execute("ANALYZE hot")
    _assert_build_unusable(db18, build18, "UPDATE hot SET b = b + 1", "a")


# ------------------------------------------------------------------------------- partitions


def test_hypopg_makes_a_parent_candidate_on_every_leaf_partition(fresh_db15: str) -> None:
    """HypoPG accepts a hypothetical index on a partitioned parent, but applies it to the
    partitions with the parent's column numbers: here no partition numbers its columns like
    the parent, so EXPLAIN kept seq-scanning them and every candidate on a partitioned table
    looked useless. The oracle now makes it hypothetical on each leaf partition instead."""
    _seed(fresh_db15, "CREATE EXTENSION hypopg", PARTITIONED)
    with target_pg.connect(fresh_db15) as target:
        oracle = make_oracle(target, target.snapshot())
        assert isinstance(oracle, HypoPGOracle)
        assert oracle.partitions["public.ev"] == (
            "public.ev1",
            "public.ev2a",
            "public.ev2b",
            "public.ev_old",
        )
        before, after = oracle.costs(
            [CostRequest(BY_TENANT, 1, NONE), CostRequest(BY_TENANT, 1, frozenset({TENANT}))]
        )
        assert before is not None and after is not None
        assert after < before / 5
        # On the parent alone (no partition map), HypoPG's index changes nothing.
        (parent_only,) = HypoPGOracle(target).costs(
            [CostRequest(BY_TENANT, 1, frozenset({TENANT}))]
        )
        assert parent_only == pytest.approx(before)
        assert _leftovers(target) == (0, 0)


@pytest.mark.parametrize("database", ["fresh_db15", "fresh_db18"])
def test_rolled_back_build_on_a_partitioned_parent_cascades(
    database: str, request: pytest.FixtureRequest
) -> None:
    dsn: str = request.getfixturevalue(database)
    _seed(dsn, PARTITIONED)
    catalog = _relations(dsn)
    with target_pg.connect(dsn) as target:
        oracle = make_oracle(target, target.snapshot())
        assert isinstance(oracle, RolledBackBuildOracle)
        before, after = oracle.costs(
            [CostRequest(BY_TENANT, 1, NONE), CostRequest(BY_TENANT, 1, frozenset({TENANT}))]
        )
        assert before is not None and after is not None
        assert after < before / 5
        assert not target.in_transaction
    assert _relations(dsn) == catalog


def test_rolled_back_build_reports_unusable_fresh_partition_index(
    db18: str, build18: target_pg.Target
) -> None:
    # As for a plain table: the parent's index is fine, one partition's is not usable yet.
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute("CREATE TABLE hot (a int, b int) PARTITION BY RANGE (a)")
        conn.execute("CREATE TABLE hot1 PARTITION OF hot FOR VALUES FROM (0) TO (10000)")
        conn.execute("CREATE TABLE hot2 PARTITION OF hot FOR VALUES FROM (10000) TO (MAXVALUE)")
        conn.execute("ALTER TABLE hot1 SET (fillfactor = 50)")
        conn.execute("INSERT INTO hot SELECT g, g FROM generate_series(1, 20000) g")
        conn.execute("ANALYZE hot")
    _assert_build_unusable(db18, build18, "UPDATE hot1 SET b = b + 1", "b")


def _assert_build_unusable(
    db18: str, build18: target_pg.Target, update: LiteralString, column: str
) -> None:
    """Update ``hot`` while an older snapshot is open, then expect a "VACUUM" refusal."""
    query = f"SELECT * FROM hot WHERE {column} = $1"
    with psycopg.connect(db18) as old:
        old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT count(*) FROM hot")
        with psycopg.connect(db18, autocommit=True) as conn:
            conn.execute(update)
        oracle = RolledBackBuildOracle(build18)
        candidate = Candidate("public.hot", (IndexKey(column),))
        (cost,) = oracle.costs([CostRequest(query, 1, frozenset({candidate}))])
        old.rollback()
    assert cost is None
    assert "VACUUM" in oracle.errors[query]


# ------------------------------------------------------------- statements without types

TPCH_LIKE = """
CREATE TABLE lineitem (l_orderkey int NOT NULL, l_quantity numeric(15,2) NOT NULL,
    l_discount numeric(15,2) NOT NULL, l_extendedprice numeric(15,2) NOT NULL,
    l_shipdate date NOT NULL, l_shipmode char(10) NOT NULL);
INSERT INTO lineitem SELECT g / 4, g % 50, (g % 11) / 100.0, g % 1000,
    DATE '1992-01-01' + g % 2500, CASE WHEN g % 2 = 0 THEN 'MAIL' ELSE 'SHIP' END
    FROM generate_series(1, 20000) AS g;
CREATE TABLE orders (o_orderkey int PRIMARY KEY, o_orderdate date NOT NULL,
    o_orderpriority char(15) NOT NULL);
INSERT INTO orders SELECT g, DATE '1992-01-01' + g % 2500, '1-URGENT'
    FROM generate_series(0, 5000) g;
ANALYZE;
"""
#: pg_stat_statements' text of four TPC-H queries that PostgreSQL cannot plan as they stand:
#: extract's field as $n is a syntax error, $8 + $9 is "operator is not unique: unknown +
#: unknown", and sum(CASE … THEN $3 ELSE $4 END) is "function sum(text) does not exist".
UNTYPED = [
    "select extract($1 from l_shipdate) as l_year, sum(l_extendedprice * ($2 - l_discount)) "
    "from lineitem where l_shipdate between date $3 and date $4 group by l_year",
    "select sum(l_extendedprice * l_discount) as revenue from lineitem where l_shipdate >= "
    "date $1 and l_shipdate < date $2 + interval $3 year and l_discount between $4 - $5 and "
    "$6 + $7 and l_quantity < $8",
    "select l_shipmode, sum(case when o_orderpriority = $1 or o_orderpriority = $2 then $3 "
    "else $4 end) as high_line_count from orders, lineitem where o_orderkey = l_orderkey and "
    "l_shipmode in ($5, $6) and l_shipdate <= $7 - $8 group by l_shipmode",
    "select sum(l_extendedprice) from lineitem where l_quantity >= $1 and l_quantity <= $2 + $3",
]


@pytest.mark.parametrize("server", ["fresh_db15", "fresh_db18"])
def test_statements_without_parameter_types_are_planned(
    server: str, request: pytest.FixtureRequest
) -> None:
    """PREPARE on 15 and EXPLAIN (GENERIC_PLAN) on 18 both take the typed text."""
    dsn: str = request.getfixturevalue(server)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TPCH_LIKE)
    with target_pg.connect(dsn) as target:
        catalog = Catalog(target.snapshot())
        analyzed = [analyze(Query(text, calls=5), catalog) for text in UNTYPED]
        assert all(isinstance(a, Analyzed) for a in analyzed), analyzed
        plans = make_oracle(target, target.snapshot(), allow_build=True)
        costs = plans.costs(
            [
                CostRequest(a.explain_sql, a.params, NONE)
                for a in analyzed
                if isinstance(a, Analyzed)
            ]
        )
        assert all(c is not None for c in costs), plans.errors
        # untouched, the same texts fail exactly as pg_stat_statements wrote them
        raw = make_oracle(target, target.snapshot(), allow_build=True)
        assert raw.costs([CostRequest(repair(UNTYPED[3]), 3, NONE)]) == [None]
        assert "unknown + unknown" in next(iter(raw.errors.values()))
