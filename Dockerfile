# DB Architect: one image for the web process, the workers and every other `dbarchitect` command.
#   docker build -t db-architect:local .
#   docker run IMAGE                                   web: webhooks and /healthz on :8000
#   docker run IMAGE dbarchitect worker                the arq workers (events and audits queues)
#   docker run --rm IMAGE dbarchitect store upgrade    create or migrate the store's tables
#   docker run --rm IMAGE dbarchitect audit --dsn postgresql://advisor@db/app --format json
# Settings are DBARCH_* variables given at run time (deploy/.env.example); no secret is baked in.
# deploy/compose.yml runs it with PostgreSQL (pgvector) and Redis.

# ---------------------------------------------------------------- builder
# The project (a regular wheel install: it carries the store migrations) and its dependencies in
# a venv, plus the embedding model, so the runtime image never downloads anything.
FROM python:3.11-slim-bookworm AS builder

ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY worker ./worker
COPY migrations ./migrations
RUN pip install .

RUN dbarchitect model provision --dir /opt/dbarchitect/model

# ---------------------------------------------------------------- runtime
# The same base as the builder: the venv's interpreter is /usr/local/bin/python3.11 in both.
FROM python:3.11-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DBARCH_MODEL_DIR=/opt/dbarchitect/model \
    DBARCH_DATA_DIR=/var/lib/dbarchitect \
    DBARCH_WEB_HOST=0.0.0.0 \
    DBARCH_WEB_PORT=8000 \
    DBARCH_LOG_FORMAT=json

# uid/gid 10001: `dbarchitect`, no login shell; it owns only its data directory.
RUN groupadd --system --gid 10001 dbarchitect \
    && useradd --system --uid 10001 --gid dbarchitect --no-create-home \
       --home-dir /var/lib/dbarchitect --shell /usr/sbin/nologin dbarchitect \
    && install -d -o dbarchitect -g dbarchitect -m 0750 /var/lib/dbarchitect

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/dbarchitect/model /opt/dbarchitect/model
# The App manifest the /setup page registers from (found in sys.prefix/share/db-architect).
COPY app.yml /opt/venv/share/db-architect/app.yml

# Numeric, so `runAsNonRoot` checks (Kubernetes) can tell it is not root.
USER 10001:10001
WORKDIR /var/lib/dbarchitect
EXPOSE 8000

# Python, as slim has no curl: /healthz answers 200 while deliveries can be accepted, else 503.
# The worker has no web port: compose turns this check off for it.
# No proxy for the container's own address, even when HTTP_PROXY is set for the outside.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:' + os.environ.get('DBARCH_WEB_PORT', '8000') + '/healthz', timeout=4)"]

CMD ["dbarchitect", "serve"]
