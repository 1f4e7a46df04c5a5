"""arq worker process: WorkerSettings and the jobs it runs."""
