"""FixDraft: the Alembic revision source written for each kind of recommendation."""

from __future__ import annotations

import ast
from datetime import UTC, datetime

import pytest

from app.engine.ddl import MAX_IDENTIFIER_BYTES, create_index_sql
from app.engine.draft import (
    DraftRefused,
    FixDraft,
    concurrent_definition,
    draft_revision,
    draft_revisions,
    partition_index_name,
    partitioned_definition,
)
from app.engine.model import Candidate, IndexKey, Recommendation
from tests.recs import AUDITLOG, create_rec

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


CREATE = create_rec(
    Candidate("public.posts", (IndexKey("user_id"), IndexKey("blog_id"))),
    "posts_user_id_blog_id_idx",
    reasons=("SELECT * FROM posts WHERE user_id = $1 AND blog_id = $2: 120× cheaper",),
)
RICH = create_rec(
    AUDITLOG,
    "AuditLog_userId_idx",
)
DEFINITION = (
    'CREATE UNIQUE INDEX "AuditLog_payload_idx" ON public."AuditLog" USING btree (payload DESC) '
    "WHERE (deleted_at IS NULL)"
)
DROP = Recommendation(
    action="drop_index",
    table="public.AuditLog",
    columns=("payload",),
    index_name="AuditLog_payload_idx",
    ddl='DROP INDEX CONCURRENTLY IF EXISTS public."AuditLog_payload_idx"',
    definition=DEFINITION,
    rule="unused_index",
)
REINDEX = Recommendation(
    action="reindex",
    table="app.Orders",
    columns=("id",),
    index_name="Orders_ccnew",
    ddl='REINDEX INDEX CONCURRENTLY app."Orders_ccnew"',
)
EVENTS = Recommendation(
    action="create_index",
    table="public.events",
    columns=("tenant_id", "at"),
    index_name="events_tenant_id_at_idx",
    ddl=create_index_sql(
        Candidate("public.events", (IndexKey("tenant_id"), IndexKey("at"))),
        "events_tenant_id_at_idx",
        concurrently=False,  # as the foreign-key rule writes it for a partitioned table
    ),
)
PARTITIONS = ("public.events_2025", "public.Events_2026")


def _draft(rec: Recommendation, partitions: tuple[str, ...] = ()) -> FixDraft:
    draft = draft_revision(
        rec, down_revision="0123456789ab", created=CREATED, partitions=partitions
    )
    compile(draft.source, draft.filename, "exec")
    return draft


def _function(source: str, name: str) -> str:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            segment = ast.get_source_segment(source, node)
            assert segment is not None
            return segment
    raise AssertionError(f"no {name}() in the draft")


def _statements(source: str, name: str) -> list[str]:
    """The SQL each ``_run(...)`` call of function ``name`` executes, in order."""
    tree = ast.parse(_function(source, name))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "_run"
    ]
    calls.sort(key=lambda call: (call.lineno, call.col_offset))
    return [ast.literal_eval(call.args[0]) for call in calls]


def _module_constants(source: str) -> dict[str, object]:
    constants: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            constants[node.targets[0].id] = ast.literal_eval(node.value)
    return constants


def test_create_draft_is_an_online_safe_alembic_revision() -> None:
    draft = _draft(CREATE)
    constants = _module_constants(draft.source)
    assert constants == {
        "revision": draft.revision,
        "down_revision": "0123456789ab",
        "branch_labels": None,
        "depends_on": None,
    }
    assert len(draft.revision) == 12
    assert int(draft.revision, 16) >= 0
    assert draft.filename == f"{draft.revision}_add_index_posts_user_id_blog_id.py"
    docstring = ast.get_docstring(ast.parse(draft.source), clean=False)
    assert docstring is not None
    assert docstring.startswith("Add index posts_user_id_blog_id_idx on public.posts")
    assert "120× cheaper" in draft.source

    upgrade = _function(draft.source, "upgrade")
    assert "with op.get_context().autocommit_block():" in upgrade
    assert '_drop_if_invalid("public.posts_user_id_blog_id_idx")' in upgrade
    assert upgrade.index("_drop_if_invalid(") < upgrade.index("CREATE INDEX")
    assert _statements(draft.source, "upgrade") == [
        "SET lock_timeout = '5s'",
        "SET statement_timeout = '2h'",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user_id_blog_id_idx ON public.posts "
        "USING btree (user_id, blog_id)",
        "RESET statement_timeout",
        "RESET lock_timeout",
    ]
    assert "autocommit_block" in _function(draft.source, "downgrade")
    assert _statements(draft.source, "downgrade") == [
        "SET lock_timeout = '5s'",
        "SET statement_timeout = '2h'",
        "DROP INDEX CONCURRENTLY IF EXISTS public.posts_user_id_blog_id_idx",
        "RESET statement_timeout",
        "RESET lock_timeout",
    ]
    assert "op.execute" not in draft.source  # sqlalchemy.text() would rewrite ":name"


def test_the_shipped_statement_is_the_measured_one_plus_if_not_exists() -> None:
    for rec in (CREATE, RICH):
        (shipped,) = [s for s in _statements(_draft(rec).source, "upgrade") if "INDEX" in s]
        assert shipped.replace(" IF NOT EXISTS", "", 1) == rec.ddl


def test_a_create_whose_ddl_is_not_its_own_statement_is_refused() -> None:
    other = Recommendation(
        action="create_index",
        table="public.posts",
        columns=("user_id",),
        index_name="posts_user_id_idx",
        ddl=CREATE.ddl,  # names posts_user_id_blog_id_idx: the downgrade would drop another
    )
    with pytest.raises(DraftRefused, match="re-run the audit"):
        draft_revision(other, down_revision=None, created=CREATED)


def test_revision_ids_are_deterministic_and_distinct() -> None:
    first = draft_revision(CREATE, down_revision=None, created=CREATED)
    later = draft_revision(CREATE, down_revision="ffffffffffff", created=datetime.now(tz=UTC))
    assert first.revision == later.revision
    assert first.filename == later.filename
    other = draft_revision(RICH, down_revision=None, created=CREATED)
    assert other.revision != first.revision


def test_desc_include_where_and_expression_keys() -> None:
    draft = _draft(RICH)
    assert (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "AuditLog_userId_idx" ON public."AuditLog" '
        'USING btree ("userId", (lower(email)), "createdAt" DESC) INCLUDE (payload) '
        "WHERE deleted_at IS NULL"
    ) in _statements(draft.source, "upgrade")
    assert """_drop_if_invalid('public."AuditLog_userId_idx"')""" in draft.source
    assert "import sqlalchemy as sa" in draft.source


def test_drop_downgrade_recreates_the_exact_definition() -> None:
    draft = _draft(DROP)
    upgrade = _statements(draft.source, "upgrade")
    assert 'DROP INDEX CONCURRENTLY IF EXISTS public."AuditLog_payload_idx"' in upgrade
    statements = _statements(draft.source, "downgrade")
    assert (
        'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "AuditLog_payload_idx" ON '
        'public."AuditLog" USING btree (payload DESC) WHERE (deleted_at IS NULL)'
    ) in statements
    assert """_drop_if_invalid('public."AuditLog_payload_idx"')""" in _function(
        draft.source, "downgrade"
    )
    assert draft.filename.endswith("_drop_index_auditlog_payload_idx.py")


def test_drop_without_definition_or_of_partitioned_index_is_refused() -> None:
    with pytest.raises(DraftRefused, match="no definition"):
        draft_revision(
            Recommendation("drop_index", "public.t", ("a",), "t_a_idx", "DROP"),
            down_revision=None,
            created=CREATED,
        )
    with pytest.raises(DraftRefused, match="partitioned"):
        draft_revision(DROP, down_revision=None, created=CREATED, partitions=PARTITIONS)


def test_concurrent_definition() -> None:
    plain = "CREATE INDEX a_idx ON public.a USING btree (x)"
    assert concurrent_definition(plain) == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON public.a USING btree (x)"
    )
    with pytest.raises(DraftRefused):
        concurrent_definition("ALTER TABLE a ADD PRIMARY KEY (x)")


@pytest.mark.parametrize(
    "name",
    ["x ON ONLY y", 'a"; DROP TABLE public.x; --', "CONCURRENTLY", 'UNIQUE INDEX " ON', "ünï"],
)
def test_concurrent_definition_keeps_a_hostile_name_and_all_after_it(name: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    tail = f"{quoted} ON public.\"t ON ONLY\" USING btree ((a || 'x ON ONLY y'))"
    definition = f"CREATE UNIQUE INDEX {tail}"
    assert concurrent_definition(definition, index_name=name) == (
        f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {tail}"
    )
    assert not partitioned_definition(definition)
    assert partitioned_definition(f"CREATE INDEX {quoted} ON ONLY public.t USING btree (a)")
    with pytest.raises(DraftRefused, match="creates"):
        concurrent_definition(definition, index_name=name + "2")


def test_reindex_upgrades_concurrently_and_downgrade_is_a_no_op() -> None:
    draft = _draft(REINDEX)
    assert """_run('REINDEX INDEX CONCURRENTLY app."Orders_ccnew"')""" in draft.source
    downgrade = _function(draft.source, "downgrade")
    assert "nothing to undo" in downgrade
    assert "_run(" not in downgrade


def test_mixed_case_identifiers_are_quoted_in_raw_sql() -> None:
    source = _draft(DROP).source
    assert 'public."AuditLog_payload_idx"' in source
    partitioned = _draft(EVENTS, PARTITIONS).source
    assert 'ON public."Events_2026"' in partitioned
    assert "ON public.events_2025" in partitioned


def test_partitioned_table_builds_each_partition_and_attaches_it() -> None:
    draft = _draft(EVENTS, PARTITIONS)
    joined = "".join(_statements(draft.source, "upgrade"))
    parent = (
        "CREATE INDEX IF NOT EXISTS events_tenant_id_at_idx ON ONLY public.events "
        "USING btree (tenant_id, at)"
    )
    assert parent in joined
    for partition in PARTITIONS:
        child = partition_index_name(EVENTS.index_name, partition)
        assert len(child.encode()) <= MAX_IDENTIFIER_BYTES
        schema, _, table = partition.partition(".")
        quoted_table = table if table.islower() else f'"{table}"'
        quoted_child = child if child.islower() else f'"{child}"'
        assert (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quoted_child} ON {schema}.{quoted_table} "
            "USING btree (tenant_id, at)"
        ) in joined
        assert (
            f"ALTER INDEX public.events_tenant_id_at_idx ATTACH PARTITION {schema}.{quoted_child}"
        ) in joined
        assert joined.index(parent) < joined.index(quoted_child)
    downgrade = _function(draft.source, "downgrade")
    assert "DROP INDEX IF EXISTS public.events_tenant_id_at_idx" in downgrade
    assert "CONCURRENTLY" not in downgrade.replace("cannot be dropped CONCURRENTLY", "")


def test_partition_index_names_fit_in_63_bytes() -> None:
    long_index = "i" * 63
    long_partition = "public." + "ü" * 31  # 62 bytes
    name = partition_index_name(long_index, long_partition)
    assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
    assert name != partition_index_name(long_index, long_partition + "x")


def test_draft_revisions_chain_in_order() -> None:
    drafts = draft_revisions(
        [CREATE, DROP, EVENTS],
        down_revision="base0000base",
        created=CREATED,
        partitions={"public.events": PARTITIONS},
    )
    assert [d.down_revision for d in drafts] == [
        "base0000base",
        drafts[0].revision,
        drafts[1].revision,
    ]
    assert "ATTACH PARTITION" in drafts[2].source


HOSTILE_NAMES = (
    '"""; import os  # \\',
    "\\N{BULLET} and \\x41 and \\",
    'Col With "Quote"',
    "id)); DROP TABLE public.x; --",
    "a:b %s $$ \\: ;",
    "line\u2028break\rand\ttab\x0bvt",
    "ünïcødé_列",
)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_read_back_verbatim_from_the_revision(name: str) -> None:
    rec = create_rec(
        Candidate(f"public.{name}", (IndexKey(name), IndexKey(f'lower("{name}")', True))),
        "t_idx",
        reasons=(f'quote """ and backslash \\ in {name}',),
    )
    draft = _draft(rec)
    module = ast.parse(draft.source)
    docstring = ast.get_docstring(module, clean=False)
    assert docstring is not None
    assert f"DDL: {rec.ddl}\n" in docstring
    assert f'- quote """ and backslash \\ in {name}\n' in docstring
    assert [type(node) for node in module.body[:3]] == [ast.Expr, ast.ImportFrom, ast.Import]
    (shipped,) = [s for s in _statements(draft.source, "upgrade") if "CREATE INDEX" in s]
    assert shipped == create_index_sql(
        Candidate(f"public.{name}", (IndexKey(name), IndexKey(f'lower("{name}")', True))),
        "t_idx",
        if_not_exists=True,
    )
    assert shipped.replace(" IF NOT EXISTS", "", 1) == rec.ddl


def test_unknown_action_is_refused() -> None:
    with pytest.raises(DraftRefused, match="unknown action"):
        draft_revision(
            Recommendation("vacuum", "public.t", ("a",), "t_a_idx", "VACUUM"),
            down_revision=None,
            created=CREATED,
        )
