"""Write an audit's FixDrafts (eligible recommendations only) and evidence files to a directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.adapters.alembic_dir import chain_head, write_drafts
from app.adapters.whatif import leaf_partitions
from app.bot.pulls.evidence_md import evidence_markdown
from app.engine.draft import DraftRefused, FixDraft, draft_revision, revision_id
from app.engine.model import recommendation_id
from app.engine.report import Report

EVIDENCE_DIR = "evidence"


@dataclass(slots=True)
class Written:
    """What ``write_out`` wrote, and what it held back or refused (with reasons)."""

    revisions: list[Path] = field(default_factory=list)
    evidence: list[Path] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def evidence_filename(rec_id: str) -> str:
    """``create_index:3f9a1c2b`` → ``create_index-3f9a1c2b.md`` (portable file names)."""
    return rec_id.replace(":", "-") + ".md"


def write_out(
    report: Report,
    out_dir: Path,
    *,
    migrations_dir: Path | None = None,
    created: datetime | None = None,
) -> Written:
    """Revisions for recommendations that clear the confidence threshold, evidence for all.

    Revisions chain onto the head of ``migrations_dir`` (the project's Alembic versions
    directory, which may be ``out_dir`` itself); without it the first draft starts a new chain.
    Held-back recommendations get an evidence file that says why, but no revision.

    Raises:
        VersionsDirError: the versions directory has several heads, or a file would be
            overwritten with different content.
    """
    created = created or datetime.now(UTC)
    written = Written()
    ours = {revision_id(r) for r in report.recommendations}
    parent = chain_head(migrations_dir, ignore=ours) if migrations_dir is not None else None
    partitions = leaf_partitions(report.snapshot)
    drafts: list[FixDraft] = []
    files: dict[str, str] = {}
    refusals: dict[str, str] = {}
    for rec in report.recommendations:
        rid = recommendation_id(rec)
        assessment = report.assessments.get(rid)
        if assessment is None or not assessment.confidence.eligible:
            score = f"{assessment.confidence.score:.0%}" if assessment else "not assessed"
            written.held_back.append(f"{rid} ({rec.table}): confidence {score}")
            continue
        try:
            draft = draft_revision(
                rec,
                down_revision=parent,
                created=created,
                partitions=partitions.get(rec.table, ()),
            )
        except DraftRefused as exc:
            written.refused.append(f"{rid} ({rec.table}): {exc}")
            refusals[rid] = f"the draft was refused: {exc}"
            continue
        drafts.append(draft)
        files[rid] = draft.filename
        parent = draft.revision
    written.revisions = list(write_drafts(drafts, out_dir))
    evidence_dir = out_dir / EVIDENCE_DIR
    evidence_dir.mkdir(parents=True, exist_ok=True)
    for rec in report.recommendations:
        rid = recommendation_id(rec)
        path = evidence_dir / evidence_filename(rid)
        path.write_text(
            evidence_markdown(
                report, rec, revision_file=files.get(rid), no_migration=refusals.get(rid)
            ),
            encoding="utf-8",
        )
        written.evidence.append(path)
    return written
