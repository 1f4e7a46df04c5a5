"""Catalog SQL of the snapshot: server facts, relations, indexes and foreign keys.

Catalog objects are schema-qualified so a user's search_path cannot shadow them.
"""

from __future__ import annotations

from typing import LiteralString

Q_SERVER: LiteralString = """
SELECT
    pg_catalog.current_setting('server_version') AS server_version,
    pg_catalog.current_setting('server_version_num')::int AS server_version_num,
    pg_catalog.current_database() AS database,
    pg_catalog.current_schemas(false)::text[] AS search_path,
    pg_catalog.now() AS taken_at,
    (
        SELECT d.stats_reset
        FROM pg_catalog.pg_stat_database AS d
        WHERE d.datname = pg_catalog.current_database()
    ) AS stats_reset,
    EXISTS (
        SELECT 1
        FROM pg_catalog.pg_extension AS e
        WHERE e.extname = 'hypopg'
    ) AS hypopg_installed,
    EXISTS (
        SELECT 1
        FROM pg_catalog.pg_available_extensions AS a
        WHERE a.name = 'hypopg'
    ) AS hypopg_available
"""

# Relations we audit: tables, partitioned tables, views, materialized views, foreign tables
# outside system schemas (user schemas cannot start with pg_) and not owned by an extension.
# Schemas whose name holds a dot are left out: the engine keys a relation by "schema.name"
# and splits on the first dot, so "a.b"."t" would read as "a"."b.t" (another relation).
REL_CTE: LiteralString = """
rel AS (
    SELECT
        c.oid,
        n.nspname,
        c.relname,
        c.relkind,
        c.reltuples,
        c.relispartition
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n
        ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname !~ '^pg_'
        AND n.nspname <> 'information_schema'
        AND pg_catalog.strpos(n.nspname, '.') = 0
        AND NOT EXISTS (
            SELECT 1
            FROM pg_catalog.pg_depend AS d
            WHERE d.classid = 'pg_catalog.pg_class'::regclass
                AND d.objid = c.oid
                AND d.deptype = 'e'
        )
)"""

Q_TABLES: LiteralString = (
    "WITH"
    + REL_CTE
    + """
SELECT
    rel.nspname AS schema,
    rel.relname AS name,
    rel.relkind AS kind,
    CASE
        WHEN rel.relkind = 'p' THEN (
            SELECT COALESCE(sum(GREATEST(lc.reltuples, 0)), 0)
            FROM pg_catalog.pg_partition_tree(rel.oid) AS pt
            JOIN pg_catalog.pg_class AS lc
                ON lc.oid = pt.relid
            WHERE pt.isleaf
        )
        ELSE GREATEST(rel.reltuples, 0)
    END AS rows,
    CASE
        WHEN rel.relkind = 'p' THEN (
            SELECT COALESCE(sum(pg_catalog.pg_relation_size(pt.relid)), 0)
            FROM pg_catalog.pg_partition_tree(rel.oid) AS pt
            WHERE pt.isleaf
        )
        ELSE pg_catalog.pg_relation_size(rel.oid)
    END AS size_bytes,
    CASE
        WHEN rel.relkind = 'p' THEN (
            SELECT COALESCE(sum(pg_catalog.pg_total_relation_size(pt.relid)), 0)
            FROM pg_catalog.pg_partition_tree(rel.oid) AS pt
            WHERE pt.isleaf
        )
        ELSE pg_catalog.pg_total_relation_size(rel.oid)
    END AS total_bytes,
    CASE
        WHEN rel.relispartition THEN (
            SELECT ARRAY[pn.nspname, pc.relname]::text[]
            FROM pg_catalog.pg_inherits AS i
            JOIN pg_catalog.pg_class AS pc
                ON pc.oid = i.inhparent
            JOIN pg_catalog.pg_namespace AS pn
                ON pn.oid = pc.relnamespace
            WHERE i.inhrelid = rel.oid
        )
    END AS parent,
    CASE
        WHEN rel.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(rel.oid, true)
    END AS view_sql,
    COALESCE(st.seq_scan, 0) AS seq_scan,
    COALESCE(st.idx_scan, 0) AS idx_scan,
    COALESCE(st.n_tup_ins, 0) AS n_tup_ins,
    COALESCE(st.n_tup_upd, 0) AS n_tup_upd,
    COALESCE(st.n_tup_del, 0) AS n_tup_del,
    COALESCE(st.n_tup_hot_upd, 0) AS n_tup_hot_upd,
    GREATEST(st.last_analyze, st.last_autoanalyze) AS last_analyze
FROM rel
LEFT JOIN pg_catalog.pg_stat_user_tables AS st
    ON st.relid = rel.oid
ORDER BY
    rel.nspname,
    rel.relname
"""
)

# One row per index. Key columns by name, expression keys as pg_get_indexdef text; DESC
# from indoption bit 0; INCLUDE columns after indnkeyatts; the backing PK/UNIQUE/EXCLUDE
# constraint (conindid of a foreign key points at the referenced index, so filter contype).
Q_INDEXES: LiteralString = (
    "WITH"
    + REL_CTE
    + """
SELECT
    ns.nspname AS schema,
    ic.relname AS name,
    rel.nspname AS table_schema,
    rel.relname AS table_name,
    ARRAY(
        SELECT
            CASE
                WHEN i.indkey[k - 1] = 0 THEN pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
                ELSE (
                    SELECT a.attname::text
                    FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = i.indrelid
                        AND a.attnum = i.indkey[k - 1]
                )
            END
        FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k
        ORDER BY k
    ) AS columns,
    ARRAY(
        SELECT i.indkey[k - 1] = 0
        FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k
        ORDER BY k
    ) AS expression,
    ARRAY(
        SELECT (i.indoption[k - 1] & 1) = 1
        FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k
        ORDER BY k
    ) AS descending,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.generate_series(i.indnkeyatts + 1, i.indnatts) AS k
        JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = i.indrelid
            AND a.attnum = i.indkey[k - 1]
        ORDER BY k
    ) AS include,
    pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
    am.amname AS using,
    i.indisunique AS is_unique,
    i.indisprimary AS is_primary,
    con.conname AS constraint_name,
    i.indisvalid AS valid,
    pg_catalog.pg_relation_size(i.indexrelid) AS size_bytes,
    COALESCE(pg_catalog.pg_stat_get_numscans(i.indexrelid), 0) AS scans,
    pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
FROM pg_catalog.pg_index AS i
JOIN rel
    ON rel.oid = i.indrelid
JOIN pg_catalog.pg_class AS ic
    ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace AS ns
    ON ns.oid = ic.relnamespace
JOIN pg_catalog.pg_am AS am
    ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_constraint AS con
    ON con.conindid = i.indexrelid
    AND con.conrelid = i.indrelid
    AND con.contype IN ('p', 'u', 'x')
ORDER BY
    rel.nspname,
    rel.relname,
    ic.relname
"""
)

# Declared foreign keys only: constraints cloned onto partitions have conparentid <> 0.
Q_FOREIGN_KEYS: LiteralString = (
    "WITH"
    + REL_CTE
    + """
SELECT
    con.conname AS name,
    rel.nspname AS schema,
    rel.relname AS table_name,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS u(attnum, ord)
        JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = con.conrelid
            AND a.attnum = u.attnum
        ORDER BY u.ord
    ) AS columns,
    rn.nspname AS ref_schema,
    rc.relname AS ref_table,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS u(attnum, ord)
        JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = con.confrelid
            AND a.attnum = u.attnum
        ORDER BY u.ord
    ) AS ref_columns
FROM pg_catalog.pg_constraint AS con
JOIN rel
    ON rel.oid = con.conrelid
JOIN pg_catalog.pg_class AS rc
    ON rc.oid = con.confrelid
JOIN pg_catalog.pg_namespace AS rn
    ON rn.oid = rc.relnamespace
WHERE con.contype = 'f'
    AND con.conparentid = 0
ORDER BY
    rel.nspname,
    rel.relname,
    con.conname
"""
)
