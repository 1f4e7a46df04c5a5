"""Pure parts of the local-server launcher: names, ports, server options, binaries lookup."""

from __future__ import annotations

import doctest
import socket
from pathlib import Path

import pytest

from app.adapters import pgserver
from app.adapters.pgserver import (
    MAX_IDENTIFIER_BYTES,
    BinariesMissing,
    DebianPostgres,
    EmbeddedPostgres,
    PgServer,
    PgServerError,
    database_name,
    free_port,
)


@pytest.mark.parametrize(
    "test_id",
    ["test_orders", "test_scan[IN-list]", "9lives", "Ünïcode test", "x" * 200, "[]"],
)
def test_database_name_is_a_short_lowercase_identifier(test_id: str) -> None:
    name = database_name(test_id)

    assert 0 < len(name.encode()) <= MAX_IDENTIFIER_BYTES
    assert name.isascii()
    assert name == name.lower()
    assert name[0].isalpha() or name[0] == "_"
    assert all(ch.isalnum() or ch == "_" for ch in name)


def test_database_name_keeps_plain_names_and_separates_lossy_ones() -> None:
    assert database_name("test_orders") == "test_orders"
    assert database_name("test_x[a-b]") != database_name("test_x[a_b]")
    assert database_name("y" * 70 + "1") != database_name("y" * 70 + "2")


def test_free_port_can_be_bound() -> None:
    port = free_port()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_fast_servers_trade_durability_and_preload_pg_stat_statements(tmp_path: Path) -> None:
    options = " ".join(EmbeddedPostgres(tmp_path, fast=True)._server_options(5999))

    assert "-p 5999 -h 127.0.0.1" in options
    assert f"-k {tmp_path}" in options
    assert "shared_preload_libraries=pg_stat_statements" in options
    assert "pg_stat_statements.track=all" in options
    assert "fsync=off" in options
    assert "full_page_writes=off" in options


def test_durable_servers_keep_fsync(tmp_path: Path) -> None:
    options = EmbeddedPostgres(tmp_path, settings={"max_connections": "20"})._server_options(1)

    assert "fsync=off" not in options
    assert "max_connections=20" in options


def test_a_socket_path_too_long_falls_back_to_tcp_only(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)

    options = EmbeddedPostgres(deep)._server_options(5432)

    assert options[options.index("-k") + 1] == ""


def test_embedded_binaries_are_found_without_importing_the_package() -> None:
    assert (EmbeddedPostgres.find_bin_dir() / "pg_ctl").is_file()


def test_missing_debian_binaries_name_the_apt_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DebianPostgres, "major", 99)

    with pytest.raises(BinariesMissing, match="postgresql-15 postgresql-15-hypopg"):
        DebianPostgres.find_bin_dir()


def test_an_unstarted_server_has_no_dsn(tmp_path: Path) -> None:
    with pytest.raises(PgServerError, match="not running"):
        EmbeddedPostgres(tmp_path).dsn()


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(pgserver).failed == 0


def test_local_servers_satisfy_the_fixture_protocol(tmp_path: Path) -> None:
    """mypy checks the assignment; at run time the members are there."""
    server: PgServer = EmbeddedPostgres(tmp_path)

    assert callable(server.dsn)
    assert callable(server.create_database)
