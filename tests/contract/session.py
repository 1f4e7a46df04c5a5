"""The test session's contract checker: what the fakes saw, what broke GitHub's contract.

``CONTRACT`` is shared by the fakes (tests/github_fake.py calls :meth:`Contract.exchange` for
every request it answers; tests/payloads.py calls :meth:`Contract.webhook` for every delivery
it builds) and by the pytest hooks in :mod:`tests.contract.plugin`, which fail the test that
caused a violation and print the coverage line at the end of the session.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.contract.openapi import NO_BODY, Description, Violation, pointer_of
from tests.contract.spec_files import GHES_VERSION, HINT, check_spec_dir, spec_dir
from tests.contract.webhooks import WebhookSchemas

__all__ = ["CONTRACT", "NO_BODY", "Contract"]

DOTCOM = "api.github.com"
GHES = f"ghes-{GHES_VERSION}"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class Contract:
    """Descriptions loaded on first use, the violations not yet reported, and counts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.RLock()
        self._descriptions: dict[str, Description] = {}
        self._webhooks: WebhookSchemas | None = None
        self._checked_dir: list[str] | None = None
        self._pending: list[str] = []
        self._tolerating: list[list[str]] = []
        self.requests = 0
        self.payloads = 0
        #: Time spent checking, and (apart from it) reading descriptions and schemas.
        self.seconds = 0.0
        self.loading_seconds = 0.0
        #: operationIds seen in validated requests, by description name.
        self.exercised: dict[str, set[str]] = {}

    # ---------------------------------------------------------------- loading

    def problems(self) -> list[str]:
        """What is wrong with the spec dir (checked once per session; empty: usable)."""
        with self._lock:
            if self._checked_dir is None:
                self._checked_dir = check_spec_dir(self.directory)
            return self._checked_dir

    @property
    def available(self) -> bool:
        """Whether the description files are there (and match their pins)."""
        return not self.problems()

    def missing_message(self) -> str:
        """Why nothing can be checked, and what to do."""
        return (
            f"GitHub's description files are missing in {self.directory} "
            f"({'; '.join(self.problems())}): {HINT}"
        )

    def description(self, name: str) -> Description:
        """``api.github.com`` or ``ghes-3.x``, read on first use (~0.3 s each)."""
        with self._lock:
            if name not in self._descriptions:
                started = time.perf_counter()
                self._descriptions[name] = Description.load(self.directory / f"{name}.json")
                self.loading_seconds += time.perf_counter() - started
            return self._descriptions[name]

    def loaded(self, name: str) -> Description | None:
        """The description if this session has read it already."""
        return self._descriptions.get(name)

    def webhook_schemas(self) -> WebhookSchemas:
        """The webhook payload schemas, read on first use."""
        with self._lock:
            if self._webhooks is None:
                started = time.perf_counter()
                self._webhooks = WebhookSchemas.load(self.directory / "webhooks-schema.json")
                self.loading_seconds += time.perf_counter() - started
            return self._webhooks

    # ---------------------------------------------------------------- checking

    def _unchecked(self) -> bool:
        """True when nothing can be checked; in CI that is itself reported as a violation."""
        if self.available:
            return False
        if _in_ci():
            self._report([self.missing_message()])
        return True

    def _report(self, problems: Sequence[str | Violation]) -> None:
        with self._lock:
            target = self._tolerating[-1] if self._tolerating else self._pending
            target += [str(p) for p in problems]

    def exchange(
        self,
        *,
        enterprise: bool,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        status: int | None,
        answer: Any,
    ) -> list[Violation]:
        """Check one request a fake received and the answer it gave (``status`` None: it
        failed in transport). ``body``/``answer`` are :data:`NO_BODY` when there was none."""
        if self._unchecked():
            return []
        description = self.description(GHES if enterprise else DOTCOM)
        started = time.perf_counter()
        found, problems = description.check_request(method, path, query, body)
        if found is not None and status is not None:
            problems += description.check_response(found.operation_id, status, answer)
        with self._lock:
            self.seconds += time.perf_counter() - started
            self.requests += 1
            if found is not None:
                self.exercised.setdefault(description.name, set()).add(found.operation_id)
        self._report(problems)
        return problems

    def webhook(self, event: str, payload: Any) -> list[str]:
        """Check one webhook payload a test delivers against the ``event`` schema."""
        if self._unchecked():
            return []
        schemas = self.webhook_schemas()
        started = time.perf_counter()
        problems = schemas.check(event, payload)
        with self._lock:
            self.seconds += time.perf_counter() - started
            self.payloads += 1
        self._report(problems)
        return problems

    def take(self) -> list[str]:
        """The violations reported since the last call (each is reported once)."""
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    @contextmanager
    def tolerating(self) -> Iterator[list[str]]:
        """Check without failing the test, collecting the violations into the yielded list:
        for tests that break the contract on purpose (e.g. to show the fake answers an
        invalid request as GitHub would)."""
        swallowed: list[str] = []
        with self._lock:
            self._tolerating.append(swallowed)
        try:
            yield swallowed
        finally:
            with self._lock:
                self._tolerating.remove(swallowed)


def answering(
    response: httpx.Response, *, enterprise: bool = False, root: str = ""
) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect answering ``response`` after checking the exchange (for tests
    that mock one GitHub endpoint with respx instead of the fake; ``root``: the API path
    prefix, ``/api/v3`` on GHES)."""

    def side_effect(request: httpx.Request) -> httpx.Response:
        CONTRACT.exchange(
            enterprise=enterprise,
            method=request.method,
            path=request.url.path.removeprefix(root) or "/",
            query=list(request.url.params.multi_items()),
            body=body_of(request.content),
            status=response.status_code,
            answer=body_of(response.content),
        )
        return response

    return side_effect


def body_of(content: bytes) -> Any:
    """A message body as JSON, :data:`NO_BODY` when empty, the text when not JSON."""
    if not content:
        return NO_BODY
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")


CONTRACT = Contract(spec_dir())

__all__ += ["answering", "body_of", "pointer_of"]
