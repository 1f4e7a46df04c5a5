"""The web process (Litestar): GitHub webhooks in, jobs out; health and, later, the admin API."""
