"""The `/audit` command: where it counts, its options, refusals, and the help text."""

from __future__ import annotations

import pytest

from app.bot.commands.audit import (
    AUDIT_USAGE,
    AuditCommand,
    CommandError,
    commands_help,
    parse_audit_command,
)


def refused(body: str) -> str:
    with pytest.raises(CommandError) as caught:
        parse_audit_command(body)
    return str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        "/audit",
        "  /audit  ",
        "Could you check the new queries?\n\n/audit\n\nThanks!",
        "\t/audit\r\nmore text",
        "> quoted\n/audit",
    ],
)
def test_plain_audit(body: str) -> None:
    assert parse_audit_command(body) == AuditCommand()


@pytest.mark.parametrize(
    "body",
    [
        "",
        "/auditing the tables",
        "/audit-log",
        "please /audit",
        "`/audit`",
        "```\n/audit\n```",
        "~~~sh\n/audit\n~~~",
        "````\n```\n/audit\n````",  # a shorter fence does not close a longer one
        "```\n/audit",  # unclosed fence: the rest is code
        "> /audit",
        "  > /audit --dry-run",
        "<!--\n/audit\n-->",
        "<!-- /audit -->",
        "//audit",
    ],
)
def test_not_a_command(body: str) -> None:
    assert parse_audit_command(body) is None


def test_after_a_closed_fence_commands_count_again() -> None:
    body = "```python\nx = 1\n```\n/audit --dry-run"
    assert parse_audit_command(body) == AuditCommand(dry_run=True)
    assert parse_audit_command("```\n``` not a closer\n/audit\n```") is None


def test_after_an_html_comment_commands_count_again() -> None:
    assert parse_audit_command("<!-- template\nhint -->\n/audit") == AuditCommand()


def test_all_options() -> None:
    command = parse_audit_command(
        "/audit --dry-run --tables orders,public.events,orders --min-confidence 0.9"
    )
    assert command == AuditCommand(
        dry_run=True, tables=("orders", "public.events"), min_confidence=0.9
    )


def test_equals_forms_and_spaced_lists() -> None:
    assert parse_audit_command("/audit --tables=orders --min-confidence=1") == AuditCommand(
        tables=("orders",), min_confidence=1.0
    )
    spaced = parse_audit_command("/audit --tables orders, events")
    assert spaced is not None and spaced.tables == ("orders", "events")


def test_the_first_command_wins() -> None:
    assert parse_audit_command("/audit --dry-run\n/audit --tables x") == AuditCommand(dry_run=True)


def test_confidence_can_only_be_raised() -> None:
    message = refused("/audit --min-confidence 0.5")
    assert "would lower the bar" in message and "never lowered" in message
    assert "from 0.80 to 1.0, got `2`" in refused("/audit --min-confidence 2")
    assert "got `high`" in refused("/audit --min-confidence high")
    assert "got `nan`" in refused("/audit --min-confidence nan")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("/audit --force", "`--force` is not an option of `/audit`"),
        ("/audit please", "`please` is not an option"),
        ("/audit --dry-run=yes", "`--dry-run=yes` is not an option"),
        ("/audit --tables", "`--tables` needs a value"),
        ("/audit --tables ,", "needs at least one table"),
        ("/audit --tables a.b.c", "`a.b.c` is not a table name"),
        ("/audit --tables a --tables b", "`--tables` is given twice"),
        ("/audit --min-confidence 0.9 --min-confidence 0.95", "given twice"),
        ("/audit --tables " + ",".join(f"t{i}" for i in range(51)), "at most 50"),
    ],
)
def test_bad_options_are_refused_with_usage(body: str, words: str) -> None:
    message = refused(body)
    assert words in message
    assert message.endswith(f"Usage: {AUDIT_USAGE}")


def test_help_is_a_friendly_refusal() -> None:
    assert "audits the target" in refused("/audit --help")


def test_long_garbage_is_cut_in_the_message() -> None:
    message = refused("/audit --" + "x" * 500)
    assert "x" * 60 not in message and "…" in message


def test_usage_is_one_line() -> None:
    assert "\n" not in AUDIT_USAGE and AUDIT_USAGE.startswith("`/audit")


def test_help_lists_every_option_and_the_slug() -> None:
    text = commands_help("acme-db")
    assert "**acme-db[bot]**" in text
    for option in ("`/audit`", "--dry-run", "--tables", "--min-confidence"):
        assert option in text
    assert ".github/db-architect.yml" in text
    lines = [line for line in text.splitlines() if line]
    assert all(line.startswith(("- ", "Comment ", "Settings ")) for line in lines)
