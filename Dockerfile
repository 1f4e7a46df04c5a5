# DB Architect: one image for every `dbarchitect` command, e.g.
#   docker run --rm IMAGE audit --dsn postgresql://advisor@db/app --format json
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DBARCH_LOG_FORMAT=json \
    DBARCH_DATA_DIR=/var/lib/dbarchitect

RUN useradd --system --create-home --uid 10001 --shell /usr/sbin/nologin dbarchitect \
    && install -d -o dbarchitect -g dbarchitect /var/lib/dbarchitect

WORKDIR /srv/dbarchitect
COPY . .
RUN pip install .

USER dbarchitect
EXPOSE 8000
ENTRYPOINT ["dbarchitect"]
CMD ["--help"]
