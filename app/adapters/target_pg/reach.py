"""Refuse to execute workload text that could act outside its rolled-back transaction."""

from __future__ import annotations

from typing import Any, LiteralString

from app.adapters.target_pg.gate import Session
from app.engine.advisor.side_effects import HARMLESS_VOLATILE, reach
from app.engine.sql import SqlError

# What the relations a statement reads bring along: views (their definitions), other rewrite
# rules, row-level security policies and, for a write, triggers; views are followed through
# the relations they read. User functions come from pg_depend (built-ins are pinned there,
# hence the definitions, which the caller reads for function names).
Q_REACHED: LiteralString = """
WITH RECURSIVE reached(classid, objid) AS (
    SELECT
        'pg_catalog.pg_class'::pg_catalog.regclass::oid,
        c.oid
    FROM pg_catalog.unnest(%(relations)s::text[]) AS r(name)
    JOIN pg_catalog.pg_class AS c
        ON c.oid = pg_catalog.to_regclass(r.name)
    UNION
    SELECT
        d.refclassid,
        d.refobjid
    FROM reached AS x
    CROSS JOIN LATERAL (
        SELECT
            'pg_catalog.pg_rewrite'::pg_catalog.regclass::oid AS classid,
            w.oid
        FROM pg_catalog.pg_rewrite AS w
        WHERE w.ev_class = x.objid
        UNION ALL
        SELECT
            'pg_catalog.pg_policy'::pg_catalog.regclass::oid,
            p.oid
        FROM pg_catalog.pg_policy AS p
        WHERE p.polrelid = x.objid
        UNION ALL
        SELECT
            'pg_catalog.pg_trigger'::pg_catalog.regclass::oid,
            t.oid
        FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = x.objid
            AND NOT t.tgisinternal
            AND %(writes)s
    ) AS o
    JOIN pg_catalog.pg_depend AS d
        ON d.classid = o.classid
        AND d.objid = o.oid
    WHERE x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
        AND d.refclassid IN (
            'pg_catalog.pg_class'::pg_catalog.regclass,
            'pg_catalog.pg_proc'::pg_catalog.regclass
        )
)
SELECT
    CASE WHEN w.rulename = '_RETURN' AND w.ev_type = '1' THEN 'view' ELSE 'rule' END AS kind,
    CASE
        WHEN w.rulename = '_RETURN' AND w.ev_type = '1' THEN pg_catalog.pg_get_viewdef(w.ev_class)
        ELSE w.ev_class::pg_catalog.regclass::text || '.' || w.rulename::text
    END AS body,
    NULL::oid AS function
FROM reached AS x
JOIN pg_catalog.pg_rewrite AS w
    ON w.ev_class = x.objid
WHERE x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
UNION ALL
SELECT
    'policy',
    'SELECT ' || COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'true') || ', '
        || COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'true'),
    NULL
FROM reached AS x
JOIN pg_catalog.pg_policy AS p
    ON p.polrelid = x.objid
WHERE x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
UNION ALL
SELECT
    'function',
    NULL,
    x.objid
FROM reached AS x
WHERE x.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
"""

# Of the functions named (any schema) or reached: when the statement is executed, the volatile
# ones (a rollback does not undo dblink, pg_terminate_backend, session advisory locks,
# nextval, lo_export); always, those written by a role that is neither a superuser nor us,
# whatever volatility they claim: their body runs with our privileges, and the planner runs
# an IMMUTABLE one with constant arguments while planning. Harmless built-ins pass.
Q_UNSAFE_FUNCTIONS: LiteralString = """
SELECT DISTINCT
    p.oid::pg_catalog.regprocedure::text AS function
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_roles AS owner
    ON owner.oid = p.proowner
CROSS JOIN LATERAL (
    SELECT
        p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace OR EXISTS (
            SELECT
            FROM pg_catalog.pg_depend AS e
            WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                AND e.objid = p.oid
                AND e.deptype = 'e'
        ) AS shipped
) AS s
WHERE (pg_catalog.lower(p.proname) = ANY(%(functions)s::text[]) OR p.oid = ANY(%(oids)s::oid[]))
    AND NOT (s.shipped AND p.proname = ANY(%(harmless)s::text[]))
    AND (
        (%(executes)s AND p.provolatile = 'v')
        OR NOT (s.shipped OR owner.rolsuper OR owner.rolname = current_user)
    )
ORDER BY
    1
LIMIT 6
"""


#: The catalog's answers within one audit, keyed by query and parameters: statements of a
#: workload share their tables and functions, so most of them need no round trip.
Answers = dict[tuple[str, str], list[dict[str, Any]]]


def _rows(
    session: Session, query: LiteralString, params: dict[str, Any], answers: Answers | None
) -> list[dict[str, Any]]:
    if answers is None:
        return session.rows(query, params)
    key = (query, repr(sorted(params.items())))
    if key not in answers:
        answers[key] = session.rows(query, params)
    return answers[key]


def outside_effects(
    session: Session, text: str, *, executes: bool = True, answers: Answers | None = None
) -> str | None:
    """Why running ``text`` is refused, or None when it may run (rolled back).

    ``executes=False``: it is only planned (EXPLAIN), so only untrusted functions count.
    Fails closed: a statement (or a view it reads) whose functions cannot be listed, and a
    relation with a rewrite rule other than a view's, are refused too. ``answers`` keeps the
    catalog's answers for the caller's next statements (one audit: the catalog is a snapshot).
    """
    try:
        found = reach(text)
        rows = _rows(
            session,
            Q_REACHED,
            {"relations": sorted(found.relations), "writes": found.writes},
            answers,
        )
        functions = set(found.functions)
        for row in rows:
            if row["kind"] == "rule":
                return f"it reads {row['body']}, a rewrite rule, so it is not executed"
            if row["body"] is not None:
                functions |= reach(str(row["body"])).functions
    except SqlError as exc:
        return f"cannot tell which functions it calls, so it is not executed ({exc})"
    oids = [int(r["function"]) for r in rows if r["function"] is not None]
    unsafe = _rows(
        session,
        Q_UNSAFE_FUNCTIONS,
        {
            "functions": sorted(functions),
            "oids": sorted(oids),
            "harmless": sorted(HARMLESS_VOLATILE),
            "executes": executes,
        },
        answers,
    )
    if not unsafe:
        return None
    names = [str(r["function"]) for r in unsafe]
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return (
        f"it reaches functions that may act beyond the rolled-back transaction ({shown}: "
        "volatile, or written by a role other than a superuser or this tool's) and would run "
        "with this tool's privileges; run it by hand on a copy if it matters"
    )
