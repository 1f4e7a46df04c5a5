"""Seeded random requests against every route of the real process: never a 5xx, never a crash.

Methods × paths (every route, with hostile path parameters and traversals) × query strings ×
headers (credentials right, wrong and malformed; content types; cookies) × bodies (random
bytes, broken and deeply nested JSON, forms). Half the requests carry the admin's credentials
(from their own address, so the attacker's wrong tokens never throttle them), so the handlers
behind the guards are fuzzed too. The log must show no unhandled error.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from urllib.parse import quote

import httpx
import pytest

from app.web.auth import ADMIN_COOKIE
from tests.attack.serve_process import (
    ADMIN_TOKEN,
    SECRET,
    ServeProcess,
    operator_login,
    unhandled_errors,
)
from tests.payloads import issue_comment, sign

SEED = 20261204
REQUESTS = 3000

METHODS = ["GET"] * 6 + ["POST"] * 4 + ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE"]
METHODS += ["PROPFIND", "FOO", "get"]
ROUTES = [
    "/",
    "/healthz",
    "/metrics",
    "/webhooks/github",
    "/api/audits",
    "/api/audits/{id}",
    "/api/recommendations",
    "/api/feedback",
    "/api/memory",
    "/ui",
    "/ui/",
    "/ui/login",
    "/ui/logout",
    "/ui/audits",
    "/ui/audits/{id}",
    "/ui/recommendations",
    "/ui/memory",
    "/setup",
    "/setup/callback",
    "/schema",
    "/schema/openapi.json",
    "/schema/openapi.yaml",
    "/schema/swagger",
    "/schema/redoc",
    "/schema/{any}",
]
IDS = ["1", "0", "-1", "99999999999999999999999", "1e3", "abc", "%00", "1%2f2", "٣", " 1", ""]
TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "%252e%252e%252f",
    "/etc/passwd",
    "openapi.json%00.html",
    "swagger/../../app/settings.py",
]
QUERY_KEYS = ["repository", "limit", "before", "state", "next", "token", "code", "state", "id"]
QUERY_VALUES = [
    "acme/shop",
    "0",
    "-5",
    "101",
    "9" * 40,
    "NaN",
    "//evil.example/",
    "https://evil.example/",
    "\\\\evil",
    "javascript:alert(1)",
    "%00",
    "é",
    "a" * 2000,
    "",
    "open",
    "ACCEPTED",
]
CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "text/plain",
    "application/json; charset=utf-16",
    "application/msgpack",
    "",
    "garbage/;;;",
]


def _json_body(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        depth = rng.choice((100, 1000, 20_000))
        return b"[" * depth + b"]" * depth
    if kind == 1:
        return b'{"a":' * 5000 + b"1" + b"}" * 5000
    if kind == 2:
        return json.dumps({"repository": "acme/shop", "tables": ["x"] * 5000}).encode()
    if kind == 3:
        return json.dumps(
            {
                "repository": rng.choice(QUERY_VALUES),
                "dry_run": rng.choice((True, "yes", None, 1)),
                "tables": rng.choice(([], ["orders"], "orders", [1, 2], [None])),
                "min_confidence": rng.choice((0.5, -1, 1e308, "high", None)),
                rng.choice(("extra", "__proto__", "")): rng.random(),
            }
        ).encode()
    if kind == 4:
        return b'{"repository": "acme/shop", "min_confidence": 1' + b"0" * 5000 + b"}"
    if kind == 5:
        return b'{"repository": "\\ud800"}'
    if kind == 6:
        return b"\xff\xfe\x00{" + rng.randbytes(rng.randrange(64))
    return b'{"a": 1, "a": 2}'


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 4096))
    if kind == 2:
        fields = [(rng.choice(("token", "next", "x")), rng.choice(QUERY_VALUES)) for _ in range(5)]
        return "&".join(f"{k}={v}" for k, v in fields).encode() + b"&" * rng.randrange(3)
    if kind == 3:
        return b"&".join(b"f%d=%d" % (n, n) for n in range(rng.choice((10, 3000))))
    if kind == 4:
        return b"--xyz\r\nContent-Disposition: form-data; name=token\r\n\r\nx\r\n--xyz"
    return _json_body(rng)


def _path(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return "/" + rng.choice([*TRAVERSALS, "", "static/x", "ui/../api/audits", "%ff"])
    route = rng.choice(ROUTES)
    route = route.replace("{id}", rng.choice(IDS)).replace("{any}", rng.choice(TRAVERSALS))
    if rng.random() < 0.05:
        route += rng.choice(("/", "//", "/.", "/%2e", ";x=1", "/extra"))
    return route


def _query(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return ""
    pairs = [(rng.choice(QUERY_KEYS), rng.choice(QUERY_VALUES)) for _ in range(rng.randrange(1, 5))]
    if rng.random() < 0.05:
        pairs += [(f"k{n}", "v") for n in range(2000)]
    return "?" + "&".join(f"{k}={v}" for k, v in pairs)


def _headers(rng: random.Random, admin: bool, session: str) -> dict[str, str]:
    headers = {}
    if admin:
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        headers["Cookie"] = f"{ADMIN_COOKIE}={session}"
    else:
        auth = rng.choice(
            (
                "",
                "Bearer wrong",
                "Bearer",
                "Basic YTpi",
                "bearer " + ADMIN_TOKEN.upper(),
                "Bearer a b",
            )
        )
        if auth:
            headers["Authorization"] = auth
        if rng.random() < 0.3:
            headers["Cookie"] = rng.choice(
                (
                    f"{ADMIN_COOKIE}=forged",
                    f"{ADMIN_COOKIE}=",
                    "=;;=",
                    f"{ADMIN_COOKIE}=" + "a" * 4000,
                )
            )
    if rng.random() < 0.7:
        headers["Content-Type"] = rng.choice(CONTENT_TYPES)
    if rng.random() < 0.2:
        headers["X-GitHub-Event"] = rng.choice(("issue_comment", "ping", "BAD EVENT", ""))
        headers["X-GitHub-Delivery"] = rng.choice(("abc", "", "x" * 200))
        headers["X-Hub-Signature-256"] = rng.choice(("sha256=" + "0" * 64, "sha1=x", ""))
    if rng.random() < 0.1:
        headers["Accept"] = rng.choice(("application/json", "text/html", "*/*;q=x", ""))
    if rng.random() < 0.05:
        headers["X-Forwarded-For"] = rng.choice(("1.2.3.4", "garbage", "::1, ::2"))
    return headers


def _raw(target: str) -> bytes:
    """The request target as sent: as written (traversals and all), but ASCII without
    spaces, as HTTP requires (anything else percent-encoded)."""
    return "".join(c if 32 < ord(c) < 127 else quote(c) for c in target).encode()


def _session(admin_web: ServeProcess) -> str:
    answer = operator_login(admin_web)
    assert answer.status_code == 303
    return answer.cookies[ADMIN_COOKIE]


@pytest.mark.timeout(60)
def test_random_requests_to_every_route_never_get_a_5xx(admin_web: ServeProcess) -> None:
    rng = random.Random(SEED)
    session = _session(admin_web)
    plan = []
    for _ in range(REQUESTS):
        admin = rng.random() < 0.5
        method = rng.choice(METHODS)
        body = _body(rng) if method not in ("GET", "HEAD") or rng.random() < 0.1 else b""
        plan.append((admin, method, _path(rng) + _query(rng), _headers(rng, admin, session), body))

    async def send_all() -> list[tuple[int | str, str]]:
        gate = asyncio.Semaphore(12)
        clients = {
            admin: httpx.AsyncClient(
                base_url=admin_web.url,
                transport=httpx.AsyncHTTPTransport(
                    local_address="127.0.0.2" if admin else "127.0.0.1"
                ),
                timeout=20,
                follow_redirects=False,
            )
            for admin in (True, False)
        }

        async def one(
            admin: bool, method: str, target: str, headers: dict[str, str], body: bytes
        ) -> tuple[int | str, str]:
            async with gate:
                request = clients[admin].build_request(
                    method, target, headers=headers, content=body
                )
                request.url = request.url.copy_with(raw_path=_raw(target))
                try:
                    answer = await clients[admin].send(request)
                except httpx.HTTPError as err:  # refused on its head, and hung up on
                    return type(err).__name__, f"{method} {target[:80]} {err}"
                return answer.status_code, f"{method} {target[:80]}"

        try:
            return await asyncio.gather(*(one(*p) for p in plan))
        finally:
            for client in clients.values():
                await client.aclose()

    started = time.perf_counter()
    answers = asyncio.run(send_all())
    took = time.perf_counter() - started

    statuses = Counter(status for status, _ in answers)
    failures = sorted(
        {what for status, what in answers if isinstance(status, int) and status >= 500}
    )
    print(f"\n{REQUESTS} fuzzed requests (seed {SEED}) in {took:.1f} s: {dict(statuses)}")
    assert not failures, failures[:20]
    assert sum(s for s in statuses.values()) == REQUESTS
    assert not [s for s in statuses if isinstance(s, str)], [
        w for s, w in answers if isinstance(s, str)
    ][:10]
    assert statuses[200] > 200 and statuses[400] > 50  # the guards were passed, often
    assert not unhandled_errors(admin_web)


@pytest.mark.timeout(60)
def test_hostile_requests_named_one_by_one(admin_web: ServeProcess) -> None:
    """The fuzzer's findings and the classic probes, each with the answer it must get."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    nested = b"[" * 5000 + b"]" * 5000
    probes = [
        ("POST", "/api/audits", admin | {"Content-Type": "application/json"}, nested, {400}),
        ("POST", "/api/audits", admin, b'{"repository": "acme/shop", "x": ' + nested + b"}", {400}),
        ("HEAD", "/webhooks/github", {}, b"", {405}),
        ("OPTIONS", "/webhooks/github", {}, b"", {405}),
        ("FOO", "/webhooks/github", {}, b"", {400, 405}),  # httptools knows no FOO
        ("GET", "/metrics", {}, b"", {200, 401}),
        ("GET", "/schema/openapi.json", {}, b"", {200}),
        ("GET", "/schema/..%2f..%2f..%2fetc%2fpasswd", {}, b"", {404}),
        ("GET", "/schema/%2e%2e/%2e%2e/app/settings.py", {}, b"", {404}),
        ("GET", "/ui/login?next=//evil.example/", {}, b"", {200}),
        ("GET", "/api/audits/99999999999999999999999", admin, b"", {400, 404}),
        ("GET", "/api/audits?limit=100000", admin, b"", {400}),
    ]
    answers = []
    with httpx.Client(
        base_url=admin_web.url,
        transport=httpx.HTTPTransport(local_address="127.0.0.3"),
        timeout=10,
        follow_redirects=False,
    ) as client:
        for method, target, headers, body, _ in probes:
            request = client.build_request(method, target, headers=headers, content=body)
            request.url = request.url.copy_with(raw_path=target.encode())
            answer = client.send(request)
            answers.append(answer)
    got = [(p[0], p[1][:60], a.status_code) for p, a in zip(probes, answers, strict=True)]
    print("\n" + "\n".join(f"{m} {t}: {s}" for m, t, s in got))
    assert all(a.status_code in p[4] for p, a in zip(probes, answers, strict=True)), got
    assert b"passwd" not in b"".join(a.content for a in answers[7:9])
    assert "evil.example" not in answers[9].text.replace("%2F", "/").split("<form")[1][:400]
    assert not unhandled_errors(admin_web)


@pytest.mark.timeout(60)
def test_hammered_health_and_metrics_do_not_hold_up_deliveries(admin_web: ServeProcess) -> None:
    """64 clients polling /healthz (a store ping and a Redis read each) and /metrics (a Redis
    read) as fast as answered, unauthenticated, while GitHub delivers from its own address."""

    async def attack() -> tuple[Counter[int], list[tuple[int, float]]]:
        stop = asyncio.Event()
        polled: Counter[int] = Counter()

        async def poll(client: httpx.AsyncClient, path: str) -> None:
            while not stop.is_set():
                polled[(await client.get(path)).status_code] += 1

        async def deliver(github: httpx.AsyncClient) -> tuple[int, float]:
            body = json.dumps(issue_comment("/audit")).encode()
            headers = {
                "X-GitHub-Event": "issue_comment",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(body, SECRET),
                "Content-Type": "application/json",
            }
            started = time.perf_counter()
            answer = await github.post("/webhooks/github", content=body, headers=headers)
            return answer.status_code, time.perf_counter() - started

        limits = httpx.Limits(max_connections=64)
        async with (
            httpx.AsyncClient(base_url=admin_web.url, timeout=20, limits=limits) as flood,
            httpx.AsyncClient(
                base_url=admin_web.url,
                timeout=20,
                transport=httpx.AsyncHTTPTransport(local_address="127.0.0.7"),
            ) as github,
        ):
            pollers = [
                asyncio.create_task(poll(flood, ("/healthz", "/metrics")[n % 2])) for n in range(64)
            ]
            await asyncio.sleep(1.0)
            delivered = []
            for _ in range(10):  # bursts of 6, every half second
                delivered += await asyncio.gather(*(deliver(github) for _ in range(6)))
                await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*pollers)
        return polled, delivered

    polled, delivered = asyncio.run(attack())

    seconds = sorted(s for _, s in delivered)
    print(
        f"\n64 pollers of /healthz and /metrics: {dict(polled)}; 60 deliveries meanwhile: "
        f"{Counter(s for s, _ in delivered)}, p50 {seconds[30] * 1000:.0f} ms, "
        f"max {seconds[-1] * 1000:.0f} ms"
    )
    assert [s for s, _ in delivered] == [202] * 60
    assert not [s for s in polled if s >= 500]
    assert seconds[-1] < 5.0
