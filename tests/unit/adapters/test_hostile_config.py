"""A hostile `.github/db-architect.yml`: bombs, tags, size, depth, duplicates — refused fast."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from app.adapters.yaml_config import MAX_BYTES, load_config
from app.bot.repo_config import ConfigError


def laughs(levels: int = 9, width: int = 9) -> str:
    """Billion laughs: ``width ** levels`` strings by aliases, a few hundred bytes of text."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines)


def refused(text: str) -> tuple[str, float, int]:
    """The error, the seconds and the peak bytes it took to refuse ``text``."""
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(text)
    took = time.perf_counter() - started
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError):
            load_config(text)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return str(info.value), took, peak


BOMB = laughs()
CASES = {
    "bomb as unknown keys": (BOMB, "unknown key"),
    "python tag": ('version: 1\ntarget: !!python/object/apply:os.system ["touch /tmp/x"]\n', None),
    "deep flow": (
        "version: " + "[" * 30_000 + "]" * 30_000 + "\n",
        "nested too deeply: over 16 levels",
    ),
    "deep block": (
        "".join(" " * i + "k:\n" for i in range(350)),
        "nested too deeply: over 16 levels",
    ),
    "duplicate key": ("version: 1\ntarget: a\ntarget: b\n", "appears twice"),
    "ten megabytes": ("# " + "x" * 10_000_000 + "\nversion: 1\n", "must be under 64 KiB"),
    "just over the limit": ("version: 1\n" + "#" * MAX_BYTES + "\n", "must be under 64 KiB"),
    "replacement characters (non-UTF-8 bytes)": ("version: 1\ntarget: \ufffd\ufffd\n", None),
    "billion laughs into labels": (
        "version: 1\n" + laughs(6, 6).replace("a", "x-a") + "\nlabels: *x-a5\n",
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_config_is_refused_with_a_message_in_bounded_time_and_memory(name: str) -> None:
    text, expected = CASES[name]
    message, took, peak = refused(text)
    assert message.strip(), name
    if expected is not None:
        assert expected in message, message
    assert took < 1.0, f"{name}: {took:.2f} s"
    assert peak < 64 * 2**20 + 4 * len(text), f"{name}: {peak / 2**20:.1f} MiB"


def test_the_python_tag_is_never_constructed(tmp_path: object) -> None:
    message, _, _ = refused("version: 1\ntarget: !!python/object/apply:os.getcwd []\n")
    assert "python/object" in message or "constructor" in message.lower(), message
