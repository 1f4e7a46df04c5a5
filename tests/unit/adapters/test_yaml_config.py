"""Loading `.github/db-architect.yml` text: YAML errors with positions, duplicates, zones."""

from __future__ import annotations

import textwrap

import pytest

from app.adapters.yaml_config import MAX_BYTES, load_config
from app.bot.repo_config import ConfigError, Ignore, RepoConfig

EXAMPLE = textwrap.dedent(
    """\
    version: 1
    target: shop
    migrations:
      path: db/versions
    min_confidence: 0.85
    labels: [db-architect, database]
    schedule: "30 2 * * mon"
    timezone: Europe/Berlin
    ignore:
      tables: [audit_log]
      rules: [unused_index]
    """
)


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    return caught.value


def test_no_file_or_empty_file_means_defaults() -> None:
    assert load_config(None) == RepoConfig()
    assert load_config("") == RepoConfig()
    assert load_config("# nothing configured yet\n") == RepoConfig()


def test_documented_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.target == "shop" and config.migrations_path == "db/versions"
    assert config.min_confidence == 0.85 and config.labels == ("db-architect", "database")
    assert config.schedule == "30 2 * * mon" and config.timezone == "Europe/Berlin"
    assert config.ignore == Ignore(tables=("audit_log",), rules=("unused_index",))


def test_syntax_error_has_line_and_column() -> None:
    err = error("target: shop\nlabels: [a, b\nschedule: x\n")
    assert err.key == "(file)"
    assert err.problem.startswith("line 3, column 9: ")
    assert "while parsing a flow sequence at line 2" in err.problem


def test_bad_indentation_is_located() -> None:
    err = error("ignore:\n  tables: [a]\n rules: [b]\n")
    assert err.key == "(file)" and err.problem.startswith("line 3, column 2: ")


def test_unquoted_cron_gets_a_hint() -> None:
    err = error("schedule: * 3 * * *\n")
    assert err.problem.startswith("line 1, column 12: ")
    assert 'must be quoted, e.g. schedule: "0 3 * * *"' in err.problem


def test_top_level_must_be_a_mapping() -> None:
    err = error("- target: shop\n")
    assert err.key == "(file)" and "must be a mapping" in err.problem
    assert error("just a sentence\n").key == "(file)"


def test_duplicate_keys_are_refused_with_lines() -> None:
    err = error("target: shop\npr_hourly_limit: 1\ntarget: other\n")
    assert (err.key, err.problem) == ("target", "appears twice (lines 1 and 3); keep one")
    nested = error("ignore:\n  tables: [a]\n  tables: [b]\n")
    assert nested.key == "ignore.tables"


def test_validation_errors_pass_through() -> None:
    err = error("pr_hourly_limit: two\n")
    assert str(err) == "`pr_hourly_limit`: must be a whole number ≥ 0, got 'two'"


def test_yaml_booleans_are_explained_for_target() -> None:
    err = error("target: no\n")  # YAML 1.1 reads `no` as false
    assert err.key == "target" and "quote it" in err.problem
    assert load_config('target: "no"\n').target == "no"


def test_unknown_time_zone_suggests_the_closest() -> None:
    err = error("timezone: Europe/Berln\n")
    assert err.key == "timezone" and "did you mean `Europe/Berlin`?" in err.problem
    assert load_config("timezone: UTC\n").timezone == "UTC"


def test_oversized_file_is_refused_before_parsing() -> None:
    err = error("# " + "x" * MAX_BYTES + "\n")
    assert err.key == "(file)" and "64 KiB" in err.problem


def test_alias_bombs_stay_cheap() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    err = error("\n".join(lines) + "\n")  # 10^10 leaves if expanded
    assert err.key == "a0" and "unknown key" in err.problem


def test_deep_nesting_is_a_config_error() -> None:
    assert "nested too deeply" in error("[" * 5000 + "]" * 5000 + "\n").problem
