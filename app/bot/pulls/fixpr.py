"""A recommendation's pull request: its branch, title, commit message, body and hidden metadata.

Everything derives from the recommendation's fingerprint, so a second audit finds the same
branch and the same pull request instead of opening a duplicate.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass

from app.bot.commands.audit import commands_help
from app.bot.pulls.evidence_md import MAX_CHARS
from app.engine import markdown as md
from app.engine.model import Recommendation, recommendation_id

__all__ = [
    "BRANCH_PREFIX",
    "META_VERSION",
    "PrMeta",
    "branch_name",
    "commit_message",
    "fingerprint",
    "in_plain_words",
    "pr_body",
    "pr_title",
    "read_meta",
    "short_table",
]

BRANCH_PREFIX = "db-architect/"
META_VERSION = 1
MAX_BRANCH = 100
MAX_TITLE = 120
TRIMMED_NOTE = (
    "… evidence trimmed to fit GitHub's limit; the full file is in the check run "
    "(or the outbox, on a dry run)."
)
_KINDS = {"create_index": "add-index", "drop_index": "drop-index", "reindex": "reindex"}
_META = re.compile(r"<!-- db-architect:meta ([A-Za-z0-9+/=]{1,4000}) -->")


def fingerprint(rec: Recommendation) -> str:
    """The 8 hex digits of :func:`~app.engine.advisor.audit.recommendation_id`."""
    return recommendation_id(rec).partition(":")[2]


def short_table(table: str) -> str:
    """``public.orders`` → ``orders``; other schemas stay qualified."""
    return table.removeprefix("public.")


def _ref_part(text: str, limit: int) -> str:
    """``text`` as one safe git ref component of at most ``limit`` characters.

    >>> _ref_part("Sales..Orders lock@{1}", 40)
    'Sales.Orders-lock-1'
    >>> _ref_part(".hidden.", 40), _ref_part("заказы", 40)
    ('hidden', 'table')
    """
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    clean = re.sub(r"\.{2,}", ".", clean)[:limit].strip(".-")
    return clean or "table"


def branch_name(rec: Recommendation) -> str:
    """``db-architect/<kind>/<table>-<fp8>``: a valid git ref of at most 100 characters."""
    kind = _KINDS.get(rec.action) or _ref_part(rec.action.replace("_", "-"), 20)
    head = f"{BRANCH_PREFIX}{kind}/"
    tail = f"-{fingerprint(rec)}"
    return head + _ref_part(short_table(rec.table), MAX_BRANCH - len(head) - len(tail)) + tail


def _keys(rec: Recommendation) -> str:
    return ", ".join(
        key + (" DESC" if i < len(rec.descending) and rec.descending[i] else "")
        for i, key in enumerate(rec.columns)
    )


def _create_title(rec: Recommendation) -> str:
    kind = "" if rec.using == "btree" else f"{rec.using.upper()} "
    head = f"perf(db): add {kind}index on {short_table(rec.table)} ({_keys(rec)})"
    include = f" INCLUDE ({', '.join(rec.include)})" if rec.include else ""
    where = " ".join(rec.where.split()) if rec.where else ""
    if len(head) + len(include) + len(where) + 7 > MAX_TITLE and include:
        include = " INCLUDE (…)"
    if where:
        room = MAX_TITLE - len(head) - len(include) - len(" WHERE ")
        where = " WHERE " + md.shorten(where, max(room, 12), at="word")
    return md.shorten(head + include + where, MAX_TITLE, at="word")


def _finding(rec: Recommendation) -> str:
    """The adjective a drop or rebuild carries in its title (``unused``, ``duplicate`` …)."""
    if rec.rule == "duplicate_index":
        return "duplicate " if rec.extra.get("exact", 1.0) else "redundant "
    if rec.rule == "unused_index":
        return "unused "
    if rec.rule == "invalid_index":
        return "invalid "
    return ""


def pr_title(rec: Recommendation) -> str:
    """``perf(db): add index on orders (customer_id)`` and the like, at most 120 characters.

    Names are the target's: a title never mentions anyone (``markdown.plain``).
    """
    if rec.action == "create_index":
        return md.plain(_create_title(rec))
    table = short_table(rec.table)
    verb = {"drop_index": "drop", "reindex": "reindex"}.get(rec.action, rec.action)
    title = f"perf(db): {verb} {_finding(rec)}index {rec.index_name} on {table}"
    return md.plain(md.shorten(title, MAX_TITLE, at="word"))


def commit_message(rec: Recommendation, revision_file: str) -> str:
    """The title, then a body naming the revision file and the recommendation."""
    what = {
        "create_index": "builds the index concurrently",
        "drop_index": "drops the index concurrently (its downgrade recreates it)",
        "reindex": "rebuilds the index concurrently",
    }.get(rec.action, "makes the change")
    return (
        f"{pr_title(rec)}\n\n"
        f"Adds the Alembic revision {revision_file}, which {what}.\n"
        f"Recommendation {recommendation_id(rec)}.\n\n"
        "Drafted by DB Architect; nothing is applied until a human merges.\n"
    )


@dataclass(frozen=True, slots=True)
class PrMeta:
    """What DB Architect needs to recognise its own pull request later (hidden in the body)."""

    fingerprint: str
    rec_id: str
    action: str
    table: str
    revision: str
    confidence: float
    audit_id: int | None
    version: int = META_VERSION


def _marker(meta: PrMeta) -> str:
    data = json.dumps(asdict(meta), separators=(",", ":"), sort_keys=True)
    return f"<!-- db-architect:meta {base64.b64encode(data.encode()).decode()} -->"


def read_meta(body: str | None) -> PrMeta | None:
    """The metadata of the last marker in ``body``; None when missing, garbled or unknown."""
    found = _META.findall(body or "")
    if not found:
        return None
    try:
        data = json.loads(base64.b64decode(found[-1], validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != META_VERSION:
        return None
    return _meta_from(data)


def _meta_from(data: dict[str, object]) -> PrMeta | None:
    """A PrMeta when every field has the right type (JSON gives no guarantee)."""
    strings = ("fingerprint", "rec_id", "action", "table", "revision")
    if not all(isinstance(data.get(key), str) for key in strings):
        return None
    confidence, audit_id = data.get("confidence"), data.get("audit_id")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None
    if audit_id is not None and (isinstance(audit_id, bool) or not isinstance(audit_id, int)):
        return None
    return PrMeta(
        fingerprint=str(data["fingerprint"]),
        rec_id=str(data["rec_id"]),
        action=str(data["action"]),
        table=str(data["table"]),
        revision=str(data["revision"]),
        confidence=float(confidence),
        audit_id=audit_id,
    )


def _configuration(slug: str) -> str:
    return "\n".join(
        [
            "### Configuration",
            "",
            "- **Ignore**: Close this PR without merging and DB Architect will not propose this "
            "change again unless the recommendation changes.",
            "- **Updates**: this branch is refreshed only when the recommendation or its "
            "evidence changes; commits a person adds are never overwritten.",
            "- **Applying**: nothing touches the database until this PR is merged and the "
            "migration runs with your deployment.",
            "",
            "<details><summary>DB Architect commands and options</summary>",
            "<br />",
            "",
            commands_help(slug),
            "",
            "</details>",
            "",
        ]
    )


def _trim(text: str, budget: int) -> str:
    """``text`` cut at a line boundary to fit ``budget``, open fences and details closed."""
    trimmed = md.fit(text, budget - 1, TRIMMED_NOTE)
    return trimmed if trimmed == text else trimmed + "\n"


def in_plain_words(prose: str) -> str:
    """Claude's explanation as the PR body's first section, inert (links only to the docs)."""
    return (
        "#### In plain words\n\n"
        f"{md.prose(prose, md.MAX_PROSE, links=md.DOC_HOSTS)}\n\n"
        "<sub>Written by Claude from the evidence below. The SQL, the measurements and the "
        "confidence are DB Architect's own.</sub>\n\n"
    )


def pr_body(
    evidence_md: str, meta: PrMeta, *, slug: str = "db-architect", dry_run_note: bool = False
) -> str:
    """Evidence, then what closing/merging means, commands, and the hidden metadata marker.

    At most :data:`~app.bot.pulls.evidence_md.MAX_CHARS` characters: the evidence is trimmed
    at a line boundary when needed, never the rest (the marker stays last).
    """
    head = ""
    if dry_run_note:
        head = (
            "> [!NOTE]\n> **Dry run**: DB Architect did not open this pull request; this is "
            "the body it would have.\n\n"
        )
    tail = "\n" + _configuration(slug) + "\n" + _marker(meta) + "\n"
    evidence = _trim(evidence_md.rstrip("\n") + "\n", MAX_CHARS - len(head) - len(tail))
    return head + evidence + tail
