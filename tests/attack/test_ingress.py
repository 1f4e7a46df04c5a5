"""The webhook receiver attacked for real: `dbarchitect serve` on loopback, a store, Redis.

Unsigned and wrongly signed bodies of 24 MiB, bodies and headers that trickle, fuzzed
bodies, a batch with unstorable rows; meanwhile GitHub's own (signed) deliveries must all
be accepted and kept. Figures measured are printed (``pytest -s``) for the threat model.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
import redis

from app.adapters.queue import EVENTS_QUEUE, delivery_job_id
from app.adapters.store import Delivery, open_store
from app.web.batch import Batcher
from app.web.state import STORE_OUTAGES
from app.web.webhooks import WEBHOOK_PATH
from tests.attack.serve_process import RssWatch, ServeProcess
from tests.fuzz_bodies import mutated
from tests.payloads import installation_event, issue_comment, repository_dispatch, sign

SECRET = "attack-secret"
RSS_LIMIT_MB = 400.0
BIG = 24 * 1024 * 1024
CUT_WITHIN_S = 10.0 + 2.5  # the read deadline, and a margin for a loaded machine
_ZEROS = memoryview(bytes(256 * 1024))


@pytest.fixture(scope="module")
def web(
    module_store: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("ingress") / "serve.log"
    with ServeProcess(module_store, redis_url, SECRET, log) as server:
        yield server


# ---------------------------------------------------------------------- raw HTTP on loopback


def _head(headers: dict[str, str], length: int) -> bytes:
    lines = [
        f"POST {WEBHOOK_PATH} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _github_headers(event: str, body: bytes, *, signature: str | None = "sign") -> dict[str, str]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}
    if signature == "sign":
        headers["X-Hub-Signature-256"] = sign(body, SECRET)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return headers


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b"{}"
    try:
        return int(head.split()[1]), json.loads(body)
    except ValueError:  # uvicorn's own plain-text answers (its 503 when connections run out)
        return int(head.split()[1]), {"text": body.decode(errors="replace")}


async def _deliver(
    port: int, body: bytes, headers: dict[str, str], *, source: str = "127.0.0.1"
) -> tuple[int, dict[str, object]]:
    """One delivery as GitHub sends it (the whole request at once), from the loopback
    address ``source``; the status and JSON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(_head(headers, len(body)) + body)
        await writer.drain()
        return await asyncio.wait_for(_response(reader), 30)
    finally:
        writer.close()


async def _big_post(port: int, headers: dict[str, str], length: int) -> int | None:
    """Send ``length`` bytes as fast as the server takes them; its status, None if it hung up
    before answering (a reset that discards the answer counts as that too)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(_response(reader))
    try:
        writer.write(_head(headers, length))
        sent = 0
        while sent < length and not answer.done():
            piece = _ZEROS[: min(len(_ZEROS), length - sent)]
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        status, _ = await asyncio.wait_for(answer, 30)
        return status
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        return None
    finally:
        answer.cancel()
        writer.close()


def _stored(store_dsn: str, delivery_ids: list[str]) -> set[str]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT delivery_id FROM webhook_inbox WHERE delivery_id = ANY(%s)", (delivery_ids,)
        ).fetchall()
    return {row[0] for row in rows}


def _queued(redis_url: str, delivery_ids: list[str]) -> set[str]:
    with redis.Redis.from_url(redis_url) as client:
        scores = client.zmscore(EVENTS_QUEUE, [delivery_job_id(i) for i in delivery_ids])
    return {i for i, score in zip(delivery_ids, scores, strict=True) if score is not None}


def _legit() -> tuple[bytes, dict[str, str]]:
    body = json.dumps(issue_comment("/audit tables=orders")).encode()
    return body, _github_headers("issue_comment", body)


async def _legit_while(
    port: int, count: int, delay_s: float, *, source: str = "127.0.0.1"
) -> list[tuple[str, int, dict[str, object]]]:
    """``count`` signed deliveries, sent concurrently once ``delay_s`` has passed."""
    await asyncio.sleep(delay_s)
    deliveries = [_legit() for _ in range(count)]
    answers = await asyncio.gather(
        *(_deliver(port, body, h, source=source) for body, h in deliveries)
    )
    return [
        (headers["X-GitHub-Delivery"], status, content)
        for (_, headers), (status, content) in zip(deliveries, answers, strict=True)
    ]


def _assert_all_accepted_and_kept(
    results: list[tuple[str, int, dict[str, object]]], store_dsn: str
) -> None:
    ids = [delivery_id for delivery_id, _, _ in results]
    assert [(status, content) for _, status, content in results] == [
        (202, {"status": "accepted", "queued": True})
    ] * len(results)
    assert _stored(store_dsn, ids) == set(ids)


# ---------------------------------------------------------------------- big bodies


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signature", [None, "sha256=" + "ab" * 32], ids=["unsigned", "forged"])
def test_big_bodies_do_not_swell_the_process_and_github_still_gets_through(
    web: ServeProcess, module_store: str, signature: str | None
) -> None:
    async def attack() -> tuple[
        list[int | None], list[tuple[str, int, dict[str, object]]], RssWatch
    ]:
        watch = RssWatch(web, RSS_LIMIT_MB)
        watching = asyncio.create_task(watch.run())
        headers = [_github_headers("issue_comment", b"", signature=signature) for _ in range(60)]
        posts = asyncio.gather(*(_big_post(web.port, h, BIG) for h in headers))
        legit = asyncio.create_task(_legit_while(web.port, 50, 0.2))
        done = asyncio.create_task(asyncio.wait_for(asyncio.shield(posts), 45))
        tripped = asyncio.create_task(watch.tripped.wait())
        await asyncio.wait({done, tripped}, return_when=asyncio.FIRST_COMPLETED)
        watching.cancel()
        if watch.tripped.is_set():
            posts.cancel()
            legit.cancel()
            pytest.fail(f"the server's RSS passed {RSS_LIMIT_MB:.0f} MB under the attack")
        return await done, await legit, watch

    if signature is not None:
        # Bodies over 8 MiB are read only from an address that has sent a signed delivery
        # (as GitHub's have): prove this one, so that the whole budget is what is tested.
        asyncio.run(_legit_while(web.port, 1, 0))
    before = web.rss_mb()
    started = time.perf_counter()
    statuses, legit, watch = asyncio.run(attack())
    took = time.perf_counter() - started

    print(
        f"\n{len(statuses)} x 24 MiB {'forged' if signature else 'unsigned'}: RSS {before:.0f} MB "
        f"before, peak {watch.peak_mb:.0f} MB; answers {Counter(statuses)}; {took:.1f} s; "
        f"legit {Counter(s for _, s, _ in legit)}"
    )
    assert watch.peak_mb < RSS_LIMIT_MB
    _assert_all_accepted_and_kept(legit, module_store)
    if signature is None:  # refused on the headers, before a byte of body was read
        assert set(statuses) <= {401, None}
    else:  # read within the budget and refused on the HMAC, or refused for want of budget
        assert set(statuses) <= {401, 503, None}
        assert 401 in statuses


@pytest.mark.timeout(30)
def test_a_declared_length_over_the_limit_is_refused_unread(web: ServeProcess) -> None:
    body = json.dumps(issue_comment("/audit")).encode()
    headers = _github_headers("issue_comment", body)

    status = asyncio.run(_big_post(web.port, headers, 26 * 1024 * 1024))

    assert status in (413, None)
    assert asyncio.run(_deliver(web.port, body, headers))[0] == 202  # the id was not used


@pytest.mark.timeout(30)
def test_a_small_unsigned_delivery_is_answered_not_reset(web: ServeProcess) -> None:
    """A GitHub App without a secret sees why in its delivery log, even if the body lags."""
    body = json.dumps(issue_comment("/audit")).encode()

    async def unsigned() -> tuple[int, dict[str, object]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        try:
            writer.write(_head(_github_headers("issue_comment", body, signature=None), len(body)))
            await writer.drain()
            await asyncio.sleep(0.3)  # the headers are judged before the body is there
            writer.write(body)
            await writer.drain()
            return await asyncio.wait_for(_response(reader), 10)
        finally:
            writer.close()

    status, content = asyncio.run(unsigned())

    assert status == 401
    assert "X-Hub-Signature-256 is missing" in str(content["error"])


# ---------------------------------------------------------------------- one client's share

FORGED_SIZE = 1024 * 1024
HOLD_FOR_S = 12.0  # longer than the 10 s read deadline: every held body is cut and re-sent


async def _hold_forged(port: int, source: str, until: float) -> Counter[int | None]:
    """Keep one connection from ``source`` sending a 1 MiB forged body at 1 KiB a second,
    again as soon as it is answered, until ``until``; the answers it got."""
    loop = asyncio.get_running_loop()
    answers: Counter[int | None] = Counter()
    forged = "sha256=" + "ab" * 32
    while loop.time() < until:
        status: int | None = None
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
        except OSError:
            answers[None] += 1
            await asyncio.sleep(0.2)
            continue
        answer = asyncio.create_task(_response(reader))
        try:
            writer.write(
                _head(_github_headers("issue_comment", b"", signature=forged), FORGED_SIZE)
            )
            while not answer.done() and loop.time() < until:
                writer.write(b"x" * 1024)
                await writer.drain()
                await asyncio.wait({answer}, timeout=1.0)
            if answer.done():
                status = answer.result()[0]
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            answer.cancel()
            writer.close()
        answers[status] += 1
        if status == 503:
            await asyncio.sleep(0.2)  # refused at once: do not spin
    return answers


async def _waves(
    port: int, source: str, every_s: float, until: float
) -> list[tuple[str, int, dict[str, object]]]:
    """Bursts of signed deliveries from ``source`` every ``every_s`` until ``until``: 150 at
    once first (more than arrive together from a fresh address after a restart), then 20."""
    loop = asyncio.get_running_loop()
    results = []
    burst = 150
    while loop.time() + every_s < until:
        results += await _legit_while(port, burst, every_s, source=source)
        burst = 20
    return results


def _flood_while_github_delivers(
    port: int, attackers: list[str], github: str
) -> tuple[Counter[int | None], list[tuple[str, int, dict[str, object]]]]:
    """100 connections per attacker address holding forged bodies, for ``HOLD_FOR_S``,
    while ``github`` sends signed bursts; the attackers' answers and GitHub's."""

    async def attack() -> tuple[Counter[int | None], list[tuple[str, int, dict[str, object]]]]:
        until = asyncio.get_running_loop().time() + HOLD_FOR_S
        holds = [_hold_forged(port, source, until) for source in attackers for _ in range(100)]
        held, legit = await asyncio.gather(asyncio.gather(*holds), _waves(port, github, 1.5, until))
        return sum(held, Counter()), legit

    return asyncio.run(attack())


@pytest.mark.timeout(60)
def test_one_address_cannot_hold_the_budget_with_slow_forged_bodies(
    web: ServeProcess, module_store: str
) -> None:
    """The address GitHub delivers from has sent nothing yet (a fresh start): the attacker's
    share, not the whole budget, is what its 100 slow forged bodies can hold."""
    attacks, legit = _flood_while_github_delivers(web.port, ["127.0.0.2"], "127.0.0.3")

    print(
        f"\n100 slow forged 1 MiB bodies from one address for {HOLD_FOR_S:g} s: "
        f"attacker answers {dict(attacks)}; {len(legit)} signed deliveries from an unproven "
        f"address meanwhile: {Counter(s for _, s, _ in legit)}"
    )
    _assert_all_accepted_and_kept(legit, module_store)
    assert attacks[503] > 100  # all but its share refused at once, again and again
    assert attacks[408] >= 8  # its share was read, and cut at the deadline


@pytest.mark.timeout(60)
def test_many_addresses_cannot_keep_out_an_address_that_proved_itself(
    web: ServeProcess, module_store: str
) -> None:
    """Eight attacker addresses fill all the budget unproven senders may use; GitHub, once
    it has sent one signed delivery, draws on the part kept for proven senders."""
    _assert_all_accepted_and_kept(
        asyncio.run(_legit_while(web.port, 1, 0, source="127.0.0.4")), module_store
    )
    attackers = [f"127.0.1.{n}" for n in range(1, 9)]

    attacks, legit = _flood_while_github_delivers(web.port, attackers, "127.0.0.4")

    print(
        f"\n8 addresses x 100 slow forged 1 MiB bodies for {HOLD_FOR_S:g} s: attacker "
        f"answers {dict(attacks)}; {len(legit)} signed deliveries from a proven address "
        f"meanwhile: {Counter(s for _, s, _ in legit)}"
    )
    _assert_all_accepted_and_kept(legit, module_store)
    assert attacks[503] > 800


@pytest.mark.timeout(60)
def test_one_address_cannot_hold_every_connection(web: ServeProcess, module_store: str) -> None:
    """1100 connections from one address, each with half a request head: without a limit
    per client they would fill uvicorn's 1000 and everyone else would get a 503."""

    async def attack() -> tuple[Counter[str], list[tuple[str, int, dict[str, object]]]]:
        async def hold() -> str:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", web.port, local_addr=("127.0.0.5", 0)
                )
            except OSError:
                return "unconnected"
            try:
                writer.write(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\n".encode())
                answer = await asyncio.wait_for(reader.read(64), 4.0)
                return answer.split(b"\r\n")[0].decode() or "closed"
            except TimeoutError:
                return "held"
            except OSError:
                return "reset"
            finally:
                writer.close()

        holds = asyncio.gather(*(hold() for _ in range(1100)))
        legit = await _legit_while(web.port, 30, 1.5, source="127.0.0.6")
        return Counter(await holds), legit

    held, legit = asyncio.run(attack())

    print(
        f"\n1100 half-open requests from one address: {dict(held)}; signed deliveries from "
        f"another meanwhile: {Counter(s for _, s, _ in legit)}"
    )
    _assert_all_accepted_and_kept(legit, module_store)
    assert held["held"] == 250
    assert held["HTTP/1.1 503 Service Unavailable"] + held["reset"] == 850


# ---------------------------------------------------------------------- slow requests


async def _trickle(port: int, first: bytes, then: bytes, every_s: float, give_up_s: float) -> float:
    """Send ``first``, then ``then`` byte by byte; seconds until the server hung up."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    closed = asyncio.create_task(reader.read(-1))  # the 408 if any, then EOF
    try:
        writer.write(first)
        for byte in then:
            if closed.done():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.wait({closed}, timeout=every_s)
        await asyncio.wait_for(closed, give_up_s - (time.perf_counter() - started))
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()
    return time.perf_counter() - started if closed.done() else float("inf")


@pytest.mark.timeout(60)
def test_trickling_bodies_and_headers_are_cut_off(web: ServeProcess, module_store: str) -> None:
    body = json.dumps(issue_comment("/audit")).encode()

    def slow_body() -> bytes:
        return _head(_github_headers("issue_comment", body), len(body))

    slow_head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + "x" * 200
    ).encode()

    async def attack() -> tuple[list[float], list[tuple[str, int, dict[str, object]]]]:
        bodies = [_trickle(web.port, slow_body(), body, 0.5, 30) for _ in range(200)]
        heads = [_trickle(web.port, b"", slow_head, 0.5, 30) for _ in range(100)]
        cut = asyncio.gather(*bodies, *heads)
        legit = await _legit_while(web.port, 30, 1.0, source="127.0.0.6")
        return await cut, legit

    cut, legit = asyncio.run(attack())

    print(
        f"\n300 trickling connections (200 bodies, 100 headers): cut after "
        f"{min(cut):.1f}-{max(cut):.1f} s; legit {Counter(s for _, s, _ in legit)}"
    )
    assert max(cut) < CUT_WITHIN_S
    _assert_all_accepted_and_kept(legit, module_store)


@pytest.mark.timeout(30)
def test_an_endless_header_is_refused(web: ServeProcess) -> None:
    async def flood() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nX-Flood: ".encode())
        try:
            for _ in range(64):  # 16 MiB of one header, unless the server stops it first
                writer.write(_ZEROS.tobytes().replace(b"\0", b"a"))
                await writer.drain()
        except OSError:
            pass
        try:
            return await asyncio.wait_for(reader.read(-1), 10)
        except OSError:
            return b""
        finally:
            writer.close()

    before = web.rss_mb()
    answer = asyncio.run(flood())

    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")
    assert web.rss_mb() < before + 50


# ---------------------------------------------------------------------- malformed bodies


@pytest.mark.timeout(60)
def test_fuzzed_bodies_get_4xx_never_5xx_and_the_refused_are_kept_nowhere(
    web: ServeProcess, module_store: str, redis_url: str
) -> None:
    rng = random.Random(20261204)
    seeds = [
        json.dumps(p).encode()
        for p in (issue_comment("/audit"), installation_event("created"), repository_dispatch())
    ]
    requests = []
    for n in range(2000):
        body = mutated(rng, rng.choice(seeds))
        signature = "sign" if n % 2 == 0 else rng.choice((None, "sha256=" + "0" * 64, "garbage"))
        requests.append((body, _github_headers("issue_comment", body, signature=signature)))

    async def send_all() -> list[tuple[int, dict[str, object]] | None]:
        gate = asyncio.Semaphore(16)

        async def one(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]] | None:
            async with gate:
                try:
                    return await _deliver(web.port, body, headers)
                except (OSError, asyncio.IncompleteReadError):
                    return None  # hung up on an unsigned body it did not read

        return await asyncio.gather(*(one(b, h) for b, h in requests))

    answers = asyncio.run(send_all())

    statuses = Counter(a[0] if a else None for a in answers)
    print(f"\n2000 fuzzed bodies (1000 signed): {dict(statuses)}")
    assert not [s for s in statuses if s is not None and s >= 500]
    signed = [(r, a) for n, (r, a) in enumerate(zip(requests, answers, strict=True)) if n % 2 == 0]
    unsigned = [a for n, a in enumerate(answers) if n % 2 == 1]
    assert {a[0] for a in unsigned if a} == {401}
    assert all(a is not None and a[0] in (202, 400) for _, a in signed)
    refused = [h["X-GitHub-Delivery"] for (_, h), a in signed if a and a[0] == 400]
    kept = [
        h["X-GitHub-Delivery"] for (_, h), a in signed if a and a[1].get("status") == "accepted"
    ]
    assert len(refused) > 800  # nearly all are malformed (a mutation can leave it valid)
    assert not _stored(module_store, refused) and not _queued(redis_url, refused)
    assert _stored(module_store, kept) == set(kept)


@pytest.mark.timeout(60)
def test_unstorable_deliveries_among_many_fail_alone(
    web: ServeProcess, module_store: str, redis_url: str
) -> None:
    deliveries = []
    for n in range(150):
        payload = issue_comment(f"/audit {n}")
        if n in (10, 75, 140):
            payload["repository"]["full_name"] = "acme/sh\x00op"
        body = json.dumps(payload).encode()
        deliveries.append((body, _github_headers("issue_comment", body)))

    async def send_all() -> list[tuple[int, dict[str, object]]]:
        return await asyncio.gather(*(_deliver(web.port, b, h) for b, h in deliveries))

    answers = asyncio.run(send_all())

    ids = [h["X-GitHub-Delivery"] for _, h in deliveries]
    bad = [ids[n] for n in (10, 75, 140)]
    good = [i for i in ids if i not in bad]
    print(f"\n150 concurrent, 3 with a NUL: {Counter(a[0] for a in answers)}")
    assert [answers[n][0] for n in (10, 75, 140)] == [400] * 3
    assert [a for n, a in enumerate(answers) if n not in (10, 75, 140)] == [
        (202, {"status": "accepted", "queued": True})
    ] * 147
    assert _stored(module_store, ids) == set(good)
    assert not _queued(redis_url, bad)


@pytest.mark.timeout(60)
def test_a_failing_inbox_batch_is_split_down_to_its_bad_rows(module_store: str) -> None:
    """The fallback itself, past validation: rows PostgreSQL refuses, in one batched INSERT."""

    def row(n: int) -> Delivery:
        repository = "acme/sh\x00op" if n in (3, 77, 149) else "acme/shop"
        return Delivery(
            delivery_id=str(uuid.uuid4()),
            event="issue_comment",
            action="created",
            installation_id=42,
            repository=repository,
            sender="alice",
            sender_type="User",
            payload=b"{}",
        )

    async def record() -> list[bool | BaseException]:
        store = await open_store(module_store)
        try:
            inbox = Batcher(store.record_deliveries, max_in_flight=1, outage=STORE_OUTAGES)
            first = asyncio.create_task(inbox.submit(row(-1)))  # the rest queue behind it
            rest = await asyncio.gather(
                *(inbox.submit(row(n)) for n in range(150)), return_exceptions=True
            )
            await first
            return rest
        finally:
            await store.close()

    results = asyncio.run(record())

    failed = [n for n, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [3, 77, 149]
    assert all(isinstance(results[n], psycopg.DataError) for n in failed)
    assert sum(r is True for r in results) == 147
