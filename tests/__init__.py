"""Test suite: unit/ (no I/O), integration/ (real PostgreSQL and Redis), fixtures/."""
