"""Statement text: repair, placeholders, parsing and redaction."""

from __future__ import annotations

import pytest

from app.engine.sql import SqlError, canonical, is_own, param_count, parse, redact, repair


def test_repair_turns_typed_placeholders_into_casts() -> None:
    assert (
        repair("SELECT 1 FROM t WHERE a > timestamptz $1;")
        == "SELECT 1 FROM t WHERE a > $1::timestamptz"
    )
    assert repair("SELECT 1 FROM t WHERE d = date $2") == "SELECT 1 FROM t WHERE d = $2::date"


def test_repair_leaves_strings_alone() -> None:
    assert repair("SELECT 'date $1' FROM t") == "SELECT 'date $1' FROM t"


def test_param_count_ignores_strings_and_comments() -> None:
    assert param_count("SELECT $2 /* $9 */ FROM t WHERE a = '$7' AND b IN ($1,$3)") == 3
    assert param_count("SELECT 1") == 0


def test_parse_accepts_unspaced_placeholders() -> None:
    tree = parse("SELECT * FROM t WHERE a IN ($1,$2)")
    assert "$2" in tree.sql(dialect="postgres")


def test_parse_rejects_garbage_with_a_readable_reason() -> None:
    with pytest.raises(SqlError, match="could not parse"):
        parse("SELECT * FROM WHERE")
    with pytest.raises(SqlError, match="expected one statement"):
        parse("SELECT 1; SELECT 2")


def test_canonical_makes_expression_keys_comparable() -> None:
    assert canonical("lower((email)::text)") == canonical("LOWER(email)") == "lower(email)"


def test_redact_hides_literals() -> None:
    text = redact("SELECT * FROM t WHERE email = 'x@y.z' AND n = 42 AND \"col1\" = $1")
    assert "x@y.z" not in text and "42" not in text
    assert '"col1"' in text and "$1" in text


def test_own_statements_are_recognised() -> None:
    assert is_own("/* dbarchitect */ SELECT 1")
    assert not is_own("SELECT 1")
