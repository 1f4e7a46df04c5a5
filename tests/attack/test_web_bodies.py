"""Every route but the webhook attacked for real: big and slow bodies, huge heads, many cookies.

`dbarchitect serve` runs with the dashboard on; the attacker connects from 127.0.0.1 and the
operator from 127.0.0.2. Figures are printed (``pytest -s``) for the threat model.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from app.web.bodies import MAX_BODY_BYTES
from tests.attack.serve_process import (
    RssWatch,
    ServeProcess,
    operator_login,
    unhandled_errors,
)

CUT_WITHIN_S = 10.0 + 2.5  # the read deadline, and a margin for a loaded machine
FORM = b"token=wrong-token-guess&next=%2Fui%2F"
JSON_START = b'{"repository": "acme/shop", "dry_run": true}'


def _request(path: str, length: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _status_of(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    return int(line.split()[1])


async def _send_and_answer(port: int, head: bytes, body: bytes, *, pieces: int = 1) -> int | None:
    """Send ``head``; if not answered within a second, ``body`` (in ``pieces``, as fast as
    taken). The status, None if hung up on."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(_status_of(reader))
    try:
        writer.write(head)
        await writer.drain()
        await asyncio.wait({answer}, timeout=1.0)
        size = -(-len(body) // pieces)
        for start in range(0, len(body), size):
            if answer.done():
                break
            writer.write(body[start : start + size])
            await writer.drain()
        return await asyncio.wait_for(answer, 20)
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        return None
    finally:
        answer.cancel()
        writer.close()


def _operator_logs_in(admin_web: ServeProcess) -> int:
    return operator_login(admin_web).status_code


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ui/login", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/api/audits", {"Content-Type": "application/json", "Authorization": "Bearer x"}),
        ("/ui/logout", {}),
        ("/setup/callback", {}),
    ],
    ids=["login", "api", "logout", "setup-callback"],
)
def test_big_bodies_to_other_routes_are_refused_unread(
    admin_web: ServeProcess, path: str, headers: dict[str, str]
) -> None:
    """A declared 9 MiB (Litestar alone would read up to 10 MB), 100 at once; then one just
    over the limit in chunked encoding, which declares no length."""

    async def attack() -> tuple[list[int | None], RssWatch]:
        watch = RssWatch(admin_web, admin_web.rss_mb() + 100)
        watching = asyncio.create_task(watch.run())
        big = 9 * 1024 * 1024
        body = b"a" * big
        statuses = await asyncio.gather(
            *(
                _send_and_answer(admin_web.port, _request(path, big, headers), body, pieces=36)
                for _ in range(100)
            )
        )
        watching.cancel()
        return list(statuses), watch

    before = admin_web.rss_mb()
    started = time.perf_counter()
    statuses, watch = asyncio.run(attack())
    took = time.perf_counter() - started
    chunked_head = _request(path, 0, headers).replace(
        b"Content-Length: 0", b"Transfer-Encoding: chunked"
    )
    piece = b"a" * 4096
    chunks = (b"%x\r\n" % len(piece) + piece + b"\r\n") * (MAX_BODY_BYTES // 4096 + 2)
    chunked = asyncio.run(_send_and_answer(admin_web.port, chunked_head, chunks + b"0\r\n\r\n"))

    print(
        f"\n100 x 9 MiB to {path}: {Counter(statuses)} in {took:.1f} s; RSS {before:.0f} MB "
        f"before, peak {watch.peak_mb:.0f} MB; chunked over {MAX_BODY_BYTES // 1024} KiB: "
        f"{chunked}"
    )
    refused = 405 if path == "/setup/callback" else 413  # a GET route: no body is read
    assert statuses == [refused] * 100
    assert chunked == refused
    assert not watch.tripped.is_set()
    assert not unhandled_errors(admin_web)


@pytest.mark.timeout(60)
def test_slow_bodies_to_other_routes_are_cut_and_the_operator_gets_in(
    admin_web: ServeProcess,
) -> None:
    """Forms and JSON sent at a byte every half second, 150 at once: without a deadline,
    Litestar would wait for them for ever."""

    async def trickle(path: str, body: bytes) -> float:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", admin_web.port)
        closed = asyncio.create_task(reader.read(-1))
        try:
            writer.write(_request(path, len(body) + 1, {"Authorization": "Bearer x"}))
            for byte in body * 10:
                if closed.done():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.wait({closed}, timeout=0.5)
            await asyncio.wait_for(closed, 30 - (time.perf_counter() - started))
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
        return time.perf_counter() - started if closed.done() else float("inf")

    async def attack() -> tuple[list[float], int]:
        cut = asyncio.gather(
            *(trickle("/ui/login", FORM) for _ in range(100)),
            *(trickle("/api/audits", JSON_START) for _ in range(50)),
        )
        await asyncio.sleep(1.0)
        operator = await asyncio.to_thread(_operator_logs_in, admin_web)
        return list(await cut), operator

    cut, operator = asyncio.run(attack())

    print(f"\n150 trickled bodies (login, API): cut after {min(cut):.1f}-{max(cut):.1f} s")
    assert max(cut) < CUT_WITHIN_S
    assert operator == 303  # logged in meanwhile
    assert not unhandled_errors(admin_web)


@pytest.mark.timeout(60)
def test_huge_query_strings_headers_and_cookies_get_4xx(admin_web: ServeProcess) -> None:
    cookie = "; ".join(f"c{n}={'v' * 20}" for n in range(2000))  # ~50 KB, 2000 cookies
    probes = {
        "query 60 KB": ("GET", "/ui/audits?repository=" + "a" * 60_000, {}),
        "query 10k params": ("GET", "/api/audits?" + "&".join(f"p{n}=1" for n in range(5000)), {}),
        "2000 cookies": ("GET", "/ui/", {"Cookie": cookie}),
        "header 60 KB": ("GET", "/healthz", {"X-Big": "b" * 60_000}),
        "head over 64 KiB": ("GET", "/healthz", {"X-Big": "b" * 70_000}),
        "500 headers": ("GET", "/metrics", {f"X-H{n}": "v" for n in range(500)}),
    }
    answers = {}
    with httpx.Client(base_url=admin_web.url, timeout=10) as client:
        for name, (method, path, headers) in probes.items():
            try:
                answers[name] = client.request(method, path, headers=headers).status_code
            except httpx.RemoteProtocolError:
                answers[name] = None  # hung up after its 431
    print(f"\nhuge heads: {answers}")
    assert all(status is None or status < 500 for status in answers.values()), answers
    assert answers["head over 64 KiB"] in (431, None)
    assert _operator_logs_in(admin_web) == 303
    assert not unhandled_errors(admin_web)
