"""pytest hooks: a contract violation fails the test that caused it; a coverage line at the end.

tests/conftest.py imports these hooks. A violation found while a test's setup, call or
teardown ran (by the fake GitHub in any thread, or by a webhook fixture) fails that phase
with every violation listed: the operation, the JSON pointer, the problem and what was sent.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from app.adapters.github.operations import OPERATIONS
from tests.contract.session import CONTRACT, DOTCOM, GHES

__all__ = [
    "GitHubContractViolation",
    "coverage_line",
    "pytest_runtest_call",
    "pytest_runtest_setup",
    "pytest_runtest_teardown",
    "pytest_terminal_summary",
]

#: At most this many violations are listed per failure (the count says how many there were).
SHOWN = 12


class GitHubContractViolation(AssertionError):
    """A request the App sent, or an answer a fake gave, that GitHub's description forbids."""


def _raise_if_violated(phase: str) -> None:
    found = CONTRACT.take()
    if not found:
        return
    listed = "\n".join(f"  - {v}" for v in found[:SHOWN])
    more = f"\n  … and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    raise GitHubContractViolation(
        f"{len(found)} GitHub contract violation(s) during {phase}:\n{listed}{more}\n"
        "Fix the request (app/adapters/github) or the fake (tests/github_fake.py, "
        "tests/payloads.py) so it matches GitHub's published description."
    )


def _guarded(phase: str) -> Generator[None, object, object]:
    CONTRACT.take()  # violations from outside any test (e.g. a server thread) are not ours
    try:
        result = yield
    except BaseException:
        _raise_if_violated(phase)
        raise
    _raise_if_violated(phase)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """Fail the setup of a test whose fixtures broke the contract."""
    return (yield from _guarded("setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Fail a test that broke the contract, even if it passed otherwise."""
    return (yield from _guarded("the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """Fail the teardown of a test whose fixtures broke the contract while finishing."""
    return (yield from _guarded("teardown"))


def coverage_line() -> str:
    """``GitHub contract: N operations used by the App, M exercised by tests (K requests
    validated, W webhook payloads)`` plus what the loaded GHES description says."""
    used = {op.operation_id for op in OPERATIONS}
    seen = set().union(*CONTRACT.exercised.values()) if CONTRACT.exercised else set()
    line = (
        f"GitHub contract: {len(used)} operations used by the App, {len(used & seen)} "
        f"exercised by tests ({CONTRACT.requests} requests validated, "
        f"{CONTRACT.payloads} webhook payloads; {CONTRACT.seconds:.2f} s validating, "
        f"{CONTRACT.loading_seconds:.2f} s reading descriptions)"
    )
    if not CONTRACT.available:
        return f"{line}; NOT CHECKED: {CONTRACT.missing_message()}"
    ghes = CONTRACT.loaded(GHES)
    if ghes is not None:
        missing = sorted(op for op in used if not ghes.has(op))
        line += (
            f"; {GHES}: {len(used) - len(missing)}/{len(used)} operations documented"
            + (f" (missing: {', '.join(missing)})" if missing else "")
            + f", {len(CONTRACT.exercised.get(GHES, ()))} exercised"
        )
    if CONTRACT.loaded(DOTCOM) is None and ghes is None:
        line += " (descriptions not loaded: no test in this run talked to the fake GitHub)"
    return line


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the coverage line."""
    terminalreporter.write_line(coverage_line())
