"""Another user of this machine against the PostgreSQL servers we start (store, demo, tests):
without the superuser's password nobody gets in, and only the server's account can read it."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app.adapters.pg_auth import HBA_SCRAM_ONLY
from app.adapters.pgserver import EmbeddedPostgres


def _refused(conninfo: str) -> str:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(conninfo, connect_timeout=5).close()
    return str(caught.value)


@pytest.fixture
def no_client_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No password from the environment or a ~/.pgpass may sneak into the attempts."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("no_client_password")
def test_a_connection_without_the_password_is_refused(server_dir: Path) -> None:
    with EmbeddedPostgres(server_dir, fast=True) as server:
        port = server.port
        with psycopg.connect(server.dsn(), connect_timeout=5) as conn:  # the DSN we hand out
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)

        shown = server.dsn(with_password=False)  # what a person is shown
        assert shown == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert "no password" in _refused(shown)
        wrong = make_conninfo(server.dsn(), password="guessed")
        assert "password authentication failed" in _refused(wrong)
        # The unix socket next to the data directory asks for it too (no peer, no trust).
        over_socket = f"host={server.base_dir} port={port} user=postgres dbname=postgres"
        assert "no password" in _refused(over_socket)

        kept = server.password_file.stat()
        assert stat.S_IMODE(kept.st_mode) == 0o600
        assert server.password_file.read_text().strip() in server.dsn()


@pytest.mark.timeout(60)
def test_another_os_user_cannot_read_the_password(server_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to another OS user needs root")
    with EmbeddedPostgres(server_dir, fast=True) as server:
        stranger = pwd.getpwnam("nobody")
        assert server.password_file.stat().st_uid != stranger.pw_uid
        read = subprocess.run(
            ["/bin/cat", str(server.password_file)],
            user=stranger.pw_uid,
            group=stranger.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            check=False,
        )
        assert read.returncode != 0
        assert "Permission denied" in read.stderr
        assert read.stdout == ""


@pytest.mark.timeout(90)
@pytest.mark.usefixtures("no_client_password")
def test_a_data_directory_made_with_trust_gets_a_password(server_dir: Path) -> None:
    server = EmbeddedPostgres(server_dir, fast=True)
    with server:
        pass
    # What earlier versions left: pg_hba.conf trusting every local user, no password.
    hba = server.data_dir / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    server.password_file.unlink()

    with server:
        assert hba.read_text() == HBA_SCRAM_ONLY
        _refused(f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
        with psycopg.connect(server.dsn(), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
