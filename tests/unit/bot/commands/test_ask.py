"""`/ask`: the command as users write it in a comment."""

from __future__ import annotations

import pytest

from app.bot.commands.ask import ASK_USAGE, AskCommand, AskError, parse_ask_command

# ----------------------------------------------------------------------------- the command


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/ask how many orders?", AskCommand("how many orders?")),
        ("  /ask   how   many\torders?  ", AskCommand("how many orders?")),
        (
            "Hi!\n\n/ask how many orders\nwere paid\nlast week?\n\nThanks",
            AskCommand("how many orders were paid last week?"),
        ),
        ("/ask top customers\n```\nnot sql\n```", AskCommand("top customers", "not sql")),
        (
            "/ask\n```sql\nSELECT count(*)\nFROM orders\n```",
            AskCommand("", "SELECT count(*)\nFROM orders"),
        ),
        (
            "/ask paid orders\n\nsome prose\n\n~~~postgresql\nSELECT 1\n~~~\n```sql\nSELECT 2\n```",
            AskCommand("paid orders", "SELECT 1"),
        ),
        (
            "/ask why\n```python\nprint(1)\n```\n```sql\nSELECT 2\n```",
            AskCommand("why", "SELECT 2"),
        ),
        ("/ask q\n```sql\n\n```", AskCommand("q")),  # a blank block is no SQL
        ("/ask q\n```sql\nSELECT 1", AskCommand("q", "SELECT 1")),  # unclosed: the rest
        ("> /ask quoted\n/ask real one", AskCommand("real one")),
        ("```\n/ask in code\n```\n/ask after code", AskCommand("after code")),
        ("/ask first\n/ask second", AskCommand("first /ask second")),
        ("/ask q\n> quoted line stops the question", AskCommand("q")),
    ],
)
def test_parse(body: str, expected: AskCommand) -> None:
    assert parse_ask_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "no command here",
        "/asking about the data",
        "/ask-me",
        "please /ask how many",
        "`/ask how many`",
        "> /ask how many",
        "```\n/ask how many\n```",
        "<!--\n/ask how many\n-->",
        "<!-- /ask how many -->",
        "//ask how many",
        "/audit",
    ],
)
def test_not_an_ask(body: str) -> None:
    assert parse_ask_command(body) is None


def test_sql_fence_before_the_command_is_ignored() -> None:
    body = "```sql\nSELECT 1\n```\n/ask how many orders?"
    assert parse_ask_command(body) == AskCommand("how many orders?")


def test_sql_in_a_quote_is_not_taken() -> None:
    body = "/ask q\n> ```sql\n> SELECT 1\n> ```"
    assert parse_ask_command(body) == AskCommand("q")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("/ask", "needs a question"),
        ("/ask   \n\ntext later", "needs a question"),
        ("/ask\n```sql\n   \n```", "needs a question"),
        ("/ask " + "x" * 501, "501 characters"),
        ("/ask\n```sql\nSELECT " + "1," * 6000 + "1\n```", "at most 10000"),
    ],
)
def test_ask_errors(body: str, fragment: str) -> None:
    with pytest.raises(AskError) as caught:
        parse_ask_command(body)
    assert fragment in caught.value.problem
    assert str(caught.value).endswith(f"Usage: {ASK_USAGE}")


def test_a_question_of_500_characters_is_fine() -> None:
    command = parse_ask_command("/ask " + "y" * 500)
    assert command is not None and len(command.question) == 500
