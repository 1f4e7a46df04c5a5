"""configure_logging renders structlog and stdlib records alike, with bound context."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from app.log import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_events_carry_bound_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    structlog.contextvars.bind_contextvars(job_id="audit:1:abc")

    structlog.get_logger("app.test").info("audit.finished", findings=3)

    (event,) = _json_lines(capsys.readouterr().err)
    assert event["event"] == "audit.finished"
    assert event["job_id"] == "audit:1:abc"
    assert event["findings"] == 3
    assert event["level"] == "info"
    assert event["logger"] == "app.test"


def test_stdlib_records_are_rendered_too_and_filtered_by_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", "WARNING")

    logging.getLogger("uvicorn.error").info("hidden")
    logging.getLogger("uvicorn.error").warning("shown %s", "here")

    (event,) = _json_lines(capsys.readouterr().err)
    assert event["event"] == "shown here"
    assert event["level"] == "warning"


def test_reconfiguring_replaces_the_handler() -> None:
    configure_logging("json")
    configure_logging("console", "debug")

    ours = [h for h in logging.getLogger().handlers if h.get_name() == "dbarchitect"]
    assert len(ours) == 1


def test_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="verbose"):
        configure_logging("console", "verbose")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_never_show_local_variables(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt, "info")  # type: ignore[arg-type]

    def connect() -> None:
        dsn = "postgresql://audit:s3cret-pw@db.internal/shop"
        raise ConnectionError(f"refused ({len(dsn)} characters)")

    try:
        connect()
    except ConnectionError:
        structlog.get_logger("app.test").exception("audit_failed")

    err = capsys.readouterr().err
    assert "audit_failed" in err and "ConnectionError" in err
    assert "s3cret-pw" not in err
