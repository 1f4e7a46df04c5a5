"""Compare two dry-run outboxes with timestamps, run ids and measured timings normalised.

Usage::

    python bench/outbox_diff.py OUTBOX_A OUTBOX_B [--ignore-order] [--show-normalised DIR]

``OUTBOX_A`` and ``OUTBOX_B`` are outbox directories (``<data dir>/outbox`` after
``dbarchitect run`` finished its demo audit; see docs/benchmarks.md for how the demo is run
without a terminal). Every file of both is read, normalised as below, and the unified diff of
what still differs is printed; the exit status is 0 when nothing differs, 1 otherwise, 2 on a
usage error. ``--ignore-order`` also makes the order of recommendations canonical (it follows
their confidence, so it moves with timing noise; see :func:`reorder`).
``--show-normalised DIR`` also writes both normalised trees under ``DIR/a`` and
``DIR/b`` (to diff them with other tools).

What is normalised (everything else must match byte for byte):

- timestamps (ISO 8601 with ``T`` or a space) → ``<time>``;
- the webhook delivery id (a random UUID) → ``<uuid>``, and the check-run ids derived from it
  (``check-runs/<id>.json`` names the ``id`` of a run whose ``external_id`` is a UUID) →
  ``<check-run-N>`` in order of first appearance in ``actions.jsonl``;
- measured timings: numbers followed by ``ms`` (plan nodes, p50/p95, per-cycle totals, build
  durations), ``took N s``, the p50/p95 columns of the measured-evidence table and the numbers
  of its ``mermaid`` chart;
- figures computed from those timings: ``N× faster|slower`` and ``N% faster|slower`` (both →
  ``<change> faster|slower``: the same change is printed either way by its size), ``N% of the
  <ms> the reads save``, the confidence parts that come from measurements (measured speedup,
  noise margin, workload share, write overhead, agreement: score and contribution) and the
  confidence of a recommendation when one of those parts is non-zero (its headline, total,
  ``confidence 0.NN is below`` and the ``confidence`` column of the summary table when the
  row's ``measured`` cell is a timing figure), and ``confidence`` in the PR's
  ``db-architect:meta`` comment of an ``create_index`` recommendation (decoded to JSON first).

Not normalised, on purpose: planner cost estimates, row and buffer counts, sizes, counts of
statements or candidates, thresholds, the order of recommendations and every decision (a
recommendation crossing the confidence bar in one run only shows up as a difference).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import difflib
import json
import re
import sys
from pathlib import Path

TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
NUM = r"(?<![\w.])[+−-]?\d[\d,]*(?:\.\d+)?"
MS = re.compile(rf"{NUM} ms\b")
SECONDS = re.compile(rf"\btook {NUM} s\b")
RATIO = re.compile(rf"{NUM}× (faster|slower)")
PERCENT_CHANGE = re.compile(rf"{NUM}% (faster|slower)")
SHARE_OF_SAVING = re.compile(r"(?:\d+%|under 1%) of the <ms> ms the reads save")
#: Confidence parts computed from measured timings (app/engine/proof/confidence.py).
TIMED_PARTS = ("measured speedup", "noise margin", "workload share", "write overhead", "agreement")
BREAKDOWN_PART = re.compile(rf"\b({'|'.join(TIMED_PARTS)}) (\d\.\d{{3}})")
BELOW = re.compile(r"confidence \d\.\d\d is below")
META = re.compile(r"<!-- db-architect:meta ([A-Za-z0-9+/=]+) -->")


def normalise_tree(root: Path, *, ignore_order: bool = False) -> dict[str, str]:
    """Every file under ``root`` by normalised relative path, its text normalised."""
    files = {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}
    aliases = _check_run_aliases(root, files)
    out: dict[str, str] = {}
    for rel, path in files.items():
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        text = normalise(text, rel)
        if ignore_order:
            text = reorder(text, rel)
        out[_alias(rel, aliases)] = _alias(text, aliases)
    return out


def _check_run_aliases(root: Path, files: dict[str, Path]) -> dict[str, str]:
    """Check-run ids derived from the random delivery id → stable names."""
    derived: set[str] = set()
    for rel, path in files.items():
        if Path(rel).parent.name == "check-runs" and rel.endswith(".json"):
            record = json.loads(path.read_text())
            if UUID.fullmatch(str(record.get("external_id", ""))):
                derived.add(str(record["id"]))
    order: list[str] = []
    for rel, path in files.items():
        if Path(rel).name == "actions.jsonl":
            for line in path.read_text().splitlines():
                found = str(json.loads(line).get("check_run_id", ""))
                if found in derived and found not in order:
                    order.append(found)
    order += sorted(derived - set(order))
    return {run_id: f"<check-run-{i}>" for i, run_id in enumerate(order, 1)}


def _alias(text: str, aliases: dict[str, str]) -> str:
    for run_id, name in aliases.items():
        text = re.sub(rf"\b{run_id}\b", name, text)
    return text


def normalise(text: str, rel: str = "") -> str:
    """``text`` with timestamps, run ids and timing figures replaced by placeholders."""
    if rel.endswith(".json") and "check-runs" in rel:
        record = json.loads(text)
        if isinstance(record.get("output"), dict):
            for key in ("summary", "text"):
                if isinstance(record["output"].get(key), str):
                    record["output"][key] = normalise(record["output"][key])
        return _common(json.dumps(record, indent=2, sort_keys=True))
    text = META.sub(_meta, text)
    text = _sections(text)
    return _common(text)


def _common(text: str) -> str:
    text = TIME.sub("<time>", text)
    text = UUID.sub("<uuid>", text)
    text = MS.sub("<ms> ms", text)
    text = SECONDS.sub("took <s> s", text)
    # "2.3× faster" and "46% faster" are one measured change printed two ways.
    text = RATIO.sub(r"<change> \1", text)
    text = PERCENT_CHANGE.sub(r"<change> \1", text)
    return SHARE_OF_SAVING.sub("<pct> of the <ms> ms the reads save", text)


def _meta(match: re.Match[str]) -> str:
    """The PR's hidden meta comment decoded, its measured confidence normalised."""
    try:
        meta = json.loads(base64.b64decode(match.group(1), validate=True))
    except (binascii.Error, ValueError):
        return match.group(0)
    if isinstance(meta, dict) and meta.get("action") == "create_index" and "confidence" in meta:
        meta["confidence"] = "<confidence>"
    return f"<!-- db-architect:meta (decoded) {json.dumps(meta, sort_keys=True)} -->"


def _sections(text: str) -> str:
    """Normalise each ``###`` section, tables and mermaid charts by their own context."""
    parts = re.split(r"(?m)^(?=### )", text)
    return "".join(_section(part) for part in parts)


def _section(text: str) -> str:
    timed = _timed_confidence(text)
    lines = text.split("\n")
    out: list[str] = []
    header: list[str] | None = None
    mermaid = False
    for line in lines:
        if line.startswith("```mermaid"):
            mermaid = True
        elif mermaid and line.startswith("```"):
            mermaid = False
        elif mermaid and re.match(r"\s*(bar|y-axis)", line):
            line = re.sub(r"\d+(?:\.\d+)?", "<n>", line)
        if line.startswith("|"):
            cells = _cells(line)
            if header is None:
                header = cells
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                line = _row(header, cells, line, timed)
        else:
            header = None
        if timed:
            line = re.sub(r"^\*\*\d+%\*\*,", "**<pct>**,", line)
            line = re.sub(r"^- confidence \d+% ", "- confidence <pct> ", line)
            line = BELOW.sub("confidence <n> is below", line)
        line = BREAKDOWN_PART.sub(r"\1 <n>", line) if line.startswith("- breakdown:") else line
        out.append(line)
    return "\n".join(out)


def _timed_confidence(section: str) -> bool:
    """A section whose confidence has a non-zero part computed from timings."""
    for match in BREAKDOWN_PART.finditer(_breakdown(section)):
        if float(match.group(2)) != 0:
            return True
    for line in section.split("\n"):
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) == 5 and cells[0] in TIMED_PARTS and _float(cells[3]):
            return True
    return False


def _breakdown(section: str) -> str:
    return "\n".join(x for x in section.split("\n") if x.startswith("- breakdown:"))


def _float(cell: str) -> float:
    try:
        return float(cell.strip("*"))
    except ValueError:
        return 0.0


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _row(header: list[str], cells: list[str], line: str, timed: bool) -> str:
    """One table row with its timing columns normalised (others kept as they are)."""
    if len(cells) != len(header):
        return line
    changed = list(cells)
    for i, name in enumerate(header):
        if name in ("p50 ms", "p95 ms"):
            changed[i] = re.sub(NUM, "<ms>", cells[i])
        elif name == "confidence" and "measured" in header:
            measured = _common(cells[header.index("measured")])
            if measured != cells[header.index("measured")]:
                changed[i] = "<pct>"
                out = header.index("outcome") if "outcome" in header else None
                if out is not None:
                    changed[out] = BELOW.sub("confidence <n> is below", cells[out])
    if header[:2] == ["component", "score"] and cells[0] in TIMED_PARTS:
        changed[1], changed[3] = "<pct>", "<n>"
    if header[:2] == ["component", "score"] and cells[0] == "**total**" and timed:
        changed[3] = "**<n>**"
    if changed == cells:
        return line
    return "| " + " | ".join(changed) + " |"


def reorder(text: str, rel: str = "") -> str:
    """``text`` with the run-to-run order of recommendations made canonical.

    Recommendations are listed by confidence, so their order moves with timing noise: table
    rows are sorted (their ``#`` blanked), ``### N.`` sections sorted by title (the number
    blanked), bullet runs sorted, and consecutive ``publish`` lines of actions.jsonl sorted.
    """
    if rel.endswith(".json") and "check-runs" in rel:
        record = json.loads(text)
        for key in ("summary", "text"):
            if isinstance(record["output"].get(key), str):
                record["output"][key] = reorder(record["output"][key])
        return json.dumps(record, indent=2, sort_keys=True)
    text = re.sub(r"(?m)^### \d+\. ", "### <n>. ", text)
    head, *sections = re.split(r"(?m)^(?=### <n>\. )", text)
    if sections:
        last = sections[-1]
        tail = re.search(r"(?m)^### (?!<n>\. )", last)
        rest = last[tail.start() :] if tail else ""
        sections[-1] = last[: tail.start()] if tail else last
        sections = [x if x.endswith("\n") else x + "\n" for x in sections]
        text = head + "".join(sorted(sections)) + rest
    lines = text.split("\n")
    out: list[str] = []
    run: list[str] = []
    kind = ""
    for line in [*lines, "\0"]:
        this = (
            "row"
            if re.match(r"\| \d+ \|", line)
            else "bullet"
            if line.startswith("- `")
            else "publish"
            if line.startswith('{"action": "publish"')
            else ""
        )
        if this != kind or not this:
            out += sorted(run)
            run = []
        kind = this
        if this == "row":
            run.append(re.sub(r"^\| \d+ \|", "| <n> |", line))
        elif this:
            run.append(line)
        else:
            out.append(line)
    return "\n".join(out[:-1])


def diff(a: dict[str, str], b: dict[str, str], names: tuple[str, str]) -> list[str]:
    """Unified diff lines between two normalised trees (missing files diff against nothing)."""
    lines: list[str] = []
    for rel in sorted(set(a) | set(b)):
        left, right = a.get(rel), b.get(rel)
        if left == right:
            continue
        lines += difflib.unified_diff(
            (left or "").splitlines(keepends=True),
            (right or "").splitlines(keepends=True),
            f"{names[0]}/{rel}" if left is not None else "/dev/null",
            f"{names[1]}/{rel}" if right is not None else "/dev/null",
        )
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the normalised diff of two outboxes; 1 when they differ."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--show-normalised", type=Path, default=None)
    parser.add_argument(
        "--ignore-order",
        action="store_true",
        help="sort recommendations (rows, sections, bullets) before comparing",
    )
    args = parser.parse_args(argv)
    for root in (args.a, args.b):
        if not root.is_dir():
            parser.error(f"not a directory: {root}")
    a = normalise_tree(args.a, ignore_order=args.ignore_order)
    b = normalise_tree(args.b, ignore_order=args.ignore_order)
    if args.show_normalised is not None:
        for side, tree in (("a", a), ("b", b)):
            for rel, text in tree.items():
                target = args.show_normalised / side / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8", errors="surrogateescape")
    lines = diff(a, b, (str(args.a), str(args.b)))
    sys.stdout.writelines(lines)
    same = len([r for r in set(a) | set(b) if a.get(r) == b.get(r)])
    print(
        f"outbox_diff: {len(set(a) | set(b)) - same} of {len(set(a) | set(b))} files differ "
        "after normalisation",
        file=sys.stderr,
    )
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
