"""The target database: one gate for its SQL, its catalog snapshot and its workload."""

from __future__ import annotations

from app.adapters.target_pg.gate import (
    APPLICATION_NAME,
    TAG,
    Params,
    Row,
    Session,
    single_statement,
    untrusted,
)
from app.adapters.target_pg.target import Target, connect

__all__ = [
    "APPLICATION_NAME",
    "TAG",
    "Params",
    "Row",
    "Session",
    "Target",
    "connect",
    "single_statement",
    "untrusted",
]
