"""`dbarchitect run` and `deliver` as a person uses them: real processes, no GitHub credentials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.adapters.pgserver import EmbeddedPostgres, PgServer, free_port
from app.adapters.store import upgrade_store
from tests.targets import seed_accounts

CONFIG = "version: 1\ntarget: shop\nmigrations:\n  path: migrations/versions\n"


@pytest.fixture
def target(pg15: PgServer) -> str:
    dsn = pg15.create_database("run_target", extensions=("pg_stat_statements", "hypopg"))
    seed_accounts(dsn)
    return dsn


def test_run_serves_and_a_delivered_audit_lands_in_the_outbox(
    target: str, pg18: EmbeddedPostgres, redis_url: str, tmp_path: Path
) -> None:
    store = pg18.create_database("run_store", extensions=("vector",))
    upgrade_store(store)
    checkout = tmp_path / "checkout"
    (checkout / ".github").mkdir(parents=True)
    (checkout / ".github" / "db-architect.yml").write_text(CONFIG)
    (checkout / "migrations" / "versions").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBARCH_")} | {
        "DBARCH_DATA_DIR": str(tmp_path / "data"),
        "DBARCH_STORE_DSN": store,
        "DBARCH_REDIS_URL": redis_url,
        "DBARCH_WEB_PORT": str(free_port()),
        "DBARCH_TARGETS": json.dumps({"shop": {"dsn": target, "allow_target_validation": True}}),
        "DBARCH_LOCAL_REPO_DIR": str(checkout),
        "DBARCH_GITHUB_WEBHOOK_SECRET": "local-secret",
    }
    cli = [sys.executable, "-m", "app.cli"]
    log = tmp_path / "run.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("w") as log_file:
        app = subprocess.Popen(
            [*cli, "run"], env=env, stdout=subprocess.PIPE, stderr=log_file, text=True
        )
    try:
        outbox = tmp_path / "data" / "outbox" / "local" / "demo"
        delivered = _deliver_when_up(cli, env, app)
        assert delivered.returncode == 0, delivered.stderr
        drafts = _wait_for(lambda: list(outbox.rglob("pr.md")), app)
        assert "perf(db): add index on accounts (email)" in drafts[0].read_text()
        assert list(outbox.rglob("files/migrations/versions/*_add_index_accounts_email.py"))
    finally:
        app.send_signal(signal.SIGINT)
        out, _ = app.communicate(timeout=60)
    err = log.read_text()
    assert app.returncode == 0, err
    assert "dry run (no GitHub App credentials" in out
    assert target not in out + err  # DSNs are never printed


def _deliver_when_up(
    cli: list[str], env: dict[str, str], app: subprocess.Popen[str]
) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(
            [*cli, "deliver", "/audit"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode == 0 or time.monotonic() > deadline or app.poll() is not None:
            return done
        time.sleep(0.5)


def _wait_for(
    found: Callable[[], list[Path]], app: subprocess.Popen[str], timeout_s: float = 120
) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while not (result := found()):
        assert app.poll() is None, "dbarchitect run stopped"
        assert time.monotonic() < deadline, "no pull request draft in the outbox"
        time.sleep(0.3)
    return result
