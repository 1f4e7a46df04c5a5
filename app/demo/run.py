"""`dbarchitect demo`: embedded PostgreSQL 18, the seeded shop and its workload, audited."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import psycopg

from app.adapters.pgserver import EmbeddedPostgres
from app.demo.shop import run_workload, seed
from app.engine.advisor.audit import AuditConfig
from app.engine.advisor.rules import RuleConfig
from app.engine.advisor.selection import Progress
from app.engine.model import recommendation_id
from app.engine.proof.measured import measurement_of
from app.engine.report import Report
from app.flows.audit_target import ValidationSpec, WorkloadSpec, audit_target
from app.flows.write_out import write_out

DATABASE = "shop"
_SEEDED = (
    "SELECT to_regclass('public.posts') IS NOT NULL AND to_regclass('public.events') IS NOT NULL"
)


def demo_server(data_dir: Path) -> EmbeddedPostgres:
    """The demo's server (persistent under ``data_dir``), not yet started."""
    return EmbeddedPostgres(data_dir / "demo-pg18", fast=True)


def prepare(server: EmbeddedPostgres, *, say: Callable[[str], None]) -> str:
    """Seed the shop once, then replay its workload into a fresh pg_stat_statements."""
    dsn = server.dsn(DATABASE)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(_SEEDED).fetchone()
            seeded = bool(row and row[0])
    except psycopg.OperationalError:
        seeded = False
    if not seeded:
        say("seeding the shop database (about 0.9 M rows) …")
        dsn = server.create_database(DATABASE, extensions=("pg_stat_statements",))
        with psycopg.connect(dsn, autocommit=True) as conn:
            seed(conn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        say("running the shop workload to fill pg_stat_statements …")
        run_workload(conn, repeat=10)
    return dsn


def run_demo(
    data_dir: Path,
    *,
    keep: bool,
    render: Callable[[Report], str],
    progress: Progress | None = None,
    out_dir: Path | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Start the demo server, prepare the shop, audit it from pg_stat_statements, print it."""

    def say(text: str) -> None:
        print(f"demo: {text}", file=err, flush=True)

    server = demo_server(data_dir)
    say(f"starting embedded PostgreSQL 18 in {server.base_dir} …")
    server.start()
    try:
        dsn = prepare(server, say=say)
        # The demo database is minutes old: count indexes unused since its statistics reset.
        config = AuditConfig(rules=replace(RuleConfig(), unused_min_days=0))
        # The demo database is our own throwaway: it doubles as the validation sandbox.
        report = audit_target(
            dsn,
            WorkloadSpec(),
            config=config,
            progress=progress,
            allow_build=True,
            validation=ValidationSpec(sandbox_dsn=dsn),
        )
        print(render(report), file=out, end="")
        if out_dir is not None:
            written = write_out(report, out_dir)
            say(
                f"wrote {len(written.revisions)} revision(s) and {len(written.evidence)} "
                f"evidence file(s) to {out_dir}"
            )
        say("unused-index window lowered to 0 days for this minutes-old database")
        say("what-if used real index builds in rolled-back transactions (PG 18 has no HypoPG)")
        measured = [
            measurement_of(r, report.assessments.get(recommendation_id(r))).measured
            for r in report.recommendations
        ]
        say(
            f"{sum(measured)} of {len(measured)} recommendation(s) measured before/after in a "
            "transaction that rolled back (the report says why for any other)"
        )
        if keep:
            say(
                f'server left running: PGPASSWORD="$(cat {server.password_file})" '
                f"dbarchitect audit --dsn '{server.dsn(DATABASE, with_password=False)}' "
                "--allow-build"
            )
    finally:
        if not keep:
            server.stop()
    return 0
