"""Seeded tables (100k+ rows, skewed and uniform), each planting one advisor case; the workload."""

from __future__ import annotations

from typing import Any

import psycopg

#: One statement per case, in pg_stat_statements normal form.
WORKLOAD: dict[str, str] = {
    "single_equality": "SELECT * FROM c_single WHERE id = $1",
    "two_equalities": "SELECT * FROM c_pair WHERE user_id = $1 AND blog_id = $2",
    "equality_then_range": "SELECT id FROM c_range WHERE tenant_id = $1 AND created_at > $2",
    "order_limit": "SELECT * FROM c_feed WHERE kind = $1 ORDER BY created_at DESC LIMIT $2",
    "join_key": (
        "SELECT l.amount FROM c_orders o JOIN c_lines l ON l.order_id = o.id "
        "WHERE o.customer_id = $1"
    ),
    "update": "UPDATE c_upd SET v = v + $1 WHERE k = $2",
    "delete": "DELETE FROM c_del WHERE k = $1",
    "view": "SELECT * FROM c_active_users WHERE email = $1",
    "partitioned": "SELECT * FROM c_events WHERE tenant_id = $1 AND created_at >= $2",
    "already_indexed": "SELECT * FROM c_indexed WHERE id = $1",
    "fence": "WITH x AS MATERIALIZED (SELECT * FROM c_fence) SELECT * FROM x WHERE v = $1",
    "select_1": "SELECT 1",
    "catalog": "SELECT relname FROM pg_class WHERE relname = $1",
    "unparseable": "SELECT * FROM WHERE",
}

_SCHEMA = """
SELECT setseed(0.42);
CREATE TABLE c_single AS
  SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g;
CREATE TABLE c_pair AS
  SELECT g AS id, (g % 2000) AS user_id, (g * 7 % 100) AS blog_id, md5(g::text) AS body
  FROM generate_series(1, 120000) g;
CREATE TABLE c_range AS
  SELECT g AS id, (g % 1000) AS tenant_id,
         timestamptz '2025-01-01' + g * interval '5 minutes' AS created_at
  FROM generate_series(1, 100000) g;
CREATE TABLE c_feed AS
  SELECT g AS id, (g % 10) AS kind,
         timestamptz '2025-01-01' + (random() * 1e7) * interval '1 second' AS created_at,
         md5(g::text) AS body
  FROM generate_series(1, 100000) g;
CREATE TABLE c_orders AS
  SELECT g AS id, (g % 5000) AS customer_id FROM generate_series(1, 100000) g;
ALTER TABLE c_orders ADD PRIMARY KEY (id);
CREATE INDEX c_orders_customer_id_idx ON c_orders (customer_id);
CREATE TABLE c_lines AS
  SELECT g AS id, (g % 100000) + 1 AS order_id, (random() * 100)::numeric(10, 2) AS amount
  FROM generate_series(1, 200000) g;
CREATE TABLE c_upd AS SELECT g AS k, 0 AS v FROM generate_series(1, 100000) g;
CREATE TABLE c_del AS SELECT g AS k, md5(g::text) AS v FROM generate_series(1, 100000) g;
CREATE TABLE c_users AS
  SELECT g AS id, 'user' || g || '@example.com' AS email,
         CASE WHEN g % 20 = 0 THEN timestamptz '2025-01-01' END AS deleted_at
  FROM generate_series(1, 100000) g;
CREATE VIEW c_active_users AS SELECT * FROM c_users WHERE deleted_at IS NULL;
CREATE TABLE c_events (id bigint, tenant_id int NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
CREATE TABLE c_events_1 PARTITION OF c_events FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
CREATE TABLE c_events_2 PARTITION OF c_events FOR VALUES FROM ('2025-02-01') TO ('2025-03-01');
CREATE TABLE c_events_3 PARTITION OF c_events FOR VALUES FROM ('2025-03-01') TO ('2025-04-01');
INSERT INTO c_events
  SELECT g, (g % 500), timestamptz '2025-01-01' + (g % 7776000) * interval '1 second'
  FROM generate_series(1, 120000) g;
CREATE TABLE c_indexed AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g;
ALTER TABLE c_indexed ADD PRIMARY KEY (id);
CREATE TABLE c_fence AS SELECT g AS id, (g % 100000) AS v FROM generate_series(1, 100000) g;
CREATE TABLE c_dup AS
  SELECT g AS id, (g % 3000) AS a, (g % 7) AS b, (g % 11) AS s FROM generate_series(1, 100000) g;
CREATE INDEX c_dup_a_idx ON c_dup (a);
CREATE INDEX c_dup_a_again_idx ON c_dup (a);
CREATE INDEX c_dup_a_b_idx ON c_dup (a, b);
CREATE INDEX c_dup_s_idx ON c_dup (s);
VACUUM ANALYZE;
SELECT pg_stat_reset();
"""


def seed(dsn: str) -> None:
    """Build every case table in the (empty) database behind ``dsn``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement.encode())


def workload_text() -> str:
    """The workload as a ``--queries`` file would hold it."""
    return ";\n".join(WORKLOAD.values()) + ";\n"


def keys_of(rec: dict[str, Any]) -> tuple[str, list[str]]:
    """(table, key columns) of a JSON recommendation."""
    return rec["table"], rec["columns"]
