"""Seeded hostile bodies for the webhook receiver: random bytes, cut, nested, retyped, NULs."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

__all__ = ["mutated"]

_FIELDS = ("action", "installation", "repository", "sender")
_ODD_VALUES: tuple[object, ...] = (
    5,
    -1,
    2**64,
    10**400,
    1.5,
    True,
    None,
    [],
    {},
    "",
    "a\x00b",
    "\ud7ff",
    {"id": "1", "full_name": 7, "login": [], "type": {}},
    {"id": 2**63, "full_name": "acme/\x00shop"},
)


def _random_bytes(rng: random.Random, seed: bytes) -> bytes:
    return rng.randbytes(rng.randrange(0, 2048))


def _truncated(rng: random.Random, seed: bytes) -> bytes:
    return seed[: rng.randrange(0, len(seed))]


def _flipped(rng: random.Random, seed: bytes) -> bytes:
    body = bytearray(seed)
    for _ in range(rng.randrange(1, 8)):
        body[rng.randrange(len(body))] = rng.randrange(256)
    return bytes(body)


def _nested(rng: random.Random, seed: bytes) -> bytes:
    depth = rng.choice((100, 999, 1000, 1001, 5000, 50_000))
    opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}")))
    inner = opener * depth + b"1" + closer * depth
    return b'{"action": "created", "x": ' + inner + b"}" if rng.random() < 0.5 else inner


def _retyped(rng: random.Random, seed: bytes) -> bytes:
    data = json.loads(seed)
    data[rng.choice(_FIELDS)] = rng.choice(_ODD_VALUES)
    return json.dumps(data).encode("utf-8", "surrogatepass")


def _spliced(rng: random.Random, seed: bytes) -> bytes:
    cut = rng.randrange(len(seed))
    junk = rng.choice((b"\x00", b"\xff\xfe", b'"\\ud800"', b"1e999", b",,", b'"a":1,"a":2'))
    return seed[:cut] + junk + seed[cut:]


def _duplicated(rng: random.Random, seed: bytes) -> bytes:
    field = rng.choice(_FIELDS)
    value = json.dumps(rng.choice(_ODD_VALUES)).encode()
    return b'{"' + field.encode() + b'": ' + value + b", " + seed[1:]


_MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    _random_bytes,
    _truncated,
    _flipped,
    _nested,
    _retyped,
    _spliced,
    _duplicated,
)


def mutated(rng: random.Random, seed: bytes) -> bytes:
    """A hostile variant of ``seed`` (a real payload's JSON), chosen by ``rng``."""
    return rng.choice(_MUTATIONS)(rng, seed)
