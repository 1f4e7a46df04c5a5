"""The `@db-architect …` pull-request commands: where they count, verbs, refusals, help."""

from __future__ import annotations

import pytest

from app.bot.commands.pr import (
    PR_VERBS,
    PrCommand,
    PrCommandError,
    parse_pr_command,
    pr_commands_help,
    pr_usage,
)


def refused(body: str, slug: str = "db-architect") -> PrCommandError:
    with pytest.raises(PrCommandError) as caught:
        parse_pr_command(body, slug)
    return caught.value


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("@db-architect ignore", PrCommand("ignore")),
        ("@db-architect recreate", PrCommand("recreate")),
        ("@db-architect recheck", PrCommand("recheck")),
        ("@db-architect explain", PrCommand("explain")),
        ("  @db-architect   recheck  ", PrCommand("recheck")),
        ("@DB-Architect RECHECK", PrCommand("recheck")),
        ("@db-architect[bot] explain", PrCommand("explain")),
        ("@db-architect: ignore", PrCommand("ignore")),
        ("@db-architect ignore.", PrCommand("ignore")),
        ("Thanks for this.\r\n\n@db-architect recheck\nafter the deploy", PrCommand("recheck")),
        ("@db-architect ignore table events", PrCommand("ignore_table", "events")),
        ("@db-architect ignore TABLE sales.events", PrCommand("ignore_table", "sales.events")),
        ("@db-architect ignore table `events`", PrCommand("ignore_table", "events")),
    ],
)
def test_commands(body: str, expected: PrCommand) -> None:
    assert parse_pr_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "thanks @db-architect recheck",
        "`@db-architect recheck`",
        "```\n@db-architect ignore\n```",
        "~~~\n@db-architect ignore\n~~~",
        "```\n@db-architect ignore",  # an unclosed fence: the rest is code
        "> @db-architect ignore",
        "<!--\n@db-architect ignore\n-->",
        "@db-architect-staging recheck",
        "@db-architects recheck",
        "@someone-else recheck",
        "email db-architect recheck",
    ],
)
def test_not_a_command(body: str) -> None:
    assert parse_pr_command(body) is None


def test_first_command_wins_and_quotes_do_not_count() -> None:
    body = "> @db-architect ignore\n\n@db-architect explain\n@db-architect recreate"
    assert parse_pr_command(body) == PrCommand("explain")


def test_other_slug() -> None:
    assert parse_pr_command("@dba-test recheck", "dba-test") == PrCommand("recheck")
    assert parse_pr_command("@db-architect recheck", "dba-test") is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("@db-architect", "`@db-architect` needs a command."),
        ("@db-architect thanks!", "`thanks!` is not a command of `@db-architect`."),
        ("@db-architect `rm -rf`", "`'rm` is not a command of `@db-architect`."),
        ("@db-architect recheck now", "`@db-architect recheck` takes no arguments."),
        ("@db-architect explain it", "`@db-architect explain` takes no arguments."),
        (
            "@db-architect ignore table",
            "`@db-architect ignore table` needs exactly one table name.",
        ),
        (
            "@db-architect ignore table a b",
            "`@db-architect ignore table` needs exactly one table name.",
        ),
        ("@db-architect ignore table a.b.c", "`a.b.c` is not a table name."),
        ("@db-architect ignore table ``", "`''` is not a table name."),
    ],
)
def test_refusals(body: str, problem: str) -> None:
    error = refused(body)
    assert error.problem == problem
    assert str(error) == f"{problem}\n\nUsage: {pr_usage()}"


def test_ignore_with_other_words_points_at_ignore_table() -> None:
    assert "`@db-architect ignore table <table>`" in refused("@db-architect ignore this").problem


def test_long_words_are_cut_in_replies() -> None:
    problem = refused("@db-architect " + "x" * 200).problem
    assert "x" * 39 + "…" in problem
    assert "x" * 41 not in problem


def test_help_lists_every_command() -> None:
    error = refused("@db-architect help")
    for verb in PR_VERBS:
        assert f"`@db-architect {verb}" in str(error)
    assert "ignore table <table>" in str(error)


def test_help_text_names_every_command_with_the_slug() -> None:
    text = pr_commands_help("dba-test")
    for verb in (*PR_VERBS, "ignore table <table>"):
        assert f"- `@dba-test {verb}`" in text
    assert "**dba-test[bot]**" in text
    assert "db-architect" not in text
    assert pr_usage("dba-test").count("@dba-test") == 5
