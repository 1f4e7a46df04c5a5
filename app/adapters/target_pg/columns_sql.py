"""Catalog SQL of the snapshot's columns: types, B-tree sortability and planner statistics."""

from __future__ import annotations

from typing import LiteralString

from app.adapters.target_pg.catalog_sql import REL_CTE

# One row per column (unordered: sorting 10k rows with their statistics spills to disk;
# Python orders by attnum). ``btree``: the type (domains resolved to their base) has a
# default B-tree operator class, exactly or through an implicit binary-coercible cast (as
# GetDefaultOpClass decides), or is an enum / range / multirange / composite (polymorphic
# opclasses), or is an array whose element type qualifies. json, point, xml, box … do not.
# Statistics arrays become text[] only for types whose array delimiter is ',' (not box).
Q_COLUMNS: LiteralString = (
    "WITH RECURSIVE"
    + REL_CTE
    + """,
btree_opc AS (
    SELECT
        oc.opcintype
    FROM pg_catalog.pg_opclass AS oc
    JOIN pg_catalog.pg_am AS am
        ON am.oid = oc.opcmethod
    WHERE am.amname = 'btree'
        AND oc.opcdefault
),
dom (oid, base) AS (
    SELECT
        t.oid,
        t.typbasetype
    FROM pg_catalog.pg_type AS t
    WHERE t.typtype = 'd'
    UNION ALL
    SELECT
        dom.oid,
        t.typbasetype
    FROM dom
    JOIN pg_catalog.pg_type AS t
        ON t.oid = dom.base
    WHERE t.typtype = 'd'
),
base_of (oid, base) AS (
    SELECT
        dom.oid,
        dom.base
    FROM dom
    JOIN pg_catalog.pg_type AS t
        ON t.oid = dom.base
    WHERE t.typtype <> 'd'
),
sortable (oid) AS (
    SELECT
        t.oid
    FROM pg_catalog.pg_type AS t
    WHERE t.typtype NOT IN ('d', 'p')
        AND (
            t.oid IN (SELECT opcintype FROM btree_opc)
            OR EXISTS (
                SELECT 1
                FROM pg_catalog.pg_cast AS pc
                WHERE pc.castsource = t.oid
                    AND pc.castmethod = 'b'
                    AND pc.castcontext = 'i'
                    AND pc.casttarget IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'e'
                AND 'pg_catalog.anyenum'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'r'
                AND 'pg_catalog.anyrange'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'm'
                AND pg_catalog.to_regtype('pg_catalog.anymultirange')::oid
                    IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'c'
                AND 'pg_catalog.record'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            )
        )
)
SELECT
    rel.nspname AS schema,
    rel.relname AS table_name,
    a.attnum,
    a.attname AS name,
    pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
    a.attnotnull AS not_null,
    (
        bt.oid IN (SELECT oid FROM sortable)
        OR (
            bt.typcategory = 'A'
            AND 'pg_catalog.anyarray'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            AND COALESCE(
                (SELECT b.base FROM base_of AS b WHERE b.oid = bt.typelem),
                bt.typelem
            ) IN (SELECT oid FROM sortable)
        )
    ) AS btree,
    s.attname IS NOT NULL AS has_stats,
    s.null_frac,
    s.n_distinct,
    s.avg_width,
    CASE
        WHEN bt.typdelim = ',' THEN s.most_common_vals::text::text[]
    END AS most_common_vals,
    s.most_common_freqs,
    CASE
        WHEN bt.typdelim = ',' THEN s.histogram_bounds::text::text[]
    END AS histogram_bounds,
    s.correlation
FROM rel
JOIN pg_catalog.pg_attribute AS a
    ON a.attrelid = rel.oid
    AND a.attnum > 0
    AND NOT a.attisdropped
JOIN pg_catalog.pg_type AS bt
    ON bt.oid = COALESCE(
        (SELECT b.base FROM base_of AS b WHERE b.oid = a.atttypid),
        a.atttypid
    )
LEFT JOIN pg_catalog.pg_stats AS s
    ON s.schemaname = rel.nspname
    AND s.tablename = rel.relname
    AND s.attname = a.attname
    AND s.inherited = (rel.relkind = 'p')
    AND s.schemaname !~ '^pg_'
    AND s.schemaname <> 'information_schema'
"""
)
