"""The PostgreSQL advisor: read the workload, propose and select indexes, apply the rules."""
