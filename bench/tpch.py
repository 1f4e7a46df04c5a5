"""TPC-H benchmark: load a scale factor, run the 22 queries, audit, apply the indexes, rerun."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from app.adapters.pgserver import DebianPostgres, EmbeddedPostgres, LocalPostgres
from app.adapters.validate import Budget
from app.engine.advisor.audit import AuditConfig
from app.engine.advisor.selection import SelectionConfig
from app.engine.model import recommendation_id
from app.engine.render import confidence_line
from app.engine.report import Report
from app.flows.audit_target import ValidationSpec, WorkloadSpec, audit_target
from app.log import configure_logging
from app.settings import get_settings
from bench.audit_scale import PHASES, Clock, Phases, _timed_oracles

DATABASE = "tpch"
QUERIES_FILE = Path(__file__).with_name("tpch_queries.sql")
EXTRA_HINT = "pip install -e '.[bench]'  (or: pip install tpchgen-cli)"
#: Kossmann et al., VLDB 2020: the best algorithm's estimated cost on TPC-H, as a share of the
#: cost without indexes (scale factor 10, queries 2, 17 and 20 left out, no index at all).
KOSSMANN_SHARE = 0.69
KOSSMANN_QUERIES = frozenset(range(1, 23)) - {2, 17, 20}
SEED_TARGET_S = 120.0
#: A query counts as slower after the audit when it takes more than this much longer.
SLOWER = 1.10

SERVER_SETTINGS = {
    # Everything (≈ 1.6 GB at SF 1, ≈ 2.2 GB with the new indexes) is prewarmed into shared
    # buffers before each timed pass: the page cache of this VM is reclaimed when idle, and
    # index builds would otherwise evict the heap, so "after" would run colder than "before".
    "shared_buffers": "4GB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "wal_level": "minimal",  # COPY into a table created in the same transaction skips WAL
    "max_wal_senders": "0",
    "autovacuum": "off",  # timings should not depend on when autovacuum wakes up
}

#: Table → (columns, primary key), the types of the TPC-H specification (dbgen's dss.ddl).
TABLES: dict[str, tuple[str, str]] = {
    "region": (
        "r_regionkey integer, r_name char(25), r_comment varchar(152)",
        "r_regionkey",
    ),
    "nation": (
        "n_nationkey integer, n_name char(25), n_regionkey integer, n_comment varchar(152)",
        "n_nationkey",
    ),
    "part": (
        "p_partkey integer, p_name varchar(55), p_mfgr char(25), p_brand char(10), "
        "p_type varchar(25), p_size integer, p_container char(10), "
        "p_retailprice decimal(15,2), p_comment varchar(23)",
        "p_partkey",
    ),
    "supplier": (
        "s_suppkey integer, s_name char(25), s_address varchar(40), s_nationkey integer, "
        "s_phone char(15), s_acctbal decimal(15,2), s_comment varchar(101)",
        "s_suppkey",
    ),
    "partsupp": (
        "ps_partkey integer, ps_suppkey integer, ps_availqty integer, "
        "ps_supplycost decimal(15,2), ps_comment varchar(199)",
        "ps_partkey, ps_suppkey",
    ),
    "customer": (
        "c_custkey integer, c_name varchar(25), c_address varchar(40), c_nationkey integer, "
        "c_phone char(15), c_acctbal decimal(15,2), c_mktsegment char(10), "
        "c_comment varchar(117)",
        "c_custkey",
    ),
    "orders": (
        "o_orderkey integer, o_custkey integer, o_orderstatus char(1), "
        "o_totalprice decimal(15,2), o_orderdate date, o_orderpriority char(15), "
        "o_clerk char(15), o_shippriority integer, o_comment varchar(79)",
        "o_orderkey",
    ),
    "lineitem": (
        "l_orderkey integer, l_partkey integer, l_suppkey integer, l_linenumber integer, "
        "l_quantity decimal(15,2), l_extendedprice decimal(15,2), l_discount decimal(15,2), "
        "l_tax decimal(15,2), l_returnflag char(1), l_linestatus char(1), l_shipdate date, "
        "l_commitdate date, l_receiptdate date, l_shipinstruct char(25), l_shipmode char(10), "
        "l_comment varchar(44)",
        "l_orderkey, l_linenumber",
    ),
}


class MissingExtra(RuntimeError):
    """The data generator (the ``bench`` extra) is not installed."""


# ---------------------------------------------------------------------------------------------
# Data: generate once with tpchgen-cli, keep the CSV files
# ---------------------------------------------------------------------------------------------


def tpchgen_binary() -> Path:
    """The ``tpchgen-cli`` executable of this environment (or on PATH), or MissingExtra."""
    beside = Path(sys.executable).with_name("tpchgen-cli")
    if beside.is_file():
        return beside
    found = shutil.which("tpchgen-cli")
    if found:
        return Path(found)
    raise MissingExtra(
        f"tpchgen-cli is not installed; it generates the TPC-H data. Run: {EXTRA_HINT}"
    )


def generate(data_dir: Path, scale: float) -> tuple[Path, bool]:
    """CSV files for ``scale`` under ``data_dir``, generated unless already there.

    Returns the directory and whether it was generated now.
    """
    target = data_dir / f"sf{scale:g}"
    done = target / ".complete"
    if done.is_file():
        return target, False
    binary = tpchgen_binary()
    partial = data_dir / f"sf{scale:g}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    subprocess.run(
        [str(binary), "csv", "-s", f"{scale:g}", "-o", str(partial), "--no-progress", "-q"],
        check=True,
    )
    missing = [t for t in TABLES if not (partial / f"{t}.csv").is_file()]
    if missing:
        raise RuntimeError(f"tpchgen-cli wrote no CSV for {', '.join(missing)} in {partial}")
    (partial / ".complete").write_text(f"tpchgen-cli csv -s {scale:g}\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target, True


def _load_table(dsn: str, csv_dir: Path, table: str) -> int:
    """CREATE TABLE and COPY … FREEZE in one transaction (no WAL with wal_level=minimal)."""
    columns, _ = TABLES[table]
    ident = sql.Identifier(table)
    # decimal(15,2) has no space after its comma, so ", " separates the columns.
    defs = ", ".join(f"{column} NOT NULL" for column in columns.split(", "))
    copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true, FREEZE true)").format(ident)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(defs)))
        with (csv_dir / f"{table}.csv").open("rb") as source, cur.copy(copy_sql) as copy:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        return cur.rowcount


def load(dsn: str, csv_dir: Path) -> dict[str, int]:
    """The eight tables with their primary keys and no other index, then VACUUM ANALYZE.

    Two sessions at a time, biggest tables first; keys are added after the data is in.
    """
    order = sorted(TABLES, key=lambda t: -(csv_dir / f"{t}.csv").stat().st_size)

    def add_key(table: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                    sql.Identifier(table), sql.SQL(TABLES[table][1])
                )
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(order, pool.map(lambda t: _load_table(dsn, csv_dir, t), order), strict=True)
        )
        list(pool.map(add_key, order))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {t: counts[t] for t in TABLES}


# ---------------------------------------------------------------------------------------------
# The 22 queries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TpchQuery:
    """One TPC-H query with its validation parameters."""

    number: int
    title: str
    text: str


_HEADER = re.compile(r"^-- Q(\d+) (.*)$", re.MULTILINE)
_VALUE = re.compile(r"'(?:[^']|'')*'|\$\d+|\b\d+(?:\.\d+)?\b")
#: PostgreSQL 14+ parses ``extract(year from x)`` with 'year' as a constant, so
#: pg_stat_statements shows ``extract($1 from x)``.
_EXTRACT = re.compile(r"\bextract\s*\(\s*(?:\w+|\$\d+)\s+from\b", re.IGNORECASE)


def read_queries(path: Path = QUERIES_FILE) -> list[TpchQuery]:
    """Q1–Q22 from ``path``: the text between one ``-- Q<n>`` line and the next."""
    text = path.read_text()
    heads = list(_HEADER.finditer(text))
    queries = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end() : end].strip().removesuffix(";").strip()
        queries.append(TpchQuery(int(head.group(1)), head.group(2).strip(), body))
    if [q.number for q in queries] != list(range(1, 23)):
        raise RuntimeError(f"{path} must hold Q1 to Q22 in order")
    return queries


def shape(text: str) -> str:
    """A query with every literal and ``$n`` as ``?``: how pg_stat_statements text is matched.

    >>> shape("select 1 from t where a = 'x' and b < $2")
    'select ? from t where a = ? and b < ?'
    >>> shape("SELECT 7 FROM t  WHERE a = $1 AND b < 3")
    'select ? from t where a = ? and b < ?'
    >>> shape("extract(year from d)") == shape("extract($1 from d)")
    True
    """
    return " ".join(_VALUE.sub("?", _EXTRACT.sub("extract(? from", text)).lower().split())


class QueryNames:
    """Tells which TPC-H query a workload statement (pg_stat_statements text) is."""

    def __init__(self, queries: Sequence[TpchQuery]) -> None:
        self._by_shape = {shape(q.text): q.number for q in queries}

    def number(self, text: str) -> int | None:
        """The query's number, or None for a statement that is not one of the 22."""
        return self._by_shape.get(shape(text))

    def label(self, text: str) -> str:
        """``Q17``, or the statement's first words."""
        n = self.number(text)
        return f"Q{n}" if n else " ".join(text.split())[:60]


# ---------------------------------------------------------------------------------------------
# Running and explaining
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Timing:
    """One query's executions in one pass."""

    runs_ms: list[float] = field(default_factory=list)
    timed_out: bool = False
    error: str | None = None
    #: Executions recorded into pg_stat_statements on emptied tables (after a timeout).
    recorded_empty: int = 0

    @property
    def ms(self) -> float | None:
        """Median runtime, None when no execution finished."""
        return statistics.median(self.runs_ms) if self.runs_ms else None


def _record_on_empty_tables(conn: psycopg.Connection[Any], text: str) -> None:
    """Execute ``text`` once with every table emptied, in a transaction that rolls back.

    pg_stat_statements counts a statement when its execution ends, so a cancelled one leaves
    no trace. The same statement on the same (emptied) relations has the same query id, so
    this records the call the timeout swallowed; TRUNCATE is undone by the rollback.
    """
    tables = sql.SQL(", ").join(map(sql.Identifier, TABLES))
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("TRUNCATE {}").format(tables))
        conn.execute(text.encode()).fetchall()


def run_queries(
    dsn: str,
    queries: Sequence[TpchQuery],
    *,
    repeats: int,
    timeout_s: float,
    record_timeouts: bool,
    label: str,
) -> dict[int, Timing]:
    """Run every query ``repeats`` times (round robin), each under ``statement_timeout``.

    A query that timed out or failed is not run again in later rounds; with
    ``record_timeouts`` each of its rounds is recorded on emptied tables instead, so that
    pg_stat_statements holds all 22 queries with the same number of calls.
    """
    timings = {q.number: Timing() for q in queries}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(timeout_s * 1000)))
        )
        for round_ in range(repeats):
            for q in queries:
                t = timings[q.number]
                if t.timed_out or t.error:
                    if t.timed_out and record_timeouts:
                        _record_on_empty_tables(conn, q.text)
                        t.recorded_empty += 1
                    continue
                started = time.perf_counter()
                try:
                    conn.execute(q.text.encode()).fetchall()
                except psycopg.errors.QueryCanceled:
                    t.timed_out = True
                    status = f"TIMEOUT after {timeout_s:g} s"
                    if record_timeouts:
                        _record_on_empty_tables(conn, q.text)
                        t.recorded_empty += 1
                        status += " (recorded on emptied tables)"
                except psycopg.Error as exc:
                    t.error = f"{type(exc).__name__}: {exc.diag.message_primary or exc}"
                    status = f"ERROR {t.error}"
                else:
                    t.runs_ms.append(1000 * (time.perf_counter() - started))
                    status = f"{t.runs_ms[-1]:,.0f} ms"
                print(f"  {label} round {round_ + 1}/{repeats} Q{q.number:<2} {status}", flush=True)
    return timings


@dataclass(slots=True)
class Paired:
    """The A/B check of one query: runs without and with the new indexes, alternating."""

    without: Timing = field(default_factory=Timing)
    with_: Timing = field(default_factory=Timing)


def _timed(conn: psycopg.Connection[Any], text: str, into: Timing) -> None:
    started = time.perf_counter()
    try:
        conn.execute(text.encode()).fetchall()
    except psycopg.errors.QueryCanceled:
        into.timed_out = True
    else:
        into.runs_ms.append(1000 * (time.perf_counter() - started))


def ab_check(
    dsn: str,
    queries: Sequence[TpchQuery],
    indexes: Sequence[str],
    *,
    repeats: int,
    timeout_s: float,
) -> dict[int, Paired]:
    """Each query without and with the new indexes, back to back, ``repeats`` times.

    "Without" drops the new indexes in a transaction that rolls back, so both runs share
    the same statistics, the same warm buffers and the same moment of a noisy machine;
    the order alternates by round.
    """
    drop = sql.SQL("DROP INDEX {}").format(
        sql.SQL(", ").join(sql.Identifier("public", name) for name in indexes)
    )
    pairs = {q.number: Paired() for q in queries}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(timeout_s * 1000)))
        )
        for round_ in range(repeats):
            for q in queries:
                pair = pairs[q.number]
                for without in (True, False) if round_ % 2 == 0 else (False, True):
                    if without:
                        with conn.transaction(force_rollback=True):
                            conn.execute(drop)
                            _timed(conn, q.text, pair.without)
                    else:
                        _timed(conn, q.text, pair.with_)
            print(f"  A/B round {round_ + 1}/{repeats} done", flush=True)
    return pairs


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """EXPLAIN (no ANALYZE) of one query: its estimated total cost and the indexes it reads."""

    cost: float
    indexes: frozenset[str]


def _index_names(node: Mapping[str, Any]) -> Iterator[str]:
    if "Index Name" in node:
        yield str(node["Index Name"])
    for child in node.get("Plans", ()):
        yield from _index_names(child)


def explain(dsn: str, queries: Sequence[TpchQuery]) -> dict[int, PlanInfo]:
    """The planner's estimate for each query with its literal parameters."""
    out: dict[int, PlanInfo] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for q in queries:
            row = conn.execute(b"EXPLAIN (FORMAT JSON) " + q.text.encode()).fetchone()
            assert row is not None
            doc = row[0] if isinstance(row[0], list) else json.loads(row[0])
            plan = doc[0]["Plan"]
            out[q.number] = PlanInfo(float(plan["Total Cost"]), frozenset(_index_names(plan)))
    return out


def recorded(dsn: str, names: QueryNames) -> dict[int, int]:
    """Query number → calls, for the TPC-H queries pg_stat_statements holds."""
    calls: dict[int, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database()"
        ).fetchall()
    for text, n in rows:
        number = names.number(str(text))
        if number:
            calls[number] = calls.get(number, 0) + int(n)
    return calls


def prewarm(dsn: str) -> int:
    """Read every table and index of the schema into shared buffers; returns the bytes read."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_prewarm(c.oid::regclass)), 0)::bigint "
            "* current_setting('block_size')::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
        ).fetchone()
    return int(row[0]) if row else 0


def reset_statements(dsn: str) -> None:
    """Empty pg_stat_statements."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


# ---------------------------------------------------------------------------------------------
# Audit and apply
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRun:
    """The report and where the audit's time went."""

    report: Report
    phases: Phases
    total_s: float
    planner_s: float
    candidates: int


def run_audit(
    dsn: str,
    *,
    config: AuditConfig,
    allow_build: bool,
    validate_timeout_s: float | None = None,
    samples: str | None = None,
) -> AuditRun:
    """``audit_target`` on the pg_stat_statements workload, timing each phase.

    With ``validate_timeout_s``, every recommendation is then measured before and after on the
    bench database itself (it is the sandbox), each run bounded by that timeout.
    """
    last = [time.perf_counter()]

    def tell(progress: Any) -> None:
        now = time.perf_counter()
        if now - last[0] >= 15:
            last[0] = now
            print(
                f"  audit: {progress.stage}, {progress.elapsed_s:.0f} s, "
                f"{progress.calls:,} what-if calls",
                flush=True,
            )

    clock = Clock(tell)
    with _timed_oracles(clock.tick) as oracles:
        clock.oracles = oracles
        validation = (
            ValidationSpec(
                sandbox_dsn=dsn,
                budget=Budget(
                    runs=3, set_budget_ms=2_000, statement_timeout_ms=int(validate_timeout_s * 1000)
                ),
            )
            if validate_timeout_s
            else None
        )
        report = audit_target(
            dsn,
            WorkloadSpec(samples_text=samples),
            config=config,
            progress=clock,
            allow_build=allow_build,
            validation=validation,
        )
        phases = clock.finish()
    return AuditRun(
        report=report,
        phases=phases,
        total_s=clock.marks["greedy"][0] - clock.started,
        planner_s=oracles[-1].seconds if oracles else 0.0,
        candidates=clock.candidates,
    )


@dataclass(frozen=True, slots=True)
class Applied:
    """A recommended index as built: its real size and build time."""

    name: str
    table: str
    ddl: str
    estimated_bytes: int
    size_bytes: int
    build_s: float


def apply(dsn: str, report: Report, *, eligible_only: bool = False) -> list[Applied]:
    """Build every create_index recommendation (plain CREATE INDEX), then ANALYZE.

    ``eligible_only`` builds only those whose measured confidence clears the threshold.
    """
    applied = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for rec in report.recommendations:
            if rec.action != "create_index":
                continue
            assessment = report.assessments.get(recommendation_id(rec))
            if eligible_only and not (assessment and assessment.confidence.eligible):
                continue
            ddl = rec.ddl.replace("CREATE INDEX CONCURRENTLY ", "CREATE INDEX ", 1)
            started = time.perf_counter()
            conn.execute(ddl.encode())
            build_s = time.perf_counter() - started
            schema = rec.table.partition(".")[0]
            row = conn.execute(
                "SELECT pg_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s",
                (schema, rec.index_name),
            ).fetchone()
            size = int(row[0]) if row else 0
            applied.append(Applied(rec.index_name, rec.table, ddl, rec.size_bytes, size, build_s))
        conn.execute("ANALYZE")
    return applied


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def _ms(t: Timing, timeout_s: float) -> str:
    if t.ms is not None:
        return f"{t.ms:,.0f}"
    return f">{timeout_s * 1000:,.0f}" if t.timed_out else "error"


def _table(rows: Sequence[Sequence[str]], *, left: int = 1) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < left or i == len(row) - 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_audit(run: AuditRun, names: QueryNames) -> None:
    """Wall time by phase, what-if calls, skipped statements, the recommendations."""
    rep = run.report
    new = [r for r in rep.recommendations if r.action == "create_index"]
    verdict = "within" if run.total_s < SEED_TARGET_S else "OVER"
    print(
        f"audit: {run.total_s:.1f} s wall ({verdict} the {SEED_TARGET_S:.0f} s seed target), "
        f"{rep.whatif_calls:,} what-if calls ({rep.whatif}), {run.planner_s:.1f} s inside the "
        f"what-if oracle; {rep.statements} statements read, {len(rep.analyzed)} analysed, "
        f"{len(rep.skipped)} skipped; {run.candidates:,} candidates; "
        f"{len(new)} new indexes + {len(rep.recommendations) - len(new)} other recommendations"
    )
    rows = [["phase", "wall s", "oracle s", "what-if calls"]]
    for phase in PHASES:
        wall, oracle, calls = run.phases[phase]
        rows.append([phase, f"{wall:.2f}", f"{oracle:.2f}", f"{calls:,}"])
    _table(rows)
    if rep.workload_cost_before:
        print(
            f"advisor's own estimate (generic plans, Σ calls × cost): "
            f"{rep.workload_cost_before:,.0f} → {rep.workload_cost_after:,.0f} "
            f"({rep.workload_cost_after / rep.workload_cost_before:.1%} of before)"
        )
    seen = {names.number(a.query.text) for a in rep.analyzed}
    missing = sorted(set(range(1, 23)) - seen - {names.number(s.query.text) for s in rep.skipped})
    if missing:
        print(f"not in the audited workload: {', '.join(f'Q{n}' for n in missing)}")
    for sk in rep.skipped:
        print(f"skipped {names.label(sk.query.text)}: {sk.reason}")
    for rj in rep.rejected:
        if rj.reason.startswith(("measured", "measurement", "write overhead measured")):
            print(f"rejected by measurement: {rj.candidate}: {rj.reason}")
    for rec in rep.recommendations:
        a = rep.assessments.get(recommendation_id(rec))
        if a is not None and a.evidence is not None:
            print(f"validated {rec.index_name}: {confidence_line(a)}")
    for rec in rep.recommendations:
        served = ", ".join(
            f"{names.label(e.query.text)} {e.cost_before:,.0f}→{e.cost_after:,.0f}"
            for e in rec.effects
            if e.cost_after < e.cost_before
        )
        print(f"recommended: {rec.ddl}  [est. {_mb(rec.size_bytes)}; {served or rec.rule}]")


def _share(
    after: Mapping[int, PlanInfo], before: Mapping[int, PlanInfo], keep: frozenset[int]
) -> float:
    b = sum(p.cost for n, p in before.items() if n in keep)
    a = sum(p.cost for n, p in after.items() if n in keep)
    return a / b if b else float("nan")


def _ratio(before: Timing, after: Timing, timeout_s: float) -> str:
    if before.ms is not None and after.ms is not None:
        return f"{after.ms / before.ms:.2f}"
    if after.ms is not None and before.timed_out:
        return f"<{after.ms / (timeout_s * 1000):.3f}"
    return "-"


def _slower(pairs: Mapping[int, tuple[Timing, Timing]]) -> list[str]:
    """``Q7 (536 → 1,656 ms)`` for each query more than SLOWER times slower."""
    return [
        f"Q{n} ({b.ms:,.0f} → {a.ms:,.0f} ms)"
        for n, (b, a) in pairs.items()
        if b.ms is not None and a.ms is not None and a.ms > SLOWER * b.ms
    ]


def _total_ms(
    timings: Mapping[int, Timing], timeout_s: float, keep: set[int] | None = None
) -> float:
    """Σ median runtimes; a query that timed out counts as the timeout."""
    return sum(
        t.ms if t.ms is not None else timeout_s * 1000
        for n, t in timings.items()
        if keep is None or n in keep
    )


def print_comparison(
    queries: Sequence[TpchQuery],
    before: Mapping[int, Timing],
    after: Mapping[int, Timing],
    plans: tuple[Mapping[int, PlanInfo], Mapping[int, PlanInfo]],
    ab: Mapping[int, Paired],
    applied: Sequence[Applied],
    timeout_s: float,
) -> None:
    """Per-query runtimes and estimates before and after, then the workload totals."""
    plans_before, plans_after = plans
    new = {a.name for a in applied}
    head = ["query", "before ms", "after ms", "ratio", "est before", "est after", "est ratio"]
    head += ["A/B without ms", "A/B with ms", "A/B ratio"] if ab else []
    rows = [[*head, "new indexes used"]]
    for q in queries:
        b, a = before[q.number], after[q.number]
        pb, pa = plans_before[q.number], plans_after[q.number]
        row = [f"Q{q.number}", _ms(b, timeout_s), _ms(a, timeout_s), _ratio(b, a, timeout_s)]
        row += [
            f"{pb.cost:,.0f}",
            f"{pa.cost:,.0f}",
            f"{pa.cost / pb.cost:.2f}" if pb.cost else "-",
        ]
        pair = ab.get(q.number)
        if pair:
            row += [
                _ms(pair.without, timeout_s),
                _ms(pair.with_, timeout_s),
                _ratio(pair.without, pair.with_, timeout_s),
            ]
        elif ab:
            row += ["-", "-", "-"]
        rows.append([*row, ", ".join(sorted(pa.indexes & new)) or "-"])
    _table(rows)
    print()
    timeouts_b = sum(t.timed_out for t in before.values())
    timeouts_a = sum(t.timed_out for t in after.values())
    tb, ta = _total_ms(before, timeout_s), _total_ms(after, timeout_s)
    note = (
        " (a timed-out query counts as the timeout: before is a lower bound)" if timeouts_b else ""
    )
    print(
        f"workload runtime: before {tb / 1000:,.1f} s ({timeouts_b} timed out), "
        f"after {ta / 1000:,.1f} s ({timeouts_a} timed out): {ta / tb:.1%} of before{note}"
    )
    finished = {n for n in before if before[n].ms is not None and after[n].ms is not None}
    if len(finished) < len(before):
        fb, fa = _total_ms(before, timeout_s, finished), _total_ms(after, timeout_s, finished)
        print(
            f"  the {len(finished)} queries that finished both times: "
            f"{fb / 1000:,.1f} s → {fa / 1000:,.1f} s ({fa / fb:.1%} of before)"
        )
    if ab:
        wo = _total_ms({n: p.without for n, p in ab.items()}, timeout_s)
        wi = _total_ms({n: p.with_ for n, p in ab.items()}, timeout_s)
        print(
            f"  A/B check on those {len(ab)} queries (back to back, same statistics): "
            f"{wo / 1000:,.1f} s without → {wi / 1000:,.1f} s with ({wi / wo:.1%})"
        )
    every = frozenset(before)
    print(
        f"estimated cost (EXPLAIN with the literal parameters, Σ over queries): after = "
        f"{_share(plans_after, plans_before, every):.1%} of before for all 22; "
        f"{_share(plans_after, plans_before, KOSSMANN_QUERIES):.1%} for the 19 without Q2, Q17, Q20"
    )
    print(
        f"  reference: Kossmann et al. (VLDB 2020), best algorithm {KOSSMANN_SHARE:.0%} of the "
        "no-index cost (SF 10, 19 queries without Q2/Q17/Q20, no primary keys); our baseline "
        "already has the 8 primary keys, so less is left to gain"
    )
    total_size = sum(a.size_bytes for a in applied)
    estimated = sum(a.estimated_bytes for a in applied)
    print(
        f"indexes: {len(applied)} built, {_mb(total_size)} on disk "
        f"(advisor estimated {_mb(estimated)}), {sum(a.build_s for a in applied):.1f} s to build"
    )
    slower = _slower({n: (before[n], after[n]) for n in before})
    print(
        f"queries slower by more than {SLOWER - 1:.0%}: {len(slower)}"
        + (f": {', '.join(slower)}" if slower else "")
    )
    if ab:
        slower_ab = _slower({n: (p.without, p.with_) for n, p in ab.items()})
        print(
            f"  in the A/B check: {len(slower_ab)}"
            + (f": {', '.join(slower_ab)}" if slower_ab else "")
        )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Stages:
    """Wall seconds per stage of the run, printed at the end."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        """Time the block and print how long it took (nothing when it raised)."""
        started = time.perf_counter()
        yield
        self.seconds[stage] = time.perf_counter() - started
        print(f"[{stage}: {self.seconds[stage]:.1f} s]", flush=True)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where generated CSV files are kept (default: $DBARCH_DATA_DIR/tpch)",
    )
    parser.add_argument(
        "--server",
        choices=("pg15", "pg18"),
        default="pg15",
        help="pg15: Debian PostgreSQL 15 + HypoPG (default); pg18: embedded PostgreSQL 18, "
        "what-if by rolled-back index builds (slow at SF 1)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="statement_timeout per query, s"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each query per pass")
    parser.add_argument(
        "--no-record-timeouts",
        dest="record_timeouts",
        action="store_false",
        help="leave queries that timed out out of pg_stat_statements (by default each is "
        "recorded once per round on emptied tables, in a transaction that rolls back)",
    )
    parser.add_argument(
        "--no-ab",
        dest="ab",
        action="store_false",
        help="skip the A/B check (each query that finished before, run without and with the "
        "new indexes back to back; without = indexes dropped in a transaction that rolls back)",
    )
    parser.add_argument(
        "--max-per-table", type=int, default=5, help="advisor: new indexes per table"
    )
    parser.add_argument("--budget-mb", type=float, default=None, help="advisor: storage budget")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="server directory (default: a temporary one)"
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="measure every recommendation before/after and build only the eligible ones",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.timeout <= 0 or args.scale <= 0:
        parser.error("--repeats, --timeout and --scale must be positive")
    return args


def _server_version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT version()").fetchone()
    return str(row[0]).split(" on ")[0] if row else "?"


def bench(args: argparse.Namespace, server_dir: Path) -> None:
    """Every stage on one server; prints as it goes."""
    stages = Stages()
    queries = read_queries()
    names = QueryNames(queries)
    data_dir: Path = args.data_dir or get_settings().data_dir / "tpch"
    with stages.time("generate"):
        csv_dir, fresh = generate(data_dir.resolve(), args.scale)
        print(f"data: {csv_dir} ({'generated now' if fresh else 'cached'})")
    flavour: type[LocalPostgres] = DebianPostgres if args.server == "pg15" else EmbeddedPostgres
    extensions: tuple[str, ...] = ("pg_stat_statements", "pg_prewarm")
    if args.server == "pg15":
        extensions += ("hypopg",)
    with flavour(server_dir / args.server, fast=True, settings=SERVER_SETTINGS) as server:
        dsn = server.create_database(DATABASE, extensions=extensions)
        settings = ", ".join(f"{k}={v}" for k, v in SERVER_SETTINGS.items())
        print(f"server: {_server_version(dsn)}, {settings}")
        with stages.time("load"):
            counts = load(dsn, csv_dir)
            print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        with stages.time("explain before"):
            plans_before = explain(dsn, queries)
        with stages.time("prewarm before"):
            print(f"prewarmed {_mb(prewarm(dsn))} into shared buffers")
        reset_statements(dsn)
        with stages.time("run before"):
            before = run_queries(
                dsn,
                queries,
                repeats=args.repeats,
                timeout_s=args.timeout,
                record_timeouts=args.record_timeouts,
                label="before",
            )
        calls = recorded(dsn, names)
        empty = [f"Q{n}" for n, t in before.items() if t.recorded_empty]
        print(
            f"pg_stat_statements holds {len(calls)} of the 22 queries"
            + (
                f" ({', '.join(empty)} recorded on emptied tables after timing out)"
                if empty
                else ""
            )
        )
        selection = SelectionConfig(
            max_new_per_table=args.max_per_table,
            storage_budget_bytes=int(args.budget_mb * 2**20) if args.budget_mb else None,
        )
        with stages.time("audit"):
            run = run_audit(
                dsn,
                config=AuditConfig(selection=selection),
                allow_build=args.server == "pg18",
                validate_timeout_s=args.timeout if args.validate else None,
                # The literal queries, as log_statement would have logged them: validation
                # measures them with their standard parameters (captured samples).
                samples="\n".join(
                    "LOG:  statement: " + q.text.replace("\n", "\n\t") for q in queries
                ),
            )
        print_audit(run, names)
        with stages.time("apply"):
            applied = apply(dsn, run.report, eligible_only=args.validate)
        for a in applied:
            print(f"built {a.name} on {a.table}: {_mb(a.size_bytes)} in {a.build_s:.1f} s")
        with stages.time("explain after"):
            plans_after = explain(dsn, queries)
        with stages.time("prewarm after"):
            print(f"prewarmed {_mb(prewarm(dsn))} into shared buffers")
        with stages.time("run after"):
            after = run_queries(
                dsn,
                queries,
                repeats=args.repeats,
                timeout_s=args.timeout,
                record_timeouts=False,
                label="after",
            )
        ab: dict[int, Paired] = {}
        if args.ab and applied:
            finished = [q for q in queries if before[q.number].ms is not None]
            with stages.time("A/B check"):
                ab = ab_check(
                    dsn,
                    finished,
                    [a.name for a in applied],
                    repeats=args.repeats,
                    timeout_s=args.timeout,
                )
    print()
    print_comparison(queries, before, after, (plans_before, plans_after), ab, applied, args.timeout)
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.seconds.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (whatever the figures), 2 when the extra is missing."""
    args = _arguments(argv)
    configure_logging(level="warning")
    started = time.perf_counter()
    try:
        if args.work_dir:
            bench(args, args.work_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="dbarch-tpch-") as base:
                bench(args, Path(base))
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"whole run: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
