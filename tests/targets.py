"""A target with one index missing (``accounts.email``) and a workload that needs it, recorded."""

from __future__ import annotations

import psycopg

__all__ = ["seed_accounts"]


def seed_accounts(dsn: str) -> None:
    """100,000 accounts without an index on ``email``; 29 lookups by email in pg_stat_statements.

    ``dsn``'s database needs pg_stat_statements (and the server must preload it).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE accounts AS SELECT g AS id, 'user' || g || '@example.com' AS email"
            " FROM generate_series(1, 100000) g"
        )
        conn.execute("ANALYZE accounts")
        conn.execute("SELECT pg_stat_statements_reset()")
        for n in range(1, 30):
            conn.execute("SELECT * FROM accounts WHERE email = %s", (f"user{n * 7}@example.com",))
