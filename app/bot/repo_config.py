"""The repository's `.github/db-architect.yml`: typed, validated, and never holding a DSN.

:func:`parse_config` takes what a YAML loader returned and checks every key; a problem is a
:class:`ConfigError` naming the key, so a broken file fails the check run loudly instead of
being half-applied. The YAML text itself is read by ``app.adapters.yaml_config``.
"""
# Long module: the whole YAML schema and its error messages in one place, the file users edit.

from __future__ import annotations

import difflib
import fnmatch
import math
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.engine.advisor.budget import DEFAULT_BUDGET, BudgetError, check_budget
from app.engine.advisor.rules import RULE_IDS
from app.engine.model import Recommendation, recommendation_id
from app.engine.proof.confidence import MIN_CONFIDENCE

__all__ = [
    "ACTIONS",
    "CONFIG_PATH",
    "KNOWN_RULES",
    "ConfigError",
    "Cron",
    "Ignore",
    "RepoConfig",
    "Validation",
    "parse_config",
    "parse_cron",
    "table_problem",
]

CONFIG_PATH = ".github/db-architect.yml"
Validation = Literal["hypopg", "sandbox", "target-transaction"]
VALIDATIONS: tuple[Validation, ...] = ("hypopg", "sandbox", "target-transaction")
ACTIONS: frozenset[str] = frozenset({"create_index", "drop_index", "reindex"})
#: What ``ignore.rules`` may name: an action, a finding rule, or ``workload`` (the selection).
KNOWN_RULES: frozenset[str] = ACTIONS | RULE_IDS | {"workload"}
MAX_LABELS = 10
MAX_LABEL_CHARS = 50
MAX_LIST_ITEMS = 500
DSN_REFUSED = "put DSNs in the operator's DBARCH_TARGETS, not in the repository"

_TARGET = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FINGERPRINT = re.compile(r"(?:(?P<action>[a-z_]+):)?(?P<hex>[0-9a-f]{8})")
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")
_KEYS = (
    "version",
    "target",
    "migrations",
    "min_confidence",
    "pr_concurrent_limit",
    "pr_hourly_limit",
    "labels",
    "schedule",
    "timezone",
    "dry_run",
    "ignore",
    "validation",
    "disk_budget",
)
DEFAULT_MIGRATIONS_PATH = "migrations/versions"
DEFAULT_LABELS = ("db-architect", "performance")
_IGNORE_KEYS = ("tables", "rules", "fingerprints")
_MIGRATIONS_KEYS = ("path",)


class ConfigError(ValueError):
    """A key of the repository config is wrong; ``str()`` says which and why.

    ``problems`` lists every problem found, the first one being ``key`` / ``problem``.

    >>> str(ConfigError("pr_hourly_limit", "must be a whole number ≥ 0, got 'two'"))
    "`pr_hourly_limit`: must be a whole number ≥ 0, got 'two'"
    """

    def __init__(self, key: str, problem: str, *, more: Iterable[tuple[str, str]] = ()) -> None:
        self.key = key
        self.problem = problem
        self.problems: tuple[tuple[str, str], ...] = ((key, problem), *more)
        text = f"{key}: {problem}" if key.startswith("(") else f"`{key}`: {problem}"
        if len(self.problems) > 1:
            n = len(self.problems) - 1
            text += f" (and {n} more problem{'s' if n != 1 else ''})"
        super().__init__(text)


# ---------------------------------------------------------------------- ignore


def _split_table(name: str) -> tuple[str, str]:
    """``(schema, table)``; an unqualified name is in ``public``."""
    schema, _, table = name.rpartition(".")
    return (schema or "public").lower(), table.lower()


def table_problem(name: str) -> str | None:
    """Why ``name`` is not a usable table name or pattern, or None.

    >>> table_problem("public.orders") is None
    True
    >>> print(table_problem("a.b.c"))
    must be `table` or `schema.table`, got 'a.b.c'
    """
    if not name.strip() or name != name.strip() or len(name) > 130:
        return f"must be `table` or `schema.table`, got {_shown(name)}"
    parts = name.split(".")
    if len(parts) > 2 or not all(parts):
        return f"must be `table` or `schema.table`, got {_shown(name)}"
    return None


def _table_matches(pattern: str, table: str) -> bool:
    """``orders`` and ``public.orders`` both match ``public.orders``; ``*`` is a wildcard."""
    want, have = _split_table(pattern), _split_table(table)
    return all(fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True))


@dataclass(frozen=True, slots=True)
class Ignore:
    """What the repository asked DB Architect never to propose."""

    #: ``orders`` or ``public.orders`` (both match public.orders); ``*`` matches any run of
    #: characters (``archive.*`` is a whole schema).
    tables: tuple[str, ...] = ()
    #: Actions (``create_index``, ``drop_index``, ``reindex``) or rule names
    #: (``unused_index``, ``duplicate_index``, ``invalid_index``, ``fk_without_index``,
    #: ``workload``).
    rules: tuple[str, ...] = ()
    #: 8-hex fingerprints (``3f9a1c2b``) or full recommendation ids (``create_index:3f9a1c2b``).
    fingerprints: tuple[str, ...] = ()

    def matches(self, rec: Recommendation) -> str | None:
        """The reason ``rec`` is ignored, or None."""
        return self.matches_parts(
            table=rec.table, rec_id=recommendation_id(rec), kinds=(rec.action, rec.rule)
        )

    def matches_parts(self, *, table: str, rec_id: str, kinds: Iterable[str]) -> str | None:
        """:meth:`matches` from the parts alone (when the Recommendation is not at hand)."""
        source = f"ignored by {CONFIG_PATH}"
        for pattern in self.tables:
            if _table_matches(pattern, table):
                return f"{source}: ignore.tables has `{pattern}`"
        kinds = set(kinds)
        for rule in self.rules:
            if rule in kinds:
                return f"{source}: ignore.rules has `{rule}`"
        short = rec_id.partition(":")[2]
        for fp in self.fingerprints:
            if fp in (rec_id, short):
                return f"{source}: ignore.fingerprints has `{fp}`"
        return None


# ---------------------------------------------------------------------- cron

_MONTHS = tuple("jan feb mar apr may jun jul aug sep oct nov dec".split())
_DAYS = tuple("sun mon tue wed thu fri sat".split())
#: (name, low, high, names) per field; weekday 7 is Sunday too.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed 5-field cron expression; times are wall-clock times in the config's timezone."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    #: 0 = Sunday … 6 = Saturday.
    weekdays: frozenset[int]
    #: As in cron: when both day fields are restricted, a day matching either one is due.
    any_day: bool = True
    any_weekday: bool = True

    def matches(self, when: datetime) -> bool:
        """Whether the schedule fires in the minute of ``when`` (a local wall-clock time).

        >>> from datetime import datetime
        >>> parse_cron("30 3 * * mon-fri").matches(datetime(2026, 11, 2, 3, 30))
        True
        >>> parse_cron("30 3 * * mon-fri").matches(datetime(2026, 11, 1, 3, 30))
        False
        """
        if when.minute not in self.minutes or when.hour not in self.hours:
            return False
        if when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...], what: str) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + (1 if what == "month" else 0)
    if not text.isdigit():
        raise ValueError(f"{what} `{text}` is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is out of range {low}–{high}")
    return value


def _cron_item(item: str, low: int, high: int, names: tuple[str, ...], what: str) -> set[int]:
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(f"{what} step `/{step_text}` must be a whole number ≥ 1")
        step = int(step_text)
    if span == "*":
        first, last = low, high
    elif "-" in span:
        a, _, b = span.partition("-")
        first, last = (_cron_value(x, low, high, names, what) for x in (a, b))
        if first > last:
            raise ValueError(f"{what} range `{span}` runs backwards")
    else:
        first = _cron_value(span, low, high, names, what)
        last = high if slash else first
    return set(range(first, last + 1, step))


def parse_cron(expr: str) -> Cron:
    """A 5-field cron expression: ``*``, lists, ranges, steps, month and weekday names.

    The minute field must be a single minute: an audit reads the whole workload, so it runs
    at most once an hour.

    >>> sorted(parse_cron("0 9-17/4 * * 1,5").hours)
    [9, 13, 17]
    >>> parse_cron("*/5 * * * *")
    Traceback (most recent call last):
    ...
    ValueError: runs more than once an hour (minute `*/5`): use one minute, e.g. `0 3 * * *`

    Raises:
        ValueError: the expression is malformed or out of range.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    sets: list[frozenset[int]] = []
    for text, (what, low, high, names) in zip(fields, _FIELDS, strict=True):
        values: set[int] = set()
        for item in text.split(","):
            values |= _cron_item(item, low, high, names, what)
        sets.append(frozenset(values))
    if len(sets[0]) != 1:
        raise ValueError(
            f"runs more than once an hour (minute `{fields[0]}`): use one minute, e.g. `0 3 * * *`"
        )
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        sets[0],
        sets[1],
        sets[2],
        sets[3],
        weekdays,
        any_day=fields[2].startswith("*"),
        any_weekday=fields[4].startswith("*"),
    )


# ---------------------------------------------------------------------- the config


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """The repository's settings, every key validated (defaults when the file is missing)."""

    version: int = 1
    #: A target NAME the operator maps to a DSN (``DBARCH_TARGETS``); None = the default one.
    target: str | None = None
    migrations_path: str = DEFAULT_MIGRATIONS_PATH
    min_confidence: float = MIN_CONFIDENCE
    pr_concurrent_limit: int = 5
    pr_hourly_limit: int = 2
    labels: tuple[str, ...] = DEFAULT_LABELS
    schedule: str | None = None
    timezone: str = "UTC"
    dry_run: bool = False
    ignore: Ignore = field(default_factory=Ignore)
    #: None = the sandbox when the operator configured one for the target, else rolled-back
    #: builds on the target when the operator allowed them, else HypoPG (estimates only).
    validation: Validation | None = None
    #: New index bytes one audit may propose: ``25%`` of the database, ``500MB``, or ``off``.
    disk_budget: str = DEFAULT_BUDGET

    @property
    def cron(self) -> Cron | None:
        """The parsed ``schedule``, or None when audits run on request only."""
        return parse_cron(self.schedule) if self.schedule else None


def _shown(value: object) -> str:
    """A value as a user wrote it, short enough to quote in a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


class _Reader:
    """Collects every problem, so one check run lists them all."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, key: str, problem: str) -> None:
        self.problems.append((key, problem))

    def mapping(
        self, data: Mapping[object, object], keys: tuple[str, ...], prefix: str = ""
    ) -> dict[str, object]:
        """The known keys of ``data``; unknown ones are problems with a suggestion."""
        known: dict[str, object] = {}
        for key, value in data.items():
            name = str(key)
            if name in keys:
                known[name] = value
                continue
            hint = _did_you_mean(name.replace("-", "_"), keys) or (
                f"; known keys: {', '.join(f'`{k}`' for k in keys)}"
            )
            self.fail(prefix + name, "unknown key" + hint)
        return known

    def strings(
        self, key: str, value: object, check: Callable[[str], str | None]
    ) -> tuple[str, ...]:
        """A list of strings, each passing ``check`` (which returns a problem or None)."""
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(key, f"must be a list, got {_shown(value)}")
            return ()
        if len(value) > MAX_LIST_ITEMS:
            self.fail(key, f"has {len(value)} items; at most {MAX_LIST_ITEMS}")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            problem = check(item) if isinstance(item, str) else f"must be text, got {_shown(item)}"
            if problem:
                self.fail(f"{key}[{i}]", problem)
            elif item not in out:
                out.append(item)
        return tuple(out)


def _limit(reader: _Reader, key: str, value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    reader.fail(key, f"must be a whole number ≥ 0, got {_shown(value)}")
    return default


def _min_confidence(reader: _Reader, value: object) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if MIN_CONFIDENCE <= number <= 1.0:
        return number
    hint = ""
    if 1 < number <= 100:
        hint = f" (write {number / 100:g} for {number:g} %)"
    elif 0 <= number < MIN_CONFIDENCE:
        hint = "; the 0.80 bar can be raised, never lowered"
    reader.fail(
        "min_confidence",
        f"must be a number from {MIN_CONFIDENCE} to 1, got {_shown(value)}{hint}",
    )
    return MIN_CONFIDENCE


def _target(reader: _Reader, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and any(m in value.lower() for m in ("://", "host=", "@")):
        reader.fail("target", f"looks like a connection string; {DSN_REFUSED}")  # never echo it
        return None
    if isinstance(value, str) and _TARGET.fullmatch(value):
        return value
    hint = ""
    if isinstance(value, bool):
        hint = " (YAML reads unquoted yes/no/on/off as true/false: quote it)"
    reader.fail(
        "target",
        "must be the name of a target the operator configured (letters, digits, `_`, `.`, `-`; "
        f"at most 64), got {_shown(value)}{hint}",
    )
    return None


def _path_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"must be a directory path relative to the repository root, got {_shown(value)}"
    if value.startswith(("/", "~")) or "\\" in value or re.match(r"[A-Za-z]:", value):
        return f"must be relative to the repository root, got {_shown(value)}"
    if ".." in value.split("/"):
        return f"must stay inside the repository (no `..`), got {_shown(value)}"
    normal = posixpath.normpath(value).lower()
    if normal == ".github/workflows" or normal.startswith(".github/workflows/"):
        return "must not be under .github/workflows (DB Architect never writes workflows)"
    return None


def _migrations_path(reader: _Reader, value: object) -> str:
    default = DEFAULT_MIGRATIONS_PATH
    if value is None:
        return default
    if not isinstance(value, dict):
        reader.fail(
            "migrations", f"must be a mapping such as `path: {default}`, got {_shown(value)}"
        )
        return default
    known = reader.mapping(value, _MIGRATIONS_KEYS, "migrations.")
    path = known.get("path", default)
    problem = _path_problem(path)
    if problem or not isinstance(path, str):
        reader.fail("migrations.path", problem or "must be text")
        return default
    return posixpath.normpath(path)


def _label_problem(label: str) -> str | None:
    if not label.strip() or len(label) > MAX_LABEL_CHARS:
        return f"must be 1–{MAX_LABEL_CHARS} characters, got {_shown(label)}"
    return None


def _labels(reader: _Reader, value: object) -> tuple[str, ...]:
    labels = reader.strings("labels", value, _label_problem)
    if len(labels) > MAX_LABELS:
        reader.fail("labels", f"has {len(labels)} labels; at most {MAX_LABELS}")
        return DEFAULT_LABELS
    return labels


def _schedule(reader: _Reader, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        reader.fail("schedule", f"must be a cron expression in quotes, got {_shown(value)}")
        return None
    expr = " ".join(value.split())
    try:
        parse_cron(expr)
    except ValueError as err:
        reader.fail("schedule", f"{err} in {_shown(value)}")
        return None
    return expr


def _timezone(reader: _Reader, value: object) -> str:
    if isinstance(value, str) and _TIMEZONE.fullmatch(value) and len(value) <= 64:
        return value
    reader.fail("timezone", f"must be an IANA time zone such as Europe/Berlin, got {_shown(value)}")
    return "UTC"


def _validation(reader: _Reader, value: object) -> Validation | None:
    if value is None:
        return None
    for choice in VALIDATIONS:
        if value == choice:
            return choice
    hint = _did_you_mean(value, VALIDATIONS) if isinstance(value, str) else ""
    listed = ", ".join(f"`{c}`" for c in VALIDATIONS)
    reader.fail("validation", f"must be one of {listed}, got {_shown(value)}{hint}")
    return None


def _rule_problem(rule: str) -> str | None:
    if rule in KNOWN_RULES:
        return None
    hint = _did_you_mean(rule.replace("-", "_"), KNOWN_RULES)
    return f"unknown rule {_shown(rule)}{hint or '; known: ' + ', '.join(sorted(KNOWN_RULES))}"


def _fingerprint_problem(fp: str) -> str | None:
    match = _FINGERPRINT.fullmatch(fp)
    if match and (match["action"] is None or match["action"] in ACTIONS):
        return None
    return (
        "must be 8 hex digits or a recommendation id like `create_index:3f9a1c2b`, "
        f"got {_shown(fp)}"
    )


def _ignore(reader: _Reader, value: object) -> Ignore:
    if value is None:
        return Ignore()
    if not isinstance(value, dict):
        reader.fail(
            "ignore",
            f"must be a mapping with `tables`, `rules`, `fingerprints`, got {_shown(value)}",
        )
        return Ignore()
    known = reader.mapping(value, _IGNORE_KEYS, "ignore.")
    return Ignore(
        tables=reader.strings("ignore.tables", known.get("tables"), table_problem),
        rules=reader.strings("ignore.rules", known.get("rules"), _rule_problem),
        fingerprints=reader.strings(
            "ignore.fingerprints", known.get("fingerprints"), _fingerprint_problem
        ),
    )


def _version(reader: _Reader, value: object) -> int:
    if value is None or (value == 1 and isinstance(value, int) and not isinstance(value, bool)):
        return 1
    reader.fail("version", f"must be 1, got {_shown(value)}")
    return 1


def _dry_run(reader: _Reader, value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    reader.fail("dry_run", f"must be true or false, got {_shown(value)}")
    return False


def _disk_budget(reader: _Reader, value: object) -> str:
    if value is None:
        return DEFAULT_BUDGET
    if value is False:  # YAML 1.1 reads a bare `off` as false
        return "off"
    text = str(value) if isinstance(value, str | int | float) else None
    if text is None:
        reader.fail(
            "disk_budget",
            f"must be a share such as 25%, a size such as 2GB, or off, got {_shown(value)}",
        )
        return DEFAULT_BUDGET
    try:
        check_budget(text)
    except BudgetError as err:
        reader.fail("disk_budget", str(err).removeprefix("disk budget "))
        return DEFAULT_BUDGET
    return " ".join(text.split())


def parse_config(data: object) -> RepoConfig:
    """Validate what ``yaml.safe_load`` returned; None (an empty file) means the defaults.

    >>> parse_config({"target": "shop", "pr_hourly_limit": 1}).pr_hourly_limit
    1
    >>> try:
    ...     parse_config({"pr_hourly_limt": 1})
    ... except ConfigError as err:
    ...     print(err)
    `pr_hourly_limt`: unknown key; did you mean `pr_hourly_limit`?

    Raises:
        ConfigError: the first problem; ``problems`` lists them all.
    """
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise ConfigError(
            "(file)", f"must be a mapping of keys such as `target: shop`, got {_shown(data)}"
        )
    reader = _Reader()
    known = reader.mapping(data, _KEYS)
    default = RepoConfig()
    config = RepoConfig(
        version=_version(reader, known.get("version")),
        target=_target(reader, known.get("target")),
        migrations_path=_migrations_path(reader, known.get("migrations")),
        min_confidence=_min_confidence(reader, known.get("min_confidence", MIN_CONFIDENCE)),
        pr_concurrent_limit=_limit(
            reader,
            "pr_concurrent_limit",
            known.get("pr_concurrent_limit", default.pr_concurrent_limit),
            default.pr_concurrent_limit,
        ),
        pr_hourly_limit=_limit(
            reader,
            "pr_hourly_limit",
            known.get("pr_hourly_limit", default.pr_hourly_limit),
            default.pr_hourly_limit,
        ),
        labels=_labels(reader, known.get("labels", list(default.labels))),
        schedule=_schedule(reader, known.get("schedule")),
        timezone=_timezone(reader, known.get("timezone", default.timezone)),
        dry_run=_dry_run(reader, known.get("dry_run")),
        ignore=_ignore(reader, known.get("ignore")),
        validation=_validation(reader, known.get("validation")),
        disk_budget=_disk_budget(reader, known.get("disk_budget")),
    )
    if reader.problems:
        (key, problem), *more = reader.problems
        raise ConfigError(key, problem, more=more)
    return config
