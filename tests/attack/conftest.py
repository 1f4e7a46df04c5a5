"""Fixtures of the attack suite: ``admin_web``, `dbarchitect serve` with the dashboard on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.attack.serve_process import ServeProcess, serve_with_admin


@pytest.fixture(scope="module")
def admin_web(
    module_store: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One real web process per test module, with ``ADMIN_TOKEN`` as its admin token."""
    with serve_with_admin(module_store, redis_url, tmp_path_factory, "admin-web") as server:
        yield server
