"""Our own exceptions for talking to a target database; messages never carry a DSN or password."""

from __future__ import annotations


class TargetError(Exception):
    """Something went wrong while talking to the target database."""


class TargetUnavailable(TargetError):
    """The target cannot be reached: refused, timed out, bad credentials, unknown database."""


class BadDsn(TargetUnavailable):
    """The DSN is malformed: libpq rejects it before connecting (bad usage, not an outage)."""


class MissingPrerequisite(TargetError):
    """The target lacks an extension, a setting or a privilege; the message says what to run."""


class HypoPGMissing(MissingPrerequisite):
    """What-if needs HypoPG here, and real index builds were not allowed."""


class TargetQueryError(TargetError):
    """A statement failed on the target (timeout, lock timeout, planning error, read-only)."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate

    @property
    def lock_timeout(self) -> bool:
        """The statement gave up waiting for a lock (``lock_timeout``)."""
        return self.sqlstate == "55P03"

    @property
    def timed_out(self) -> bool:
        """The statement was cancelled by ``statement_timeout``."""
        return self.sqlstate == "57014"
