"""`dbarchitect run` / `serve` / `worker` / `deliver`: the App's processes on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import structlog
import uvicorn
from arq.jobs import Job
from pydantic import SecretStr
from redis.exceptions import RedisError

from app.adapters.queue import AUDITS_QUEUE, audit_job_id, loads, open_pool
from app.local import LocalSetupError, admin_token, demo_checkout, local_redis, webhook_secret
from app.settings import Settings, TargetSpec

__all__ = ["Local", "WorkersStopped", "deliver", "local_setup", "main_command", "serve_all"]

log = structlog.get_logger(__name__)

DEMO_TARGET = "demo"
DEMO_REPO = "local/demo"


@dataclass(frozen=True, slots=True)
class Local:
    """Settings completed with the embedded defaults, and the store's DSN."""

    settings: Settings
    store_dsn: str
    demo: bool


@contextlib.contextmanager
def local_setup(settings: Settings, *, say: Callable[[str], None]) -> Iterator[Local]:
    """Start what the settings leave to us: store, Redis, and without targets the demo shop."""
    from app.adapters.store import start_local_store, upgrade_store
    from app.demo.run import demo_server, prepare

    data_dir = settings.data_dir
    update: dict[str, Any] = {}
    with ExitStack() as stack:
        if settings.store_dsn is None:
            say("starting the embedded store (PostgreSQL 18) …")
            store_dsn = stack.enter_context(start_local_store(data_dir))
        else:
            store_dsn = settings.store_dsn.get_secret_value()
        upgrade_store(store_dsn)
        update["redis_url"] = stack.enter_context(
            local_redis(settings.redis_url, data_dir / "redis")
        )
        if not settings.webhook_secrets:
            update["github_webhook_secret"] = SecretStr(webhook_secret(data_dir))
        if settings.admin_token is None:
            update["admin_token"] = SecretStr(admin_token(data_dir))
        demo = not settings.targets
        if demo:
            say("starting the demo target (PostgreSQL 18, the seeded shop) …")
            server = demo_server(data_dir)
            server.start()
            stack.callback(server.stop)
            dsn = prepare(server, say=say)
            # Our own throwaway database: builds and `/ask` are safe on it.
            demo_target = TargetSpec(
                dsn=dsn,  # type: ignore[arg-type]
                allow_target_validation=True,
                allow_ask=True,
            )
            update["targets"] = {DEMO_TARGET: demo_target}
            if not settings.has_app_credentials and settings.local_repo_dir is None:
                update["local_repo_dir"] = demo_checkout(data_dir)
        yield Local(settings.model_copy(update=update), store_dsn, demo)


async def serve_all(local: Local, *, out: TextIO = sys.stdout, demo_audit: bool = True) -> None:
    """The web process and both workers in one event loop, until Ctrl-C."""
    from app.web.asgi import create_app
    from app.web.serving import uvicorn_config
    from worker.main import run_workers

    settings = local.settings
    app = create_app(settings, store_dsn=local.store_dsn)
    server = uvicorn.Server(uvicorn_config(app, settings))
    workers = asyncio.create_task(run_workers(settings, store_dsn=local.store_dsn))
    serving = asyncio.create_task(server.serve())

    def workers_ended(task: asyncio.Task[None]) -> None:
        # They survive outages by themselves: ending means a bug. Stop serving (deliveries
        # would pile up unseen) and let the process exit non-zero, for a supervisor to see.
        if not task.cancelled():
            server.should_exit = True

    workers.add_done_callback(workers_ended)
    background: set[asyncio.Task[None]] = set()
    try:
        while not server.started:
            if serving.done():
                await serving  # startup failed: raise its error
                return
            await asyncio.sleep(0.05)
        _banner(settings, out)
        if local.demo and demo_audit:
            background.add(asyncio.create_task(_demo_audit(settings, out)))
        await serving
    finally:
        for task in (workers, *background):
            task.cancel()
        await asyncio.gather(workers, *background, return_exceptions=True)
    if workers.done() and not workers.cancelled() and workers.exception() is not None:
        error = workers.exception()
        raise WorkersStopped(
            f"the workers stopped on an unexpected {type(error).__name__}: see the log above; "
            "start `dbarchitect run` again"
        ) from error


class WorkersStopped(RuntimeError):
    """The workers of ``dbarchitect run`` ended on an error (the web process then stops too)."""


def _banner(settings: Settings, out: TextIO) -> None:
    base = f"http://{settings.web_host}:{settings.web_port}"
    mode = "live" if settings.has_app_credentials and not settings.dry_run else "dry run"
    why = (
        ""
        if settings.has_app_credentials
        else " (no GitHub App credentials: nothing leaves this machine)"
    )
    lines = [
        "",
        f"DB Architect is running — {mode}{why}",
        f"  webhooks  POST {base}/webhooks/github   (secret: DBARCH_GITHUB_WEBHOOK_SECRET"
        f" or {settings.data_dir / 'webhook-secret'})",
        f"  health    {base}/healthz      API docs {base}/schema      metrics {base}/metrics",
        f"  dashboard {base}/ui/   admin API {base}/api/audits   (token: DBARCH_ADMIN_TOKEN"
        f" or {settings.data_dir / 'admin-token'})",
        *(
            [f"  setup     {base}/setup?token=<admin token>   (register the GitHub App)"]
            if not settings.has_app_credentials
            else []
        ),
        f"  outbox    {settings.outbox}   (what dry runs would publish)",
        f"  targets   {', '.join(sorted(settings.targets))}",
        f"  try it    {_me()} deliver '/audit'    (a signed /audit comment, from another shell)",
        f"            {_me()} deliver $'/ask\\n```sql\\nSELECT status, count(*) FROM orders"
        " GROUP BY 1\\n```'",
        "  stop      Ctrl-C",
        "",
    ]
    out.write("\n".join(lines))
    out.flush()


def _me() -> str:
    """How this program was started (``.venv/bin/dbarchitect`` under ``make run``)."""
    name = Path(sys.argv[0])
    return str(name) if name.name == "dbarchitect" else "dbarchitect"


async def _demo_audit(settings: Settings, out: TextIO) -> None:
    """Send ourselves one signed ``/audit`` and say where its result went."""
    try:
        delivery_id = await deliver(settings, "/audit", repo=DEMO_REPO)
        result = await _audit_result(settings, DEMO_REPO, delivery_id, timeout_s=900)
    except Exception as err:  # a demo nicety: never take the server down
        log.warning("demo_audit_failed", error=str(err))
        return
    out.write(
        f"\nDemo audit finished: {result.get('title') or result}\n"
        f"  check-run summary, comment and pull-request drafts: {settings.outbox / DEMO_REPO}\n\n"
    )
    out.flush()


async def _audit_result(
    settings: Settings, repo: str, delivery_id: str, *, timeout_s: float
) -> dict[str, Any]:
    pool = await open_pool(settings.redis_url)
    try:
        job = Job(
            audit_job_id(repo, delivery_id), pool, _queue_name=AUDITS_QUEUE, _deserializer=loads
        )
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            info = await job.result_info()
            if info is not None:
                return info.result if isinstance(info.result, dict) else {"error": str(info.result)}
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the demo audit did not finish in time")
            await asyncio.sleep(0.5)
    finally:
        await pool.aclose()


async def deliver(
    settings: Settings,
    comment: str,
    *,
    repo: str = DEMO_REPO,
    url: str | None = None,
    login: str = "local-operator",
) -> str:
    """POST a signed ``issue_comment`` delivery (as GitHub would) and return its delivery id."""
    import hashlib
    import hmac
    import uuid

    owner, name = repo.split("/", 1)
    payload = {
        "action": "created",
        "issue": {"number": 1, "title": "Local audit", "state": "open", "user": {"login": login}},
        "comment": {"id": 1, "body": comment, "user": {"login": login, "type": "User"}},
        # A local checkout is nobody's public repository (``/ask`` answers only in private ones).
        "repository": {
            "id": 1,
            "name": name,
            "full_name": repo,
            "owner": {"login": owner},
            "private": True,
        },
        "sender": {"login": login, "type": "User"},
        "installation": {"id": 1},
    }
    body = json.dumps(payload).encode()
    secret = settings.webhook_secrets[0] if settings.webhook_secrets else b""
    delivery_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
    }
    target = url or f"http://{settings.web_host}:{settings.web_port}/webhooks/github"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(target, content=body, headers=headers)
    if response.status_code >= 300:
        raise RuntimeError(f"the receiver answered {response.status_code}: {response.text}")
    return delivery_id


def main_command(args: Any) -> int:
    """``dbarchitect worker | run | deliver`` (parsed by ``app.cli``)."""
    from app.settings import get_settings

    settings = get_settings()
    if args.command == "deliver":
        return _deliver_command(settings, args)
    if args.command == "worker":
        return _check_workers(settings) if args.check else _worker_command(settings)

    def say(text: str) -> None:
        print(f"dbarchitect: {text}", file=sys.stderr, flush=True)

    try:
        with local_setup(settings, say=say) as local:
            asyncio.run(serve_all(local, demo_audit=not args.no_demo_audit))
    except LocalSetupError as err:
        say(str(err))
        return 3
    except WorkersStopped as err:
        say(str(err))
        return 1
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (app.cli makes it one)
        pass
    return 0


def _check_workers(settings: Settings) -> int:
    """``dbarchitect worker --check``: 0 when this host's workers beat on every queue."""
    import socket

    from app.adapters.heartbeats import QUEUES, live_workers

    async def beating() -> set[str]:
        pool = await open_pool(settings.redis_url, timeout_s=3)
        try:
            here = socket.gethostname()
            return {beat.queue for beat in await live_workers(pool) if beat.host == here}
        finally:
            await pool.aclose()

    try:
        queues = asyncio.run(beating())
    except (OSError, RedisError) as err:
        print(f"dbarchitect: Redis does not answer ({type(err).__name__})", file=sys.stderr)
        return 1
    silent = sorted(name for name, queue in QUEUES.items() if queue not in queues)
    if silent:
        print(f"dbarchitect: no live worker on this host for: {', '.join(silent)}")
        return 1
    print("dbarchitect: the workers on this host are alive")
    return 0


def _worker_command(settings: Settings) -> int:
    from worker.main import run_workers

    if settings.store_dsn is None:
        print(
            "dbarchitect: the worker needs DBARCH_STORE_DSN (`dbarchitect run` starts an "
            "embedded store for local use)",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(_until_signalled(run_workers(settings)))
    except KeyboardInterrupt:
        pass
    except Exception as err:  # a bug, not an outage (those are waited out): let it restart us
        log.exception("worker_failed")
        print(
            f"dbarchitect: the worker stopped on an unexpected {type(err).__name__} (see the "
            "log): its supervisor (systemd, compose `restart:`) should start it again",
            file=sys.stderr,
        )
        return 1
    return 0


async def _until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or SIGTERM / SIGINT arrives, then cancel it cleanly.

    A container stops its process with SIGTERM: the workers' running jobs are cancelled
    (arq retries them), and the pools and the store close before the process exits.
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        # Once: a second signal must not cancel the shutdown that closes the pools and store.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: None)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    try:
        await task
    except asyncio.CancelledError:
        log.info("worker_stopped_by_signal")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _deliver_command(settings: Settings, args: Any) -> int:
    if not settings.webhook_secrets:
        secret_file = settings.data_dir / "webhook-secret"
        if not secret_file.is_file():
            print(
                "dbarchitect: no webhook secret: set DBARCH_GITHUB_WEBHOOK_SECRET, or start "
                "`dbarchitect run` first (it keeps one in DBARCH_DATA_DIR)",
                file=sys.stderr,
            )
            return 2
        secret = SecretStr(secret_file.read_text().strip())
        settings = settings.model_copy(update={"github_webhook_secret": secret})
    try:
        delivery_id = asyncio.run(deliver(settings, args.comment, repo=args.repo, url=args.url))
    except (httpx.HTTPError, RuntimeError) as err:
        print(f"dbarchitect: could not deliver: {err}", file=sys.stderr)
        return 3
    print(
        f"delivered {delivery_id}: the worker takes it from here (the app's log says what "
        f"happened; replies land in {settings.outbox} without App credentials)"
    )
    return 0
