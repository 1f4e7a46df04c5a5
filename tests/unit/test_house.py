"""The house rules a newcomer can rely on: rooms, floors, allowed imports, module length.

import-linter (`make lint`) holds the layers with deny-lists; these tests hold the allow-lists
(a new third-party import into the engine or the bot fails here even if no contract names it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.import_floors import floors, imports_of, module_graph, room_graph

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def _modules(package: str) -> list[tuple[str, Path]]:
    root = ROOT / package.replace(".", "/")
    out = []
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def _outside(package: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for module, path in _modules(package):
        for name in imports_of(path, module):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in allowed:
                continue
            if any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{module} imports {name}")
    return bad


def test_the_engine_imports_the_standard_library_sqlglot_and_itself_only() -> None:
    assert _outside("app.engine", ("sqlglot", "app.engine")) == []


def test_the_bot_imports_the_standard_library_the_engine_and_itself_only() -> None:
    assert _outside("app.bot", ("app.engine", "app.bot")) == []


def test_the_engine_rooms_stand_on_at_most_four_floors() -> None:
    graph = module_graph(ROOT / "app/engine", "app.engine")
    by_room = floors(room_graph(graph, "app.engine"))
    assert max(by_room.values()) <= 4, by_room
    assert set(by_room) == {"advisor", "proof", "values", "guard"} | {
        "draft",
        "render",
        "report",
        "verdict",
    }
    # render, verdict and draft read the Report, not the advisor's pipeline that makes it
    assert not {"advisor"} & room_graph(graph, "app.engine")["render"]


@pytest.mark.parametrize("package", ["app/engine", "app/bot"])
def test_no_import_cycles(package: str) -> None:
    graph = module_graph(ROOT / package, package.replace("/", "."))
    floors(graph)  # raises ValueError naming the cycle


def test_floors_count_the_longest_chain_and_find_cycles() -> None:
    assert floors({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"c"}}) == {
        "a": 3,
        "b": 2,
        "c": 1,
        "d": 2,
    }
    with pytest.raises(ValueError, match="import cycle"):
        floors({"a": {"b"}, "b": {"a"}})


def test_long_modules_say_why_at_their_top() -> None:
    silent = []
    for path in sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "worker").rglob("*.py")]):
        lines = path.read_text(encoding="utf-8").splitlines()
        top = next((i for i, line in enumerate(lines) if line.startswith(("from ", "import "))), 0)
        if len(lines) > MAX_LINES and not any(
            line.startswith("# Long module: ") for line in lines[:top]
        ):
            silent.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert silent == [], f"over {MAX_LINES} lines without a `# Long module: <why>` line at the top"
