"""Webhook payloads checked against @octokit/webhooks-schemas (one definition per event/action)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from tests.contract.openapi import FORMATS, pointer_of, shown

__all__ = ["WebhookSchemas"]


class WebhookSchemas:
    """``schema.json`` of @octokit/webhooks-schemas, with a validator per definition."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.uri = "https://webhooks.invalid/schema.json"
        self._registry: Registry[Any] = Registry().with_resource(
            self.uri, DRAFT7.create_resource(document)
        )
        self._validators: dict[str, Validator] = {}

    @classmethod
    def load(cls, path: Path) -> WebhookSchemas:
        """Read ``schema.json``."""
        with path.open("rb") as fh:
            return cls(json.load(fh))

    def definition(self, event: str, payload: Any) -> str | None:
        """The definition for ``event`` with the payload's ``action`` (None: undocumented)."""
        definitions = self.document["definitions"]
        action = payload.get("action") if isinstance(payload, dict) else None
        for name in (f"{event}${action}", f"{event}$event", f"{event}_event"):
            if name in definitions:
                return name
        return None

    def check(self, event: str, payload: Any) -> list[str]:
        """Every way ``payload`` departs from the schema of ``event`` (empty: it fits)."""
        name = self.definition(event, payload)
        if name is None:
            return [f"[webhooks] {event}: no schema documents this event (sent: {shown(payload)})"]
        validator = self._validators.get(name)
        if validator is None:
            validator = Draft7Validator(
                {"$ref": f"{self.uri}#/definitions/{name}"},
                registry=self._registry,
                format_checker=FORMATS,
            )
            self._validators[name] = validator
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        return [
            f"[webhooks] {name}: payload at {pointer_of(list(e.absolute_path)) or '/'}: "
            f"{e.message} (sent: {shown(e.instance)})"
            for e in errors
        ]
