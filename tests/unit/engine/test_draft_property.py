"""Property: no name or reason text, however hostile, escapes the drafted revision's Python."""

from __future__ import annotations

import ast
import random
from datetime import UTC, datetime

import pytest

from app.engine.ddl import create_index_sql, drop_index_sql, quote_ident
from app.engine.draft import DraftRefused, draft_revision
from app.engine.model import Candidate, IndexKey, Recommendation
from tests.recs import create_rec

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SEED = 1313
CASES = 400
#: Characters that end lines, quote, escape or hide for Python, SQL or a reader.
NASTY = (
    *"\"'\\\n\r\t\x0b\x0c\x00\x1b\x7f#%:;$`{}()",
    *"\x85\u2028\u2029\u200b\u202e\ufeff\u00a0",
    '"""',
    "'''",
    "\\N{BULLET}",
    "\\x41",
    "\\u2028",
    "*/",
    "--",
    "é",
    "列",
    "\U0001f600",
)


def hostile(rng: random.Random, max_len: int = 12) -> str:
    """A non-empty name: mostly nasty characters, some letters (PostgreSQL allows any but NUL)."""
    pieces = [
        rng.choice(NASTY) if rng.random() < 0.6 else rng.choice("abcXYZ_0 ")
        for _ in range(rng.randint(1, max_len))
    ]
    return "".join(pieces).replace("\x00", "") or "x"


def body_shape(module: ast.Module) -> list[str]:
    """Top-level statement kinds: anything a name smuggled in would show up here."""
    return [
        type(node).__name__
        + (f":{node.targets[0].id}" if isinstance(node, ast.Assign) else "")  # type: ignore[attr-defined]
        + (f":{node.name}" if isinstance(node, ast.FunctionDef) else "")
        for node in module.body
    ]


def run_calls(source: str) -> list[str]:
    """The statements ``upgrade()`` then ``downgrade()`` hand to ``_run``, in order."""
    functions = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name in ("upgrade", "downgrade")
    ]
    calls = [
        node
        for function in functions
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "_run"
    ]
    calls.sort(key=lambda call: (call.lineno, call.col_offset))
    return [ast.literal_eval(call.args[0]) for call in calls]


EXPECTED_SHAPE = [
    "Expr",
    "ImportFrom",
    "Import",
    "ImportFrom",
    "Assign:revision",
    "Assign:down_revision",
    "Assign:branch_labels",
    "Assign:depends_on",
    "FunctionDef:_run",
    "FunctionDef:_drop_if_invalid",
    "FunctionDef:upgrade",
    "FunctionDef:downgrade",
]


def cases() -> list[tuple[str, str, str, str]]:
    rng = random.Random(SEED)
    return [(hostile(rng), hostile(rng), hostile(rng), hostile(rng, 40)) for _ in range(CASES)]


def test_every_hostile_create_compiles_to_exactly_the_measured_statement() -> None:
    refused = 0
    for schema, table, column, reason in cases():
        candidate = Candidate(f"{schema}.{table}", (IndexKey(column),))
        rec = create_rec(candidate, f"{table}_{column}_idx", reasons=(reason,))
        try:
            draft = draft_revision(rec, down_revision=f"{reason[:5]}", created=CREATED)
        except DraftRefused:
            refused += 1
            continue
        compile(draft.source, draft.filename, "exec")
        module = ast.parse(draft.source)
        assert body_shape(module) == EXPECTED_SHAPE, (schema, table, column)
        docstring = ast.get_docstring(module, clean=False) or ""
        assert f"\nDDL: {rec.ddl}\n" in docstring
        assert f"\n- {reason}\n" in docstring
        shipped = [s for s in run_calls(draft.source) if s.startswith("CREATE INDEX")]
        assert shipped == [create_index_sql(candidate, rec.index_name, if_not_exists=True)]
        assert quote_ident(column) in shipped[0]
    assert refused == 0


@pytest.mark.parametrize("offset", range(0, CASES, 50))
def test_every_hostile_drop_recreates_the_exact_definition(offset: int) -> None:
    for schema, table, column, reason in cases()[offset : offset + 50]:
        index = f"{column}\n{reason}"
        definition = (
            f"CREATE INDEX {quote_ident(index)} ON {quote_ident(schema)}.{quote_ident(table)} "
            f"USING btree ({quote_ident(column)})"
        )
        rec = Recommendation(
            action="drop_index",
            table=f"{schema}.{table}",
            columns=(column,),
            index_name=index,
            ddl=drop_index_sql(f"{schema}.{index}"),
            definition=definition,
            reasons=(reason,),
            rule="unused_index",
        )
        draft = draft_revision(rec, down_revision=None, created=CREATED)
        compile(draft.source, draft.filename, "exec")
        module = ast.parse(draft.source)
        assert [s for s in body_shape(module) if s.startswith("FunctionDef:")][-2:] == [
            "FunctionDef:upgrade",
            "FunctionDef:downgrade",
        ]
        statements = run_calls(draft.source)
        assert drop_index_sql(f"{schema}.{index}") in statements
        assert any(quote_ident(index) in s and "CREATE INDEX CONCURRENTLY" in s for s in statements)
