"""Read `.github/db-architect.yml` text with PyYAML (safe loader) into a validated RepoConfig."""

from __future__ import annotations

import difflib
import zoneinfo
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from app.bot.repo_config import ConfigError, RepoConfig, parse_config

__all__ = ["MAX_BYTES", "MAX_DEPTH", "load_config"]

#: A config file is a few lines; anything this large is a mistake (or an attack on the parser).
MAX_BYTES = 64 * 1024
#: A config nests three levels deep; PyYAML recurses per level (64 KiB of ``[`` took 25 s).
MAX_DEPTH = 16
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _check_depth(text: str) -> None:
    """Refuse nesting beyond ``MAX_DEPTH`` from the event stream, before building any tree."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, _OPENS):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(
                    "(file)",
                    f"is nested too deeply: over {MAX_DEPTH} levels at line {line}; a config "
                    "file needs three",
                )
        elif isinstance(event, _CLOSES):
            depth -= 1


def _check_duplicates(node: Any, path: str = "", visited: set[int] | None = None) -> None:
    """Refuse a key given twice in one mapping (PyYAML silently keeps the last one).

    Each node is visited once: aliases may repeat a node exponentially often.
    """
    visited = set() if visited is None else visited
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, f"{path.removesuffix('.')}[{i}].", visited)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(path + key, f"appears twice (lines {seen[key]} and {line}); keep one")
        seen[key] = line
        _check_duplicates(value_node, f"{path}{key}.", visited)


def load_config(text: str | None) -> RepoConfig:
    """The repository config from the file's text; None (no file) means the defaults.

    Raises:
        ConfigError: unreadable YAML (``key="(file)"``, with line and column), a top level
            that is not a mapping, or any invalid key (see ``parse_config``).
    """
    if text is None:
        return RepoConfig()
    size = len(text.encode())
    if size > MAX_BYTES:
        raise ConfigError("(file)", f"is {size:,} bytes; a config file must be under 64 KiB")
    try:
        _check_depth(text)
        _check_duplicates(yaml.compose(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        raise ConfigError("(file)", _yaml_problem(err)) from None
    except yaml.YAMLError as err:
        raise ConfigError("(file)", f"is not valid YAML: {err}") from None
    except RecursionError:
        raise ConfigError("(file)", "is nested too deeply to be a config file") from None
    config = parse_config(data)
    _check_timezone(config.timezone)
    return config


def _yaml_problem(err: Any) -> str:
    """``line 3, column 5: <what PyYAML found>``, with the context when it adds something."""
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = err.problem or "not valid YAML"
    if err.context and err.context_mark and err.context_mark is not mark:
        problem += f" ({err.context} at line {err.context_mark.line + 1})"
    if err.context and "alias" in err.context:
        problem += '; a value starting with `*` must be quoted, e.g. schedule: "0 3 * * *"'
    return where + problem


def _check_timezone(name: str) -> None:
    """The zone exists in this system's tz database (reading it is I/O: not in the engine)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise ConfigError(
            "timezone", f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin{hint}"
        ) from None
