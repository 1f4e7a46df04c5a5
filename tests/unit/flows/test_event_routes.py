"""One registry of (event, action) pairs: the receiver accepts and the worker routes the same."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.bot import events as registry
from app.bot.events import ACCEPTED_EVENTS, FAMILIES, Family, family_of
from app.flows import events as handlers
from app.flows.deliveries import handle
from app.flows.events.router import ACCOUNT_HANDLERS, REPOSITORY_HANDLERS, routes
from app.web import envelope
from tests import payloads
from tests.unit.flows.test_deliveries import job, setup

EVENTS = Path(handlers.__file__).parent


def test_the_envelope_accepts_exactly_what_the_worker_routes() -> None:
    assert envelope.ACCEPTED_EVENTS is ACCEPTED_EVENTS
    assert set(routes()) == ACCEPTED_EVENTS
    assert all(envelope.accepts(event, action) for event, action in routes())


def test_every_family_has_one_handler_module_with_a_docstring() -> None:
    names = {family.name for family in FAMILIES}
    assert names == set(REPOSITORY_HANDLERS) | set(ACCOUNT_HANDLERS)
    for name in names:
        tree = ast.parse((EVENTS / f"{name}.py").read_text())
        doc = ast.get_docstring(tree)
        assert doc and "\n" not in doc.strip(), name


def test_a_registered_family_without_a_handler_is_refused_with_the_fix() -> None:
    orphan = Family("webhooks_of_tomorrow", "merge_group", frozenset({"checks_requested"}))

    with pytest.raises(LookupError, match=r"webhooks_of_tomorrow.*router\.py"):
        routes((*FAMILIES, orphan))


def test_the_registry_and_its_package_import_nothing_with_io() -> None:
    """The receiver reads the registry: importing it must not load the worker's flows."""
    for path in (EVENTS / "__init__.py", Path(registry.__file__)):
        tree = ast.parse(path.read_text())
        imported = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert imported <= {"__future__", "dataclasses"}, path


def test_family_of_knows_only_registered_pairs() -> None:
    assert family_of("issue_comment", "created") == FAMILIES[0]
    assert family_of("issue_comment", "edited") is None
    assert family_of("installation", None) is None


async def test_an_unregistered_action_reaches_no_handler() -> None:
    deps, repo, queued = setup()
    edited = payloads.issue_comment("/audit") | {"action": "edited", "changes": {}}

    outcome = await handle(job("issue_comment", edited, checked=False), deps)

    assert outcome == "ignored: issue_comment.edited" and not repo.calls and not queued
