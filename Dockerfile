# DB Architect: one image for every `dbarchitect` command, e.g.
#   docker run --rm IMAGE audit --dsn postgresql://advisor@db/app --format json
#   docker run IMAGE serve      (webhooks; DBARCH_STORE_DSN, DBARCH_REDIS_URL, App credentials)
#   docker run IMAGE worker     (the arq workers; the same settings plus DBARCH_TARGETS)
#   docker run IMAGE store upgrade
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    DBARCH_WEB_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DBARCH_LOG_FORMAT=json \
    DBARCH_DATA_DIR=/var/lib/dbarchitect

RUN useradd --system --create-home --uid 10001 --shell /usr/sbin/nologin dbarchitect \
    && install -d -o dbarchitect -g dbarchitect /var/lib/dbarchitect

WORKDIR /srv/dbarchitect
COPY . .
# Editable, so the store's Alembic environment (top-level migrations/) stays beside the code.
RUN pip install -e .

USER dbarchitect
EXPOSE 8000
ENTRYPOINT ["dbarchitect"]
CMD ["--help"]
