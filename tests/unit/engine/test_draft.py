"""FixDraft: the Alembic revision source written for each kind of recommendation."""

from __future__ import annotations

import ast
from datetime import UTC, datetime

import pytest

from app.engine.ddl import MAX_IDENTIFIER_BYTES
from app.engine.draft import (
    DraftRefused,
    FixDraft,
    concurrent_definition,
    draft_revision,
    draft_revisions,
    partition_index_name,
)
from app.engine.model import Recommendation

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

CREATE = Recommendation(
    action="create_index",
    table="public.posts",
    columns=("user_id", "blog_id"),
    index_name="posts_user_id_blog_id_idx",
    ddl="CREATE INDEX CONCURRENTLY posts_user_id_blog_id_idx ON public.posts (user_id, blog_id)",
    reasons=("SELECT * FROM posts WHERE user_id = $1 AND blog_id = $2: 120× cheaper",),
)
RICH = Recommendation(
    action="create_index",
    table="public.AuditLog",
    columns=("userId", "lower(email)", "createdAt"),
    index_name="AuditLog_userId_idx",
    ddl="…",
    include=("payload",),
    where="deleted_at IS NULL",
    descending=(False, False, True),
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
    ddl="…",
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
    assert "op.execute(\"SET lock_timeout = '5s'\")" in upgrade
    assert "op.execute(\"SET statement_timeout = '2h'\")" in upgrade
    assert '["user_id", "blog_id"]' in upgrade
    assert 'schema="public"' in upgrade
    assert "postgresql_concurrently=True" in upgrade
    assert "if_not_exists=True" in upgrade
    assert upgrade.index("SET lock_timeout") < upgrade.index("op.create_index(")
    assert upgrade.index("op.create_index(") < upgrade.index('op.execute("RESET lock_timeout")')
    assert upgrade.index("op.create_index(") < upgrade.index('"RESET statement_timeout"')
    assert '_drop_if_invalid("public.posts_user_id_blog_id_idx")' in upgrade

    downgrade = _function(draft.source, "downgrade")
    assert "op.drop_index(" in downgrade
    assert 'table_name="posts"' in downgrade
    assert "postgresql_concurrently=True" in downgrade
    assert "if_exists=True" in downgrade
    assert "autocommit_block" in downgrade


def test_revision_ids_are_deterministic_and_distinct() -> None:
    first = draft_revision(CREATE, down_revision=None, created=CREATED)
    later = draft_revision(CREATE, down_revision="ffffffffffff", created=datetime.now(tz=UTC))
    assert first.revision == later.revision
    assert first.filename == later.filename
    other = draft_revision(RICH, down_revision=None, created=CREATED)
    assert other.revision != first.revision


def test_desc_include_where_and_expression_keys() -> None:
    upgrade = _function(_draft(RICH).source, "upgrade")
    assert """["userId", sa.text("(lower(email))"), sa.text('"createdAt" DESC')]""" in upgrade
    assert 'postgresql_include=["payload"]' in upgrade
    assert 'postgresql_where=sa.text("deleted_at IS NULL")' in upgrade
    assert 'postgresql_using="btree"' in upgrade
    assert """_drop_if_invalid('public."AuditLog_userId_idx"')""" in upgrade
    assert "import sqlalchemy as sa" in _draft(RICH).source


def test_drop_downgrade_recreates_the_exact_definition() -> None:
    draft = _draft(DROP)
    upgrade = _function(draft.source, "upgrade")
    assert "op.drop_index(" in upgrade
    assert '"AuditLog_payload_idx"' in upgrade
    assert 'table_name="AuditLog"' in upgrade
    assert "postgresql_concurrently=True" in upgrade
    downgrade = _function(draft.source, "downgrade")
    statements = [
        ast.literal_eval(call.args[0])
        for call in ast.walk(ast.parse(downgrade))
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "op.execute"
    ]
    assert (
        'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "AuditLog_payload_idx" ON '
        'public."AuditLog" USING btree (payload DESC) WHERE (deleted_at IS NULL)'
    ) in statements
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


def test_reindex_upgrades_concurrently_and_downgrade_is_a_no_op() -> None:
    draft = _draft(REINDEX)
    assert """op.execute('REINDEX INDEX CONCURRENTLY app."Orders_ccnew"')""" in draft.source
    downgrade = _function(draft.source, "downgrade")
    assert "nothing to undo" in downgrade
    assert "op." not in downgrade


def test_mixed_case_identifiers_are_quoted_in_raw_sql() -> None:
    source = _draft(DROP).source
    assert 'public."AuditLog_payload_idx"' in source
    partitioned = _draft(EVENTS, PARTITIONS).source
    assert 'ON public."Events_2026"' in partitioned
    assert "ON public.events_2025" in partitioned


def test_partitioned_table_builds_each_partition_and_attaches_it() -> None:
    draft = _draft(EVENTS, PARTITIONS)
    upgrade = _function(draft.source, "upgrade")
    joined = "".join(
        ast.literal_eval(call.args[0])
        for call in ast.walk(ast.parse(upgrade))
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "op.execute"
    )
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


def test_docstring_text_cannot_break_out_of_the_module_docstring() -> None:
    rec = Recommendation(
        action="create_index",
        table="public.t",
        columns=("a",),
        index_name="t_a_idx",
        ddl='"""; import os  # \\',
        reasons=('quote """ and backslash \\ and newline\nthere',),
    )
    draft = _draft(rec)
    module = ast.parse(draft.source)
    docstring = ast.get_docstring(module, clean=False)
    assert docstring is not None
    assert '"""; import os  # \\' in docstring
    assert not any(
        isinstance(node, ast.Import) and node.names[0].name == "os" for node in module.body
    )


def test_unknown_action_is_refused() -> None:
    with pytest.raises(DraftRefused, match="unknown action"):
        draft_revision(
            Recommendation("vacuum", "public.t", ("a",), "t_a_idx", "VACUUM"),
            down_revision=None,
            created=CREATED,
        )
