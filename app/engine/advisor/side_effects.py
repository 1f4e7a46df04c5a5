"""What a workload statement reaches when executed: the functions it calls, the relations it reads.

Workload text comes from whoever connects to the target: pg_stat_statements records every
role's statements. Executing it for real (EXPLAIN ANALYZE during validation) runs it with
*our* role's privileges, so a statement a low-privileged role wrote can make us terminate
backends, take session locks, advance sequences or call dblink, none of which a rollback
undoes. The adapter asks the server which of the names this module finds are volatile.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from app.engine.ddl import quote_ident
from app.engine.sql import function_name, parse

#: Volatile functions whose only effect is their result (or a transaction-local one).
HARMLESS_VOLATILE = frozenset(
    {
        *("random", "random_normal", "setseed", "clock_timestamp", "timeofday"),
        *("gen_random_uuid", "uuidv4", "uuidv7", "uuid_generate_v4", "uuid_generate_v1"),
        *("txid_current", "pg_current_xact_id", "txid_current_if_assigned"),
    }
)
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge)


@dataclass(frozen=True, slots=True)
class Reach:
    """The functions a statement names, the relations it reads, and whether it writes."""

    #: Lower-cased function names (schema dropped: every function of that name counts).
    functions: frozenset[str]
    #: Relation names as ``to_regclass`` reads them (quoted, schema-qualified when written so).
    relations: frozenset[str]
    writes: bool


def reach(text: str) -> Reach:
    """The :class:`Reach` of one statement.

    Raises:
        SqlError: the statement cannot be parsed, so what it calls is unknown.
    """
    tree = parse(text)
    functions = frozenset(function_name(f).lower() for f in tree.find_all(exp.Func))
    relations = frozenset(
        f"{quote_ident(t.db)}.{quote_ident(t.name)}" if t.db else quote_ident(t.name)
        for t in tree.find_all(exp.Table)
        if t.name
    )
    writes = any(isinstance(node, _WRITES) for node in tree.walk())
    return Reach(functions=functions, relations=relations, writes=writes)
