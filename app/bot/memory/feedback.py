"""Reviewer feedback: a deterministic classifier, and the bounded confidence adjustment it feeds.

**Classifying** (used when no LLM is configured, and as its fallback). A merge accepts and a
close without merge rejects. An approving review accepts; a review requesting changes rejects,
unless its text names a concrete worry (a *theme*) and no outright "no": then it is a concern,
which a different recommendation could answer. Any other text is read with keyword rules in
this precedence, strongest first: **reject** ("no", "don't merge", "not needed", "wontfix",
"-1") > **concern** (a theme: write load, locking, size, redundant index) > **question** ("?",
"why", "what about") > **accept** ("lgtm", "looks good", "ship it", "+1"); text with none of
these is a question without a verdict, which moves nothing. Negated phrases do not count: "not
write-heavy", "no locking issues", "locking is not a problem", "doesn't look good". Code
blocks, inline code, ``>`` quotes and HTML comments are ignored, so quoting the bot's own
evidence ("write overhead") raises no concern.

**Memory adjustment.** For each past feedback hit with cosine similarity *s* at or above the
floor *F* = 0.7:

    contribution = STEP × signal × repo × (s − F) ÷ (1 − F)

with STEP = 0.25; signal −1 reject, −0.6 concern, +0.5 accept, 0 question; repo 1 for the same
repository and 0.5 for others. The delta is the sum, clamped to [−0.25, +0.10]: a reviewer's
"no" weighs more than a "yes", and memory alone can move a recommendation across the 0.80 bar
down far more easily than up. Hits below the floor count for nothing: with
all-MiniLM-L6-v2, descriptors of recommendations on unrelated tables still score 0.60–0.70,
while a similar recommendation on the same table scores 0.82–0.91.

A rejection in the same repository at similarity 0.9 and a merge elsewhere at 0.8:

>>> hits = [
...     MemoryHit(0.9, "reject", True, "public.events", "create_index", "write-heavy table"),
...     MemoryHit(0.8, "accept", False, "public.orders", "create_index", "merged"),
...     MemoryHit(0.5, "accept", True, "public.users", "create_index", "lgtm"),
... ]
>>> adjustment = memory_adjustment(hits)
>>> adjustment.delta  # 0.25 × (−1 × 1 × 0.2/0.3 + 0.5 × 0.5 × 0.1/0.3) = −0.1667 + 0.0208
-0.1458
>>> [c.hit.table for c in adjustment.cited]  # strongest first; the 0.5 hit is below the floor
['public.events', 'public.orders']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from app.bot.comment import command_lines
from app.engine import markdown as md
from app.engine.proof.confidence import Confidence

__all__ = [
    "MAX_DELTA",
    "MIN_DELTA",
    "SIMILARITY_FLOOR",
    "THEME_LABELS",
    "Adjustment",
    "Cited",
    "Classification",
    "Classified",
    "MemoryHit",
    "apply_memory",
    "cite",
    "classify",
    "contribution",
    "memory_adjustment",
    "quote",
    "themes",
]

Classification = Literal["accept", "reject", "concern", "question"]

SIMILARITY_FLOOR = 0.7
STEP = 0.25
MIN_DELTA = -0.25
MAX_DELTA = 0.10
OTHER_REPOSITORY = 0.5
MAX_CITED = 3
MAX_REASON = 80
MAX_QUOTE = 80
SIGNALS: dict[Classification, float] = {
    "reject": -1.0,
    "concern": -0.6,
    "accept": 0.5,
    "question": 0.0,
}
THEME_LABELS: dict[str, str] = {
    "write_load": "write load",
    "locking": "locking",
    "size": "index size",
    "redundant": "redundant index",
}

_THEMES: dict[str, re.Pattern[str]] = {
    "write_load": re.compile(
        r"write[- ]?(?:heavy|intensive|load|amplification|overhead|throughput|rate|volume)"
        r"|too many (?:writes|inserts|updates)|heavy (?:writes|inserts|updates)"
        r"|(?:insert|update|write)s? (?:rate|volume)|(?:insert|update)[- ]heavy"
        r"|slow(?:er)? (?:writes|inserts|updates)|hot table|high churn"
    ),
    "locking": re.compile(
        r"\block(?:s|ing|ed)?\b|lock[_ ]timeout|\bblock(?:s|ing|ed)?\b|access exclusive"
        r"|downtime"
    ),
    "size": re.compile(
        r"\bdisk\b|\bsize\b|\bstorage\b|disk space|\bbloat(?:ed)?\b|too (?:big|large)"
        r"|huge index"
    ),
    "redundant": re.compile(
        r"\bredundant\b|\bduplicate[sd]?\b|already (?:covered|indexed)|existing index"
    ),
}
_REJECT = re.compile(
    r"^\s*no\b(?![ \t]+(?:problem|issue|concern|objection|worr|complaint|doubt"
    r"|blocker|comment|question))"
    r"|\bnope\b|\bnack\b|(?<![\w+-])-1\b|\bwon'?t ?fix\b|\breject(?:ed|ing)?\b"
    r"|\b(?:don'?t|do not|please don'?t|shouldn'?t|should not)[ \t]+"
    r"(?:merge|add|ship|want|need|do|create|drop|remove)\b"
    r"|\bnot (?:needed|necessary|wanted|useful|worth)\b|\bunnecessary\b|\bno need for\b"
)
_ACCEPT = re.compile(
    r"\blgtm\b|\blooks? (?:good|great|fine)\b|\bship ?it\b|(?<![\w+-])\+1\b|:\+1:|👍"
    r"|\bapprove[sd]?\b|\bnice (?:one|catch|find)\b"
)
_QUESTION = re.compile(
    r"\bwhy\b|\bwhat about\b|\bhow about\b|\bhave you considered\b|\bwonder(?:ing)?\b"
)
_NEGATORS = frozenset(
    "not no never without nor hardly barely zero isnt arent wasnt werent wont doesnt dont "
    "didnt cant cannot shouldnt wouldnt hasnt havent".split()
)
#: Words after a negator that make the worry real again: "can't afford the write load".
_TURNERS = frozenset("afford ignore accept handle tolerate risk sure".split())
_CLEARED = re.compile(
    r"\W*(?:\w+\W+){0,3}?(?:(?:is|are|was|seems?|looks?)\s+)?"
    r"(?:fine|negligible|ok|okay|acceptable|no (?:problem|issue|concern)s?"
    r"|not (?:an? )?(?:problem|issue|concern|worry|big deal)"
    r"|(?:is|are)n'?t (?:an? )?(?:problem|issue|concern|worry)|(?:does|do)n'?t matter)\b"
)
# (?<!\s): a conjunction is looked for once per run of blanks, not from each blank of it
# (which was quadratic: 37 s for 40 KB of blanks).
_CLAUSE = re.compile(r"[.,;:!?\n]+|(?<!\s)\s+(?:but|though|although|however)\s+")
_INLINE_CODE = re.compile(r"`+[^`]*`+")
_WORD = re.compile(r"[\w']+")
_SOURCES = {
    "review": "review",
    "review_comment": "review comment",
    "issue_comment": "comment",
    "pull_request": "pull request",
}


@dataclass(frozen=True, slots=True)
class Classified:
    """What a piece of feedback means for its recommendation, and a short reason why."""

    classification: Classification
    reason: str


def _prose(text: str) -> str:
    """Lower-cased text a reviewer wrote themselves: no code, quotes or HTML comments."""
    lines = "\n".join(command_lines(text))
    return _INLINE_CODE.sub(" ", lines).replace("’", "'").lower()


def _clauses(text: str) -> list[str]:
    return [part for part in _CLAUSE.split(text) if part.strip()]


def _negated_before(clause: str, start: int) -> bool:
    """A negator within four words before ``start``, not itself turned ("can't afford")."""
    words = [w.replace("'", "") for w in _WORD.findall(clause[:start])[-4:]]
    for at, word in enumerate(words):
        if word in _NEGATORS:
            return not _TURNERS.intersection(words[at + 1 :])
    return False


def _found(pattern: re.Pattern[str], prose: str, *, cleared: bool = False) -> bool:
    """A match of ``pattern`` in some clause that is not negated (nor cleared after it)."""
    for clause in _clauses(prose):
        for match in pattern.finditer(clause):
            if _negated_before(clause, match.start()):
                continue
            if cleared and _CLEARED.match(clause, match.end()):
                continue
            return True
    return False


def themes(text: str) -> set[str]:
    """The worries ``text`` raises (keys of THEME_LABELS), negated mentions left out.

    >>> sorted(themes("Table is write-heavy and the index would bloat."))
    ['size', 'write_load']
    >>> themes("Not write-heavy; locking is not a problem.")
    set()
    """
    prose = _prose(text)
    return {name for name, pattern in _THEMES.items() if _found(pattern, prose, cleared=True)}


def _labels(found: Iterable[str]) -> str:
    return ", ".join(THEME_LABELS[name] for name in sorted(found))


def _short(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def classify(
    source: str,
    *,
    review_state: str | None = None,
    merged: bool | None = None,
    text: str = "",
) -> Classified:
    """Classify one piece of feedback deterministically (rules in the module docstring).

    ``source`` is where it came from (``review``, ``review_comment``, ``issue_comment``,
    ``pull_request``) and only words the reason; ``merged`` is set for a closed pull request;
    ``review_state`` is GitHub's review state in either case.

    >>> classify("review", review_state="CHANGES_REQUESTED", text="This table is write-heavy")
    Classified(classification='concern', reason='changes requested: write load')
    """
    if merged is True:
        return Classified("accept", "merged")
    if merged is False:
        return Classified("reject", "closed without merging")
    state = (review_state or "").lower()
    prose = _prose(text)
    found = {name for name, pattern in _THEMES.items() if _found(pattern, prose, cleared=True)}
    about = f": {_labels(found)}" if found else ""
    if state == "approved":
        return Classified("accept", "review approved")
    if state == "changes_requested":
        kind: Classification = "concern" if found and not _found(_REJECT, prose) else "reject"
        return Classified(kind, _short(f"changes requested{about}"))
    where = _SOURCES.get(source, "comment")
    if _found(_REJECT, prose):
        return Classified("reject", _short(f"rejected in a {where}{about}"))
    if found:
        return Classified("concern", _short(f"concern in a {where}{about}"))
    if "?" in prose or _found(_QUESTION, prose):
        return Classified("question", f"question in a {where}")
    if _found(_ACCEPT, prose):
        return Classified("accept", f"approved in a {where}")
    return Classified("question", f"{where} without a clear verdict")


def quote(text: str, limit: int = MAX_QUOTE) -> str:
    """A short, single-line excerpt of the reviewer's own words, for citing in evidence.

    The first sentence that raises a theme if any, else the first sentence, as plain text:
    whoever shows it renders it inert (``markdown.text``).

    >>> quote("Thanks for this.\\n\\nBut the table is write-heavy, we insert 5k rows/s.")
    'But the table is write-heavy, we insert 5k rows/s.'
    """
    sentences = [
        " ".join(s.split())
        for line in command_lines(text)
        for s in re.split(r"(?<=[.!?])\s+", _INLINE_CODE.sub("…", line))
        if s.strip()
    ]
    chosen = next((s for s in sentences if themes(s)), sentences[0] if sentences else "")
    return _short(" ".join(chosen.split()), limit)


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One past feedback row near the recommendation being scored (the store maps rows here)."""

    similarity: float
    classification: Classification
    same_repository: bool
    table: str
    action: str
    quote: str
    reason: str = ""
    themes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Cited:
    """A hit that moved the confidence, with its signed contribution before clamping."""

    hit: MemoryHit
    contribution: float


@dataclass(frozen=True, slots=True)
class Adjustment:
    """The bounded change to confidence from reviewer memory, and the hits behind it."""

    delta: float = 0.0
    cited: tuple[Cited, ...] = field(default_factory=tuple)


def contribution(hit: MemoryHit, floor: float = SIMILARITY_FLOOR) -> float:
    """One hit's signed share of the delta (see the module docstring); 0 below the floor."""
    if not floor <= hit.similarity <= 1.0:
        return 0.0
    closeness = (hit.similarity - floor) / (1.0 - floor) if floor < 1.0 else 1.0
    repo = 1.0 if hit.same_repository else OTHER_REPOSITORY
    return STEP * SIGNALS[hit.classification] * repo * closeness


def memory_adjustment(hits: Sequence[MemoryHit], *, floor: float = SIMILARITY_FLOOR) -> Adjustment:
    """Sum the hits' contributions, clamp to [MIN_DELTA, MAX_DELTA], cite the strongest."""
    scored = [Cited(hit, c) for hit in hits if (c := contribution(hit, floor)) != 0.0]
    total = sum(c.contribution for c in scored)
    delta = round(max(MIN_DELTA, min(MAX_DELTA, total)), 4)
    strongest = sorted(scored, key=lambda c: (-abs(c.contribution), -c.hit.similarity))
    return Adjustment(delta, tuple(strongest[:MAX_CITED]))


def apply_memory(confidence: Confidence, adjustment: Adjustment) -> Confidence:
    """``confidence`` with a ``reviewer_memory`` part; the score stays in [0, 1].

    The part is what was actually applied (clamped at the ends), so the breakdown still sums
    to the score. Memory may lower any score but raises only one that already clears the
    bar: praise for similar changes never makes an unmeasured recommendation eligible.

    >>> low = Confidence(0.7, {"finding": 0.5, "stats_freshness": 0.2})
    >>> apply_memory(low, Adjustment(0.1)).score
    0.7
    """
    delta = adjustment.delta
    if delta > 0 and confidence.score < confidence.threshold:
        delta = 0.0
    score = round(min(1.0, max(0.0, confidence.score + delta)), 4)
    applied = round(score - confidence.score, 4)
    breakdown = {**confidence.breakdown, "reviewer_memory": applied}
    return replace(confidence, score=score, breakdown=breakdown)


_VERBS: dict[Classification, str] = {
    "reject": "was rejected",
    "concern": "drew a concern",
    "accept": "was accepted",
    "question": "drew a question",
}
_NOUNS = {"create_index": "index", "drop_index": "index drop", "reindex": "reindex"}


def cite(adjustment: Adjustment) -> list[str]:
    """Markdown lines for the evidence: the delta, then one bullet per cited hit.

    >>> hit = MemoryHit(0.9, "reject", True, "public.events", "create_index",
    ...                 "write-heavy table", "closed without merging")
    >>> print("\\n".join(cite(memory_adjustment([hit]))))
    Reviewer memory moved the confidence by −0.17 (bounded to −0.25 … +0.10):
    - a similar index on `events` in this repository was rejected (closed without merging): "write-heavy table" (similarity 0.90)
    """  # noqa: E501
    if not adjustment.cited:
        return []
    lines = [
        f"Reviewer memory moved the confidence by {_signed(adjustment.delta)} "
        f"(bounded to {_signed(MIN_DELTA)} … {_signed(MAX_DELTA)}):"
    ]
    for cited in adjustment.cited:
        hit = cited.hit
        reason = hit.reason or _labels(hit.themes & THEME_LABELS.keys())
        why = f" ({md.text(_short(reason, 60))})" if reason else ""
        noun = _NOUNS.get(hit.action, "change")
        if hit.same_repository:
            table = md.code(hit.table.removeprefix("public."), 100)
            said = f': "{md.text(_short(hit.quote))}"' if hit.quote.strip() else ""
            what = f"a similar {noun} on {table} in this repository"
        else:
            # Another repository's tables and words may be private: only the verdict travels.
            said, what = "", f"a similar {noun} in another repository"
        lines.append(
            f"- {what} {_VERBS[hit.classification]}{why}{said} (similarity {hit.similarity:.2f})"
        )
    return lines


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")
