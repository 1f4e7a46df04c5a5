"""How many import floors a package's internal graph has: `python -m tests.import_floors [dir]`.

A module that imports nothing inside the package is on floor 1; any other module sits one floor
above the highest module it imports. Counted twice: per module, and per room (a subpackage, the
shared values ``model sql catalog ddl markdown``, or a lone top-level module), the unit a newcomer
navigates. Every import counts, also those inside functions and ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

__all__ = ["SHARED_VALUES", "floors", "imports_of", "module_graph", "room_graph"]

#: The engine's shared values: one room, the ground floor everything else stands on (markdown
#: is the inert-text leaf the renderers, the SQL guard and the bot all use).
SHARED_VALUES = frozenset({"model", "sql", "catalog", "ddl", "markdown"})


def _name(path: Path, root: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Every module name `path` (module `module`) imports, absolute, with ``from x import y``
    also giving ``x.y`` (which is a module when ``y`` is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def module_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (packages' ``__init__`` included)."""
    paths = {_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    return {m: {d for d in imports_of(p, m) if d in paths and d != m} for m, p in paths.items()}


def room(module: str, package: str) -> str:
    """The room of `module`: its subpackage, ``values`` for the shared values, else itself."""
    rest = module.removeprefix(package).lstrip(".").split(".")
    if rest == [""]:
        return package
    if len(rest) == 1 and rest[0] in SHARED_VALUES:
        return "values"
    return rest[0]


def room_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The module graph folded into rooms (imports inside one room dropped)."""
    rooms: dict[str, set[str]] = {}
    for module, deps in graph.items():
        here = room(module, package)
        if here == package:
            continue
        outs = rooms.setdefault(here, set())
        outs.update(r for d in deps if (r := room(d, package)) not in {here, package})
    return rooms


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Floor per node; raises ``ValueError`` naming a cycle when there is one."""
    visiting: set[str] = set()

    @cache
    def floor(node: str) -> int:
        if node in visiting:
            raise ValueError(f"import cycle through {node}")
        visiting.add(node)
        height = 1 + max((floor(d) for d in graph[node]), default=0)
        visiting.discard(node)
        return height

    return {node: floor(node) for node in graph}


def main(argv: list[str]) -> None:
    root = Path(argv[0] if argv else "app/engine")
    package = ".".join(root.parts)
    graph = module_graph(root, package)
    for label, g in (("modules", graph), ("rooms", room_graph(graph, package))):
        by_floor = floors(g)
        top = max(by_floor.values(), default=0)
        print(f"{root}: {len(g)} {label} on {top} floors")
        for level in range(top, 0, -1):
            names = sorted(n.removeprefix(package + ".") for n, f in by_floor.items() if f == level)
            print(f"  {level:2d}  {' '.join(names)}")


if __name__ == "__main__":
    main(sys.argv[1:])
