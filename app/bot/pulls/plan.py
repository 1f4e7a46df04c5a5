"""Which recommendations get a pull request now: the bar, ignores, existing PRs, rate limits.

Pure bookkeeping over what GitHub already holds, so a repeated audit updates instead of
duplicating, a closed PR stays closed, and a repository never gets more PRs than it allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from app.bot.pulls.fixpr import BRANCH_PREFIX
from app.bot.repo_config import Ignore
from app.engine.model import Recommendation
from app.engine.proof.confidence import MIN_CONFIDENCE

__all__ = ["Candidate", "Decision", "ExistingPull", "Verdict", "plan_prs"]

Verdict = Literal["open", "update", "hold"]
HOUR = timedelta(minutes=60)


@dataclass(frozen=True, slots=True)
class ExistingPull:
    """A pull request DB Architect opened earlier (any state)."""

    number: int
    branch: str
    state: str  # "open" | "closed"
    merged: bool
    created_at: datetime
    #: From the body's metadata marker (``read_meta``), when present.
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A recommendation that could become a pull request."""

    rec_id: str
    fingerprint: str
    branch: str
    table: str
    confidence: float
    #: The assessment clears its threshold and ``confidence >= config.min_confidence``.
    eligible: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one candidate, and why (the reason is shown to people)."""

    candidate: Candidate
    verdict: Verdict
    reason: str
    existing: ExistingPull | None = None
    #: Nothing left to propose: the repository already decided (config ignore, a PR merged
    #: or closed unmerged). Such holds do not make the audit's check neutral.
    settled: bool = False


def _matching(candidate: Candidate, existing: Sequence[ExistingPull]) -> ExistingPull | None:
    """The PR for this candidate: an open one first, else merged, else the newest closed."""
    same = [
        pr
        for pr in existing
        if pr.branch == candidate.branch
        or (pr.fingerprint is not None and pr.fingerprint == candidate.fingerprint)
    ]
    if not same:
        return None
    return max(same, key=lambda pr: (pr.state == "open", pr.merged, pr.created_at))


def _ours(pr: ExistingPull) -> bool:
    return pr.branch.startswith(BRANCH_PREFIX) or pr.fingerprint is not None


def _ignored(
    candidate: Candidate, ignore: Ignore | None, recs: Mapping[str, Recommendation] | None
) -> str | None:
    if ignore is None:
        return None
    rec = (recs or {}).get(candidate.rec_id)
    if rec is not None:
        return ignore.matches(rec)
    action = candidate.rec_id.partition(":")[0]
    return ignore.matches_parts(table=candidate.table, rec_id=candidate.rec_id, kinds=(action,))


def _below_bar(candidate: Candidate, bar: float) -> str:
    if candidate.confidence < bar:
        return f"confidence {candidate.confidence:.2f} is below the {bar:.2f} bar"
    return f"confidence {candidate.confidence:.2f} is not eligible for a pull request"


def _rate_limited(
    open_now: int, last_hour: int, planned: int, concurrent: int, hourly: int
) -> str | None:
    """Why the limits hold a PR back; ``open_now`` and ``last_hour`` include the ``planned``
    ones of this audit (in a dry run they are written to the outbox, not opened)."""
    here = f", {planned} of them in this audit" if planned else ""
    if open_now >= concurrent:
        if concurrent == 0:
            return "rate-limited: pr_concurrent_limit is 0 (opening pull requests is off)"
        return f"rate-limited: pr_concurrent_limit {concurrent} reached ({open_now} open{here})"
    if last_hour >= hourly:
        if hourly == 0:
            return "rate-limited: pr_hourly_limit is 0 (opening pull requests is off)"
        return (
            f"rate-limited: pr_hourly_limit {hourly} reached ({last_hour} in the last hour{here})"
        )
    return None


def plan_prs(
    candidates: Sequence[Candidate],
    existing: Sequence[ExistingPull],
    *,
    now: datetime,
    concurrent_limit: int,
    hourly_limit: int,
    ignore: Ignore | None = None,
    recs: Mapping[str, Recommendation] | None = None,
    min_confidence: float = MIN_CONFIDENCE,
    ignored: Mapping[str, str] | None = None,
) -> list[Decision]:
    """One decision per candidate (the first of a repeated ``rec_id``), best first.

    In order, decisions people made first: ignored by the config → hold; ignored by a
    reviewer's ``@db-architect ignore`` (``ignored``: rec_id → reason, from
    ``recall.stored_ignores``) → hold, even with an open PR, which is left alone; a merged PR
    on the same branch (or fingerprint) → hold; one closed unmerged → hold (ignored until the
    recommendation changes); then below the bar → hold; an open PR → update, outside the
    limits; else open while both limits allow. Open PRs count DB Architect's open PRs plus
    those opened here; the hourly limit counts PRs created within 60 minutes of ``now`` plus
    those opened here. ``now`` and the
    PRs' ``created_at`` must both be timezone-aware.
    """
    ours = [pr for pr in existing if _ours(pr)]
    open_now = sum(pr.state == "open" for pr in ours)
    last_hour = sum(now - pr.created_at < HOUR for pr in ours)
    planned = 0
    decisions: list[Decision] = []
    seen: set[str] = set()
    for cand in sorted(candidates, key=lambda c: (-c.confidence, c.rec_id)):
        if cand.rec_id in seen:
            continue
        seen.add(cand.rec_id)
        pr = _matching(cand, ours)
        decision = _decide(cand, pr, ignore, recs, min_confidence, ignored or {})
        if decision is None:
            limited = _rate_limited(open_now, last_hour, planned, concurrent_limit, hourly_limit)
            if limited:
                decision = Decision(cand, "hold", limited, pr)
            else:
                decision = Decision(cand, "open", "clears the bar; within the limits", pr)
                open_now += 1
                last_hour += 1
                planned += 1
        decisions.append(decision)
    return decisions


def _decide(
    cand: Candidate,
    pr: ExistingPull | None,
    ignore: Ignore | None,
    recs: Mapping[str, Recommendation] | None,
    bar: float,
    ignored: Mapping[str, str],
) -> Decision | None:
    """Every verdict that does not depend on the limits; None means "open if allowed".

    Ignores come first: what people decided stays decided, whatever the confidence.
    """
    reason = _ignored(cand, ignore, recs) or ignored.get(cand.rec_id)
    if reason:
        return Decision(cand, "hold", reason, pr, settled=True)
    if pr is not None and pr.merged:
        return Decision(cand, "hold", f"already merged in #{pr.number}", pr, settled=True)
    if pr is not None and pr.state != "open":
        return Decision(
            cand,
            "hold",
            f"ignored: #{pr.number} was closed without merging; it comes back only if the "
            "recommendation changes",
            pr,
            settled=True,
        )
    if not cand.eligible or cand.confidence < bar:
        return Decision(cand, "hold", _below_bar(cand, bar), pr)
    if pr is None:
        return None
    return Decision(cand, "update", f"#{pr.number} is open: refresh it", pr)
