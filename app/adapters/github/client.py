"""githubkit clients for the App and its installations, and the one error mapping for every call.

Retries are the worker's job (arq ``Retry`` with backoff), so githubkit's own sleeping retries
are off: a rate-limited request must free the worker, not block it for minutes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
import redis.exceptions
import structlog
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import BaseCacheStrategy
from githubkit.cache.redis import AsyncRedisCacheStrategy
from githubkit.exception import (
    AuthCredentialError,
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
    SecondaryRateLimitExceeded,
)
from githubkit.response import Response
from githubkit.utils import UNSET

from app.adapters.github.errors import GitHubError, GitHubTransient
from app.settings import Settings

if TYPE_CHECKING:
    from githubkit.auth.app import AppAuth
    from githubkit_schemas.latest.types import AppPermissionsType
    from redis.asyncio import Redis

__all__ = [
    "API_VERSION",
    "INSTALLATION_PERMISSIONS",
    "TOKEN_CACHE_PREFIX",
    "api",
    "app_client",
    "as_github_error",
    "call",
    "installation_client",
    "rate_limits_seen",
    "redis_token_cache",
    "user_agent",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: The REST API version every request pins (the documented shapes we read were written for it).
API_VERSION = "2022-11-28"
TIMEOUT_S = 30.0
#: Installation tokens live in Redis under this prefix, shared by all worker processes.
TOKEN_CACHE_PREFIX = "dbarch:gh:"  # noqa: S105 (a key prefix, not a secret)
#: The least an installation token needs: read config/migrations, push a branch, open PRs,
#: report check runs, answer in issues.
INSTALLATION_PERMISSIONS: AppPermissionsType = {
    "contents": "write",
    "pull_requests": "write",
    "checks": "write",
    "issues": "write",
    "metadata": "read",
}
#: Without ``retry-after`` GitHub asks to wait at least a minute after a rate limit.
RATE_LIMIT_FALLBACK_S = 60.0

#: While set (the worker sets it for each job), :func:`api` puts the ``x-ratelimit-remaining``
#: of every response in it, by installation id (``"app"`` for the App's own JWT calls); the
#: job publishes the last values for ``/metrics``.
rate_limits_seen: ContextVar[dict[str, int] | None] = ContextVar(
    "github_rate_limits_seen", default=None
)


@functools.cache
def user_agent() -> str:
    """``db-architect/<version>``: GitHub asks integrations to identify themselves."""
    try:
        version = metadata.version("db-architect")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"db-architect/{version}"


def _github(
    auth: AppAuthStrategy | AppInstallationAuthStrategy,
    settings: Settings,
    cache: BaseCacheStrategy | None,
) -> GitHub[Any]:
    return GitHub(
        auth,
        base_url=settings.github_api_url,
        user_agent=user_agent(),
        timeout=TIMEOUT_S,
        cache_strategy=cache,
        http_cache=False,
        auto_retry=False,
    )


def _app_auth(settings: Settings) -> AppAuthStrategy:
    if settings.github_app_id is None or settings.github_private_key is None:
        raise GitHubError(
            "no GitHub App credentials: set DBARCH_GITHUB_APP_ID and DBARCH_GITHUB_PRIVATE_KEY"
            " (or run in dry-run mode)"
        )
    return AppAuthStrategy(
        app_id=settings.github_app_id, private_key=settings.github_private_key.get_secret_value()
    )


def app_client(settings: Settings, *, cache: BaseCacheStrategy | None = None) -> GitHub[Any]:
    """A client authenticated as the App itself (JWT): ``/app/...`` endpoints only.

    Raises:
        GitHubError: the settings carry no App id or private key.
    """
    return _github(_app_auth(settings), settings, cache)


def installation_client(
    settings: Settings,
    installation_id: int,
    repo: str | None = None,
    *,
    cache: BaseCacheStrategy | None = None,
) -> GitHub[Any]:
    """A client acting as one installation, its token narrowed to ``repo`` and our permissions.

    ``repo`` may be ``owner/name`` or ``name``. The token is minted on first use and cached in
    ``cache`` (githubkit's process-wide memory cache by default; :func:`redis_token_cache` to
    share it between workers) until a minute before it expires.

    Raises:
        GitHubError: the settings carry no App id or private key.
    """
    auth = _app_auth(settings).as_installation(
        installation_id,
        repositories=[repo.rpartition("/")[2]] if repo else UNSET,
        permissions=INSTALLATION_PERMISSIONS,
    )
    return _github(auth, settings, cache)


def redis_token_cache(redis: Redis) -> BaseCacheStrategy:
    """githubkit's token cache in Redis (``dbarch:gh:`` keys), so workers share tokens."""
    return AsyncRedisCacheStrategy(client=redis, prefix=TOKEN_CACHE_PREFIX)


async def call(awaitable: Awaitable[T]) -> T:
    """Await a githubkit request, turning its failures into :class:`GitHubError`.

    Raises:
        GitHubTransient: worth retrying later (5xx, rate limits, timeouts, connection errors).
        GitHubError: permanent; the message says what to do.
    """
    try:
        return await awaitable
    except (GitHubException, httpx.HTTPError) as exc:
        raise as_github_error(exc) from exc


async def api(
    gh: GitHub[Any],
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, str | int] | None = None,
) -> Response[Any]:
    """One REST call on ``path`` (relative to the API root), read leniently with ``.json()``.

    githubkit's typed models reject some real responses, so the adapter reads the few fields
    it needs itself. Every call pins :data:`API_VERSION`.

    A 401 on a request made with a cached installation token (revoked early: the App was
    reinstalled, or its key rotated) drops that token and tries once more with a new one.

    Raises:
        GitHubTransient: worth retrying later.
        GitHubError: permanent.
    """
    try:
        response = await _request(gh, method, path, json, params)
    except GitHubError as err:
        if not await _forgot_stale_token(gh, err):
            raise
        log.info("github.token_refreshed", method=method, path=path)
        response = await _request(gh, method, path, json, params)
    _saw_rate_limit(gh, response.headers)
    log.debug(
        "github.call",
        method=method,
        path=path,
        status=response.status_code,
        rate_remaining=response.headers.get("x-ratelimit-remaining"),
    )
    return response


async def _request(
    gh: GitHub[Any],
    method: str,
    path: str,
    json: Any,
    params: Mapping[str, str | int] | None,
) -> Response[Any]:
    try:
        return await call(
            gh.arequest(
                method,
                path,
                json=json,
                params=dict(params) if params is not None else None,
                headers={"X-GitHub-Api-Version": API_VERSION},
            )
        )
    except GitHubError as err:
        if isinstance(err.__cause__, RequestFailed):  # a rate-limited call says 0 is left
            _saw_rate_limit(gh, err.__cause__.response.headers)
        raise


async def _forgot_stale_token(gh: GitHub[Any], err: GitHubError) -> bool:
    """After a 401 on an installation token's request: drop the cached token (True).

    False when there is nothing to refresh: not a 401, not an installation client, or the
    401 answered the minting itself (the App's JWT: its id or key is wrong).
    """
    auth, cause = gh.auth, err.__cause__
    if err.status != 401 or not isinstance(auth, AppInstallationAuthStrategy):
        return False
    if not isinstance(cause, RequestFailed) or cause.response.raw_request.url.path.endswith(
        "/access_tokens"
    ):
        return False
    # githubkit's caches have no delete; an empty token counts as none and is minted anew.
    # The key is githubkit's own (a private helper of its auth flow, pinned with githubkit).
    flow = cast("AppAuth", auth.get_auth_flow(gh))
    storage = await gh.config.cache_strategy.get_async_cache_storage()
    await storage.aset(flow._get_installation_cache_key(), "", timedelta(seconds=1))
    return True


def _saw_rate_limit(gh: GitHub[Any], headers: httpx.Headers) -> None:
    """Note the rate limit a response reports in :data:`rate_limits_seen`, if a job set it."""
    seen = rate_limits_seen.get()
    remaining = headers.get("x-ratelimit-remaining")
    if seen is None or remaining is None or not remaining.isdigit():
        return
    auth = gh.auth
    who = str(auth.installation_id) if isinstance(auth, AppInstallationAuthStrategy) else "app"
    seen[who] = int(remaining)


def as_github_error(exc: BaseException) -> GitHubError:
    """The :class:`GitHubError` (or :class:`GitHubTransient`) a githubkit failure means."""
    if isinstance(exc, RateLimitExceeded):
        kind = "secondary" if isinstance(exc, SecondaryRateLimitExceeded) else "primary"
        wait = exc.retry_after.total_seconds()
        return GitHubTransient(
            f"GitHub {kind} rate limit on {_where(exc.response.raw_request)};"
            f" retry in {wait:.0f} s",
            status=exc.response.status_code,
            retry_after=wait,
        )
    if isinstance(exc, RequestFailed):
        return _from_response(exc.response.raw_response)
    if isinstance(exc, RequestTimeout):
        return GitHubTransient(f"GitHub did not answer {_where(exc.request)} in time")
    if isinstance(exc, RequestError):
        return _from_cause(exc.exc)
    if isinstance(exc, AuthCredentialError):
        return GitHubError(f"GitHub App credentials are incomplete: {exc}")
    return _from_cause(exc)


def _from_cause(cause: BaseException) -> GitHubError:
    """What an exception raised while sending (or while minting the token) means."""
    if isinstance(cause, GitHubException):
        return as_github_error(cause)
    if isinstance(cause, httpx.TimeoutException):
        return GitHubTransient(f"GitHub did not answer in time ({type(cause).__name__})")
    transient = (
        httpx.TransportError,
        OSError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    )
    if isinstance(cause, transient):
        return GitHubTransient(f"could not reach GitHub: {type(cause).__name__}: {cause}")
    return GitHubError(f"could not talk to GitHub: {type(cause).__name__}: {cause}")


def _where(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path}"


def _said(response: httpx.Response) -> str:
    """GitHub's own explanation: ``message`` plus any validation ``errors``."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    if not isinstance(data, dict):
        return "no message"
    said = str(data.get("message") or "no message")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [e.get("message") or e.get("code") if isinstance(e, dict) else e for e in errors]
        said += " (" + "; ".join(str(d) for d in details) + ")"
    return said


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _from_response(response: httpx.Response) -> GitHubError:
    """Sort an error response: transient (retry later) or permanent (with advice)."""
    status, where, said = response.status_code, _where(response.request), _said(response)
    retry_after = _seconds(response.headers.get("retry-after"))
    if status >= 500:
        return GitHubTransient(
            f"GitHub failed on {where} ({status}: {said}); retrying later",
            status=status,
            retry_after=retry_after,
        )
    if status == 429 or (status == 403 and "secondary rate limit" in said.lower()):
        return GitHubTransient(
            f"GitHub rate limit on {where} ({status}: {said})",
            status=status,
            retry_after=retry_after if retry_after is not None else RATE_LIMIT_FALLBACK_S,
        )
    return GitHubError(_advice(status, where, said, response.headers), status=status)


def _advice(status: int, where: str, said: str, headers: httpx.Headers) -> str:
    """The message of a permanent failure: what happened and what the operator can do."""
    if status == 401:
        return (
            f"GitHub rejected the App's credentials on {where} ({said}): check"
            " DBARCH_GITHUB_APP_ID and DBARCH_GITHUB_PRIVATE_KEY, and that the App is installed"
        )
    if status == 403:
        needed = headers.get("x-accepted-github-permissions")
        if needed:
            return (
                f"the App lacks {needed} for {where} ({said}); accept the new permissions"
                " in the installation settings"
            )
        return (
            f"GitHub refused {where} ({said}): the App may lack a permission or the"
            " repository may be archived; check the installation's permissions"
        )
    if status == 404:
        return (
            f"{where} was not found ({said}): the repository, branch or file does not exist,"
            " or the App is not installed on it"
        )
    return f"GitHub rejected {where} ({status}: {said})"
