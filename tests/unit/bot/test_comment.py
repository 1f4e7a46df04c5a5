"""The one comment reader: every command (`/audit`, `/ask`, `@db-architect`, memory) reads alike."""

from __future__ import annotations

from app.bot.commands.ask import parse_ask_command
from app.bot.commands.audit import AuditCommand, parse_audit_command
from app.bot.comment import command_lines


def test_a_backtick_line_with_a_backtick_in_its_info_is_inline_code_not_a_fence() -> None:
    # GitHub renders ``` `x` as inline code, so the next line is prose; `/audit` read it as a
    # fence opener (and ignored every later line) before the two readers became one.
    body = "``` `x`\n/audit --dry-run"
    assert parse_audit_command(body) == AuditCommand(dry_run=True)
    assert parse_ask_command("``` `x`\n/ask how many orders?") is not None


def test_fences_quotes_and_html_comments_hide_commands_for_every_command() -> None:
    body = "~~~\n/audit\n~~~~\n> /ask quoted\n<!--\n/audit\n-->\nprose"
    assert list(command_lines(body)) == ["prose"]
    assert parse_audit_command(body) is None
    assert parse_ask_command(body) is None


def test_a_closing_fence_needs_the_same_character_and_nothing_after_it() -> None:
    assert list(command_lines("```\n~~~\n``` x\n/audit\n```\nafter")) == ["after"]
