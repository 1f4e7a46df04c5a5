"""GitHub failures sorted by what the worker should do: give up with a reason, or retry later."""

from __future__ import annotations

__all__ = ["GitHubError", "GitHubTransient"]


class GitHubError(Exception):
    """A permanent GitHub failure: retrying the same request would fail the same way.

    The message says what happened and what to do about it (it is shown to operators and may
    end up in a check run), never a token or a request body.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status GitHub answered with; ``None`` when no response arrived.
        self.status = status


class GitHubTransient(GitHubError):
    """A failure that should go away: 5xx, rate limits, timeouts, connection errors.

    The worker turns it into ``arq.Retry(defer=...)``; ``retry_after`` is GitHub's own hint in
    seconds (``retry-after`` or ``x-ratelimit-reset``), ``None`` to use the worker's backoff.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
