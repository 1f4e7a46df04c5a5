"""The repository config: defaults, every key's validation, ignores and the cron schedule."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from app.bot.repo_config import (
    DSN_REFUSED,
    ConfigError,
    Ignore,
    RepoConfig,
    parse_config,
    parse_cron,
)
from app.engine.model import Recommendation, recommendation_id

ORDERS = Recommendation(
    "create_index",
    "public.orders",
    ("customer_id",),
    "orders_customer_id_idx",
    "CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id)",
)
EVENTS = Recommendation(
    "drop_index",
    "sales.events",
    ("kind",),
    "events_kind_idx",
    "DROP INDEX CONCURRENTLY sales.events_kind_idx",
    rule="unused_index",
)


def problem(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value


def test_missing_or_empty_file_means_defaults() -> None:
    assert parse_config(None) == RepoConfig() == parse_config({})
    default = RepoConfig()
    assert default.min_confidence == 0.8 and default.labels == ("db-architect", "performance")
    assert (default.pr_concurrent_limit, default.pr_hourly_limit) == (5, 2)
    assert default.migrations_path == "migrations/versions" and default.cron is None


def test_every_key_read() -> None:
    config = parse_config(
        {
            "version": 1,
            "target": "shop-prod.eu_1",
            "migrations": {"path": "./db/alembic/versions/"},
            "min_confidence": 0.9,
            "pr_concurrent_limit": 3,
            "pr_hourly_limit": 0,
            "labels": ["db", "perf", "db"],
            "schedule": "0  3 * * mon-fri",
            "timezone": "Europe/Berlin",
            "dry_run": True,
            "ignore": {
                "tables": ["audit_log", "archive.*"],
                "rules": ["drop_index"],
                "fingerprints": ["3f9a1c2b"],
            },
            "validation": "target-transaction",
            "disk_budget": "1.5  GB",
        }
    )
    assert config == RepoConfig(
        version=1,
        target="shop-prod.eu_1",
        migrations_path="db/alembic/versions",
        min_confidence=0.9,
        pr_concurrent_limit=3,
        pr_hourly_limit=0,
        labels=("db", "perf"),
        schedule="0 3 * * mon-fri",
        timezone="Europe/Berlin",
        dry_run=True,
        ignore=Ignore(("audit_log", "archive.*"), ("drop_index",), ("3f9a1c2b",)),
        validation="target-transaction",
        disk_budget="1.5 GB",
    )
    assert config.cron is not None and config.cron.hours == frozenset({3})


@pytest.mark.parametrize(
    ("value", "problem"),
    [(500, "add a unit"), ("lots", "write a share"), ([1], "must be a share"), ("0%", "above 0%")],
)
def test_a_bad_disk_budget_is_explained(value: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_config({"disk_budget": value})
    assert "disk_budget" in str(caught.value)


def test_a_bare_off_in_yaml_turns_the_disk_budget_off() -> None:
    assert parse_config({"disk_budget": False}).disk_budget == "off"
    assert parse_config({}).disk_budget == "25%"


def test_error_text_names_the_key() -> None:
    err = problem({"pr_hourly_limit": "two"})
    assert str(err) == "`pr_hourly_limit`: must be a whole number ≥ 0, got 'two'"
    assert (err.key, err.problem) == ("pr_hourly_limit", "must be a whole number ≥ 0, got 'two'")


def test_all_problems_are_collected() -> None:
    err = problem({"pr_hourly_limit": -1, "dry_run": "yes please", "labels": "perf"})
    assert [key for key, _ in err.problems] == ["pr_hourly_limit", "labels", "dry_run"]
    assert str(err).endswith("(and 2 more problems)")


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("pr_hourly_limt", "did you mean `pr_hourly_limit`?"),
        ("min-confidence", "did you mean `min_confidence`?"),
        ("zzz", "known keys: `version`, `target`"),
    ],
)
def test_unknown_keys_suggest(key: str, hint: str) -> None:
    err = problem({key: 1})
    assert err.key == key and err.problem.startswith("unknown key") and hint in err.problem


def test_nested_keys_are_dotted() -> None:
    assert problem({"migrations": {"dir": "x"}}).key == "migrations.dir"
    err = problem({"ignore": {"table": ["x"]}})
    assert err.key == "ignore.table" and "`tables`" in err.problem
    err = problem({"ignore": {"tables": ["orders", "sales.events", "a.b.c", 7]}})
    assert [key for key, _ in err.problems] == ["ignore.tables[2]", "ignore.tables[3]"]


def test_version_must_be_one() -> None:
    for bad in (2, "1", 1.5, True):
        assert problem({"version": bad}).key == "version"


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:hunter2@db.internal/shop",
        "host=db.internal dbname=shop password=hunter2",
        "app@db",
    ],
)
def test_a_dsn_is_refused_and_never_echoed(dsn: str) -> None:
    err = problem({"target": dsn})
    assert err.key == "target" and DSN_REFUSED in err.problem
    assert "hunter2" not in str(err) and "db.internal" not in str(err) and dsn not in str(err)


def test_target_names() -> None:
    assert parse_config({"target": "a" * 64}).target == "a" * 64
    for bad in ("a" * 65, "shop prod", "", 42):
        assert problem({"target": bad}).key == "target"
    assert "quote it" in problem({"target": False}).problem  # `target: no` in YAML 1.1


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(0.8, True), (1, True), (0.95, True), (0.79, False), (1.01, False), ("0.9", False)],
)
def test_min_confidence_can_only_be_raised(value: object, accepted: bool) -> None:
    if accepted:
        assert parse_config({"min_confidence": value}).min_confidence == value
    else:
        assert problem({"min_confidence": value}).key == "min_confidence"


def test_min_confidence_hints() -> None:
    assert "raised, never lowered" in problem({"min_confidence": 0.5}).problem
    assert "write 0.9 for 90 %" in problem({"min_confidence": 90}).problem


def test_limits_are_whole_numbers() -> None:
    assert parse_config({"pr_concurrent_limit": 0}).pr_concurrent_limit == 0
    for bad in (-1, 1.5, True, None, "3"):
        assert problem({"pr_concurrent_limit": bad}).key == "pr_concurrent_limit"


def test_labels() -> None:
    assert parse_config({"labels": []}).labels == ()
    assert problem({"labels": [str(i) for i in range(11)]}).problem.startswith("has 11 labels")
    assert problem({"labels": ["x" * 51]}).key == "labels[0]"
    assert problem({"labels": ["ok", ""]}).key == "labels[1]"
    assert problem({"labels": ["ok", 3]}).key == "labels[1]"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/srv/app/migrations", "relative"),
        ("~/migrations", "relative"),
        ("C:/migrations", "relative"),
        ("db\\versions", "relative"),
        ("db/../../etc", "`..`"),
        (".github/workflows", ".github/workflows"),
        ("./.github/workflows/x", ".github/workflows"),
        (".GitHub/Workflows", ".github/workflows"),
        ("", "relative"),
        (3, "relative"),
    ],
)
def test_migrations_path_stays_in_the_repository(path: object, words: str) -> None:
    err = problem({"migrations": {"path": path}})
    assert err.key == "migrations.path" and words in err.problem


def test_migrations_must_be_a_mapping() -> None:
    assert "`path: migrations/versions`" in problem({"migrations": "db"}).problem


def test_validation_choice() -> None:
    assert parse_config({"validation": "hypopg"}).validation == "hypopg"
    err = problem({"validation": "sandbx"})
    assert err.key == "validation" and "did you mean `sandbox`?" in err.problem


def test_dry_run_and_timezone_types() -> None:
    assert problem({"dry_run": "true"}).key == "dry_run"
    assert parse_config({"timezone": "America/Argentina/Buenos_Aires"}).timezone.endswith("Aires")
    for bad in ("Europe Berlin", "+02:00", 3, "/etc/passwd"):
        assert problem({"timezone": bad}).key == "timezone"


def test_ignore_rules_and_fingerprints() -> None:
    err = problem({"ignore": {"rules": ["unused_idx"], "fingerprints": ["3F9A", "bogus:3f9a1c2b"]}})
    assert err.problems[0] == (
        "ignore.rules[0]",
        "unknown rule 'unused_idx'; did you mean `unused_index`?",
    )
    assert [key for key, _ in err.problems[1:]] == [
        "ignore.fingerprints[0]",
        "ignore.fingerprints[1]",
    ]
    ok = parse_config({"ignore": {"fingerprints": ["create_index:3f9a1c2b"]}})
    assert ok.ignore.fingerprints == ("create_index:3f9a1c2b",)


def test_top_level_must_be_a_mapping() -> None:
    err = problem(["target", "shop"])
    assert err.key == "(file)" and str(err).startswith("(file): must be a mapping")


# ---------------------------------------------------------------------- ignore


def test_ignore_tables_default_to_public() -> None:
    assert Ignore(tables=("orders",)).matches(ORDERS) == (
        "ignored by .github/db-architect.yml: ignore.tables has `orders`"
    )
    assert Ignore(tables=("public.orders",)).matches(ORDERS) is not None
    assert Ignore(tables=("Public.Orders",)).matches(ORDERS) is not None
    assert Ignore(tables=("events",)).matches(EVENTS) is None  # events is not public.events
    assert Ignore(tables=("sales.events",)).matches(EVENTS) is not None
    assert Ignore(tables=("sales.*",)).matches(EVENTS) is not None
    assert Ignore(tables=("sales.*",)).matches(ORDERS) is None
    assert Ignore(tables=("order",)).matches(ORDERS) is None


def test_ignore_rules_match_actions_and_rule_names() -> None:
    assert Ignore(rules=("drop_index",)).matches(EVENTS) is not None
    assert Ignore(rules=("unused_index",)).matches(EVENTS) is not None
    assert Ignore(rules=("workload",)).matches(ORDERS) is not None
    assert Ignore(rules=("drop_index",)).matches(ORDERS) is None


def test_ignore_fingerprints_short_or_full() -> None:
    rec_id = recommendation_id(ORDERS)
    short = rec_id.split(":")[1]
    assert Ignore(fingerprints=(short,)).matches(ORDERS) is not None
    assert Ignore(fingerprints=(rec_id,)).matches(ORDERS) is not None
    assert Ignore(fingerprints=(f"drop_index:{short}",)).matches(ORDERS) is None
    assert Ignore().matches(ORDERS) is None


# ---------------------------------------------------------------------- cron


def test_cron_fields() -> None:
    cron = parse_cron("15 */6 1,15 jan-mar,DEC *")
    assert cron.minutes == {15} and cron.hours == {0, 6, 12, 18}
    assert cron.days == {1, 15} and cron.months == {1, 2, 3, 12}
    assert parse_cron("0 3 * * 7").weekdays == {0} == parse_cron("0 3 * * sun").weekdays
    assert parse_cron("0 3 * * 5-7").weekdays == {5, 6, 0}
    assert parse_cron("0 8-18/5 * * *").hours == {8, 13, 18}
    assert parse_cron("0 20/2 * * *").hours == {20, 22}


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 3 * *", "needs 5 fields"),
        ("0 24 * * *", "hour 24 is out of range 0–23"),
        ("60 3 * * *", "minute 60 is out of range 0–59"),
        ("0 3 0 * *", "day of month 0 is out of range 1–31"),
        ("0 3 * 13 *", "month 13 is out of range 1–12"),
        ("0 3 * * 8", "day of week 8 is out of range 0–7"),
        ("0 5-3 * * *", "runs backwards"),
        ("0 */0 * * *", "step `/0`"),
        ("0 x * * *", "hour `x` is not a number"),
        ("0 3 * * funday", "is not a number"),
        ("*/15 * * * *", "more than once an hour"),
        ("0,30 * * * *", "more than once an hour"),
    ],
)
def test_cron_refusals(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cron(expr)


def test_schedule_errors_name_the_key_and_value() -> None:
    err = problem({"schedule": "0 25 * * *"})
    assert err.key == "schedule" and "hour 25" in err.problem and "'0 25 * * *'" in err.problem
    assert problem({"schedule": 300}).key == "schedule"


def test_cron_day_fields_combine_like_cron() -> None:
    either = parse_cron("0 3 1 * mon")  # the 1st of the month OR any Monday
    assert either.matches(datetime(2026, 12, 1, 3, 0))  # a Tuesday, the 1st
    assert either.matches(datetime(2026, 12, 7, 3, 0))  # a Monday
    assert not either.matches(datetime(2026, 12, 8, 3, 0))
    monthly = parse_cron("0 3 1 * *")
    assert monthly.matches(datetime(2026, 12, 1, 3, 0))
    assert not monthly.matches(datetime(2026, 12, 7, 3, 0))
    assert not monthly.matches(datetime(2026, 12, 1, 3, 1))
    assert not parse_cron("0 3 * feb *").matches(datetime(2026, 12, 1, 3, 0))
