"""Requests and responses checked against one of GitHub's OpenAPI 3.0 descriptions.

The description is loaded once and used as one ``referencing`` resource: ``$ref`` is resolved
when a validation reaches it, and a validator is built per (operation, part) on first use.
OpenAPI 3.0's schema dialect is JSON Schema draft 4 (``$ref`` siblings ignored, boolean
``exclusiveMinimum``) plus ``nullable``, which here lets ``null`` through whatever else the
schema says; ``x-*``, ``example`` and ``discriminator`` are annotations, as in draft 4.
Formats are annotations too, except ``date-time``, which is checked (RFC 3339).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = [
    "GENERAL_STATUSES",
    "NO_BODY",
    "Description",
    "Match",
    "Violation",
    "pointer_of",
    "shown",
]

_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
#: What any endpoint may answer though few operations document it (GitHub's REST docs:
#: authentication, permissions and rate limits, server errors); bodies are ``basic-error``.
GENERAL_STATUSES = frozenset({401, 403, 429, 500, 502, 503, 504})
#: Stands for "the message had no body" (``None`` is JSON ``null``).
NO_BODY: Any = object()
_SHOWN = 160


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def pointer_of(path: Sequence[str | int]) -> str:
    """The JSON pointer (RFC 6901) of a path of keys: ``("a", 0)`` → ``/a/0``."""
    return "".join(f"/{_escape(str(part))}" for part in path)


def shown(value: Any) -> str:
    """``value`` as compact JSON, cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a request or response departs from the description."""

    description: str
    operation: str
    part: str
    pointer: str
    problem: str
    sent: str

    def __str__(self) -> str:
        where = f"{self.part} at {self.pointer or '/'}"
        return f"[{self.description}] {self.operation}: {where}: {self.problem} (sent: {self.sent})"


def _nullable(check: Callable[..., Iterator[ValidationError]]) -> Callable[..., Any]:
    """A keyword check that lets ``null`` through where the schema says ``nullable: true``."""

    def keyword(
        validator: Validator, value: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema)

    return keyword


def _is_datetime(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", instance):
        return False
    try:
        datetime.fromisoformat(instance.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time")(_is_datetime)

OpenAPI30Validator = jsonschema.validators.extend(
    Draft4Validator,
    validators={name: _nullable(check) for name, check in Draft4Validator.VALIDATORS.items()},
)


@dataclass(frozen=True, slots=True)
class _Route:
    operation_id: str
    method: str
    template: str
    strict: re.Pattern[str]
    greedy: re.Pattern[str] | None
    #: 1 for a literal segment, 0 for a parameter: more literals, earlier, win.
    rank: tuple[int, ...]


def _segment(segment: str) -> str:
    """A template segment as a pattern: literals escaped, each ``{name}`` one group."""
    parts = re.split(r"(\{[^}]+\})", segment)
    return "".join("([^/]+)" if p.startswith("{") else re.escape(p) for p in parts if p)


def _route(operation_id: str, method: str, template: str) -> _Route:
    segments = [s for s in template.split("/") if s]
    strict = "/" + "/".join(_segment(s) for s in segments)
    rank = tuple(0 if "{" in s else 1 for s in segments)
    # A parameter that is the whole last segment after a literal one may hold slashes (a
    # file path, heads/a/b); ``/repos/{owner}/{repo}`` must not swallow ``r/contents/``.
    greedy = None
    if len(segments) > 1 and rank[-2:] == (1, 0) and re.fullmatch(r"\{[^}]+\}", segments[-1]):
        greedy = re.compile(strict.removesuffix("([^/]+)") + "(.+)")
    return _Route(operation_id, method, template, re.compile(strict), greedy, rank)


@dataclass(frozen=True, slots=True)
class Match:
    """The operation a request's method and path belong to, and its path parameters."""

    operation_id: str
    method: str
    template: str
    path_params: dict[str, str]

    @property
    def label(self) -> str:
        """``operationId (METHOD /template)``."""
        return f"{self.operation_id} ({self.method} {self.template})"


class Description:
    """One OpenAPI description (api.github.com or a GHES release) and its cached validators."""

    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.name = name
        self.document = document
        self.uri = f"https://openapi.invalid/{name}.json"
        self._registry: Registry[Any] = Registry().with_resource(
            self.uri, DRAFT4.create_resource(document)
        )
        self._operations: dict[str, tuple[str, str, dict[str, Any]]] = {}
        routes: dict[str, list[_Route]] = {}
        for template, item in document["paths"].items():
            for method in _METHODS:
                if method in item:
                    op = item[method]
                    self._operations[op["operationId"]] = (method.upper(), template, op)
                    routes.setdefault(method.upper(), []).append(
                        _route(op["operationId"], method.upper(), template)
                    )
        for table in routes.values():
            table.sort(key=lambda r: r.rank, reverse=True)
        self._routes = routes
        self._validators: dict[str, Validator] = {}

    @classmethod
    def load(cls, path: Path) -> Description:
        """Read a description file (``api.github.com.json`` → name ``api.github.com``)."""
        with path.open("rb") as fh:
            return cls(path.name.removesuffix(".json"), json.load(fh))

    # ---------------------------------------------------------------- operations

    def has(self, operation_id: str) -> bool:
        """Whether the description documents ``operation_id``."""
        return operation_id in self._operations

    def operation(self, operation_id: str) -> tuple[str, str]:
        """``(METHOD, /path/template)`` of ``operation_id`` (KeyError if undocumented)."""
        method, template, _ = self._operations[operation_id]
        return method, template

    def match(self, method: str, path: str) -> Match | None:
        """The operation ``METHOD path`` calls (``path`` below the API root, still encoded)."""
        routes = self._routes.get(method.upper(), [])
        for attempt in ("strict", "greedy"):
            for route in routes:
                pattern = route.strict if attempt == "strict" else route.greedy
                found = pattern.fullmatch(path) if pattern is not None else None
                if found is not None:
                    names = re.findall(r"\{([^}]+)\}", route.template)
                    values = [unquote(v) for v in found.groups()]
                    params = dict(zip(names, values, strict=True))
                    return Match(route.operation_id, route.method, route.template, params)
        return None

    # ---------------------------------------------------------------- validation

    def _resolve(self, node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
        """Follow a local ``$ref`` (parameters, responses): the target and its pointer."""
        while "$ref" in node:
            pointer = str(node["$ref"]).removeprefix("#")
            node = self.document
            for part in pointer.lstrip("/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    def _validator(self, pointer: str) -> Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = OpenAPI30Validator(
                {"$ref": f"{self.uri}#{pointer}"},
                registry=self._registry,
                format_checker=FORMATS,
            )
            self._validators[pointer] = validator
        return validator

    def _check(self, pointer: str, instance: Any, label: str, part: str) -> list[Violation]:
        errors = sorted(
            self._validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path)
        )
        return [
            Violation(
                self.name,
                label,
                part,
                pointer_of(list(best.absolute_path)),
                best.message,
                shown(best.instance),
            )
            for best in map(_best, errors)
        ]

    def _op_pointer(self, match: Match) -> str:
        return pointer_of(["paths", match.template, match.method.lower()])

    def check_request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
    ) -> tuple[Match | None, list[Violation]]:
        """The operation a request calls and every way it departs from the description."""
        found = self.match(method, path)
        if found is None:
            sent = f"{method.upper()} {path}"
            return None, [
                Violation(
                    self.name,
                    sent,
                    "request",
                    "",
                    "no documented operation has this method and path",
                    sent,
                )
            ]
        _, template, op = self._operations[found.operation_id]
        op_pointer = self._op_pointer(found)
        item = self.document["paths"][template]
        params: list[tuple[dict[str, Any], str]] = []
        for base, where in ((item, pointer_of(["paths", template])), (op, op_pointer)):
            for i, raw in enumerate(base.get("parameters", [])):
                params.append(self._resolve(raw, f"{where}/parameters/{i}"))
        problems: list[Violation] = []
        problems += self._check_params(found, params, "path", list(found.path_params.items()))
        problems += self._check_params(found, params, "query", list(query))
        problems += self._check_body(found, op, op_pointer, body)
        return found, problems

    def _check_params(
        self,
        found: Match,
        params: list[tuple[dict[str, Any], str]],
        where: str,
        sent: list[tuple[str, str]],
    ) -> list[Violation]:
        documented = {p["name"]: (p, pointer) for p, pointer in params if p["in"] == where}
        problems: list[Violation] = []
        values: dict[str, list[str]] = {}
        for name, value in sent:
            values.setdefault(name, []).append(value)
        for name, (param, _) in documented.items():
            if param.get("required") and name not in values:
                problems.append(
                    Violation(
                        self.name,
                        found.label,
                        f"{where} parameter",
                        f"/{name}",
                        "required but not sent",
                        "nothing",
                    )
                )
        for name, given in values.items():
            if name not in documented:
                problems.append(
                    Violation(
                        self.name,
                        found.label,
                        f"{where} parameter",
                        f"/{name}",
                        "not a documented parameter",
                        shown(given),
                    )
                )
                continue
            param, pointer = documented[name]
            schema = param.get("schema", {})
            value = _coerce(given, schema)
            problems += self._check(
                f"{pointer}/schema", value, found.label, f"{where} parameter {name!r}"
            )
        return problems

    def _check_body(
        self, found: Match, op: dict[str, Any], op_pointer: str, body: Any
    ) -> list[Violation]:
        request_body = op.get("requestBody")
        if request_body is None:
            if body is NO_BODY:
                return []
            return [
                Violation(
                    self.name,
                    found.label,
                    "request body",
                    "",
                    "the operation takes no body",
                    shown(body),
                )
            ]
        request_body, pointer = self._resolve(request_body, f"{op_pointer}/requestBody")
        if body is NO_BODY:
            if request_body.get("required"):
                return [
                    Violation(
                        self.name,
                        found.label,
                        "request body",
                        "",
                        "required but not sent",
                        "no body",
                    )
                ]
            return []
        content = request_body.get("content", {})
        if "application/json" not in content:
            return [
                Violation(
                    self.name,
                    found.label,
                    "request body",
                    "",
                    f"takes {sorted(content)}, not JSON",
                    shown(body),
                )
            ]
        return self._check(
            f"{pointer}/content/application~1json/schema", body, found.label, "request body"
        )

    def check_response(self, operation_id: str, status: int, body: Any) -> list[Violation]:
        """Whether ``status`` is documented for the operation and ``body`` fits its schema."""
        method, template, op = self._operations[operation_id]
        label = f"{operation_id} ({method} {template})"
        op_pointer = pointer_of(["paths", template, method.lower()])
        responses = op.get("responses", {})
        key = (
            str(status)
            if str(status) in responses
            else "default"
            if "default" in responses
            else None
        )
        part = f"response {status}"
        if key is None:
            if status not in GENERAL_STATUSES:
                documented = ", ".join(sorted(responses))
                return [
                    Violation(
                        self.name,
                        label,
                        part,
                        "",
                        f"status {status} is not documented (documented: {documented})",
                        shown(body),
                    )
                ]
            if body is NO_BODY:
                return []
            return self._check("/components/schemas/basic-error", body, label, f"{part} body")
        response, pointer = self._resolve(responses[key], f"{op_pointer}/responses/{key}")
        content = response.get("content") or {}
        if body is NO_BODY:
            if content:
                return [
                    Violation(
                        self.name,
                        label,
                        part,
                        "",
                        f"documents a body ({', '.join(content)}) but none was sent",
                        "no body",
                    )
                ]
            return []
        if not content and status >= 400:  # GitHub explains every error in JSON
            return self._check("/components/schemas/basic-error", body, label, f"{part} body")
        if not content:
            return [
                Violation(
                    self.name, label, part, "", "documents no body but one was sent", shown(body)
                )
            ]
        media = "application/json" if "application/json" in content else next(iter(content))
        schema = content[media].get("schema")
        if schema is None:
            return []
        return self._check(
            f"{pointer}/content/{_escape(media)}/schema", body, label, f"{part} body"
        )


def _best(error: ValidationError) -> ValidationError:
    """For a ``oneOf``/``anyOf`` failure, the most telling error among its branches."""
    if error.context:
        return jsonschema.exceptions.best_match(error.context) or error
    return error


def _coerce(given: list[str], schema: Mapping[str, Any]) -> Any:
    """A query or path value as the type its schema wants (strings stay when they don't parse)."""
    kind = schema.get("type")
    if kind == "array":
        return [_scalar(v, schema.get("items", {})) for v in given]
    return _scalar(given[-1], schema)


def _scalar(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer" and re.fullmatch(r"-?\d+", value):
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
