"""Size estimates against indexes really built on PostgreSQL 15 (deduplication included)."""

from __future__ import annotations

import psycopg
import pytest

from app.adapters import target_pg
from app.engine.advisor.sizes import estimate_size
from app.engine.model import Candidate, IndexKey

pytestmark = pytest.mark.integration

SEED = """
CREATE TABLE p (id bigint, d date, k int, u int, n numeric, t text, s text);
INSERT INTO p SELECT g, date '1992-01-01' + (g % 2500), g % 100, (random() * 1e9)::int,
    (g % 100)::numeric, md5(g::text), 'val' || (g % 10)
    FROM generate_series(1, 300000) AS g;
ANALYZE p;
"""
CASES = {
    "p_d": Candidate("public.p", (IndexKey("d"),)),
    "p_k": Candidate("public.p", (IndexKey("k"),)),
    "p_u": Candidate("public.p", (IndexKey("u"),)),
    "p_n": Candidate("public.p", (IndexKey("n"),)),
    "p_t": Candidate("public.p", (IndexKey("t"),)),
    "p_du": Candidate("public.p", (IndexKey("d"), IndexKey("u"))),
    "p_d_inc": Candidate("public.p", (IndexKey("d"),), include=("u",)),
    "p_k_part": Candidate("public.p", (IndexKey("k"),), where="s = 'val3'"),
}
DDL = {
    "p_d": "(d)",
    "p_k": "(k)",
    "p_u": "(u)",
    "p_n": "(n)",
    "p_t": "(t)",
    "p_du": "(d, u)",
    "p_d_inc": "(d) INCLUDE (u)",
    "p_k_part": "(k) WHERE s = 'val3'",
}


def test_estimates_match_built_indexes_within_fifteen_percent(fresh_db15: str) -> None:
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute(SEED)
        with target_pg.connect(fresh_db15) as target:
            snapshot = target.snapshot()
        table = next(t for t in snapshot.tables if t.name == "p")
        estimates = {name: estimate_size(c, table) for name, c in CASES.items()}
        for name, keys in DDL.items():
            conn.execute(f"CREATE INDEX {name} ON p {keys}")
        built = dict(
            conn.execute(
                "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
                [list(DDL)],
            ).fetchall()
        )
    ratios = {name: round(estimates[name] / built[name], 2) for name in DDL}
    assert all(0.85 <= r <= 1.15 for r in ratios.values()), ratios
    # deduplication is what makes the date index a third of the unique one
    assert built["p_d"] < built["p_u"] / 2.5
