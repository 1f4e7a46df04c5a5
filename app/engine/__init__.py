"""The PostgreSQL advisor, pure: the standard library and sqlglot only, no I/O."""
