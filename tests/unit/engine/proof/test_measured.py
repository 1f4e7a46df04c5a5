"""How a recommendation was measured, derived from its evidence, and the words for it."""

from __future__ import annotations

import dataclasses

from app.engine.model import Query, Recommendation
from app.engine.proof.confidence import Assessment, Confidence
from app.engine.proof.evidence import Evidence, Failed, StatementEvidence, Timing
from app.engine.proof.measured import NOT_ASSESSED, NOTHING_TO_MEASURE, measurement, measurement_of
from app.engine.proof.method import Cause, Measurement, Method

CREATE = Recommendation(
    "create_index",
    "public.orders",
    ("customer_id",),
    "orders_customer_id_idx",
    "CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id)",
)
DROP = dataclasses.replace(
    CREATE, action="drop_index", ddl="DROP INDEX CONCURRENTLY x", rule="duplicate_index"
)
INVALID = dataclasses.replace(DROP, action="reindex", rule="invalid_index")
READ = Query("SELECT * FROM orders WHERE customer_id = $1", calls=10)
OTHER = Query("SELECT * FROM orders WHERE customer_id = $1 AND id > $2", calls=3)


def timed(query: Query) -> StatementEvidence:
    runs = (Timing("common", (5.0, 5.0, 5.0), 1, 0, 1.0),)
    fast = (Timing("common", (1.0, 1.0, 1.0), 1, 0, 1.0),)
    return StatementEvidence(query, False, before=runs, after=fast)


UNTIMED = StatementEvidence(OTHER, False, notes=("not measured: $2 feeds no known column",))


def test_where_the_index_was_built_is_the_method() -> None:
    sandbox = Evidence("sandbox", (timed(READ),))
    assert measurement(CREATE, sandbox) == Measurement(Method.sandbox, None, None, 1, 1)
    target = Evidence("target", (timed(READ), UNTIMED))
    got = measurement(CREATE, target)
    assert (got.method, got.statements, got.statements_measured) == (
        Method.rolled_back_build,
        2,
        1,
    )
    assert got.reason == "1 could not be timed; its notes say why"
    hidden = Evidence("target", (timed(READ),), method=Method.hidden_index)
    assert measurement(DROP, hidden).method is Method.hidden_index
    # A drop no statement reads through is measured: nothing could get slower.
    assert measurement(DROP, Evidence("sandbox")) == Measurement(Method.sandbox)


def test_skipped_or_untimed_validation_is_an_estimate_with_its_cause() -> None:
    budget = Evidence(
        "sandbox", skipped="not measured: the 600 s budget ran out", cause=Cause.budget
    )
    assert measurement(CREATE, budget) == Measurement(
        Method.estimate_only, Cause.budget, "the 600 s budget ran out"
    )
    error = Evidence("target", (timed(READ),), skipped="validation stopped: boom")
    got = measurement(CREATE, error)
    assert (got.method, got.cause, got.statements_measured) == (
        Method.estimate_only,
        Cause.failed,  # no cause recorded: an error
        1,
    )
    untimed = measurement(CREATE, Evidence("sandbox", (UNTIMED,)))
    assert (untimed.method, untimed.cause) == (Method.estimate_only, Cause.unmeasurable)
    assert untimed.reason == (
        "validation ran on the sandbox copy, but none of the 1 affected statements could be "
        "timed: $2 feeds no known column"
    )
    failed = StatementEvidence(READ, False, before=(Failed("common", "timeout"),))
    assert measurement(CREATE, Evidence("target", (failed,))).cause is Cause.unmeasurable


def test_without_evidence() -> None:
    why = Measurement(Method.estimate_only, Cause.not_configured, "no sandbox")
    assert measurement(CREATE, None, unmeasured=why) is why
    assert measurement(CREATE, None) is NOT_ASSESSED
    invalid = measurement(INVALID, None, unmeasured=why)
    assert (invalid.cause, invalid.reason) == (Cause.nothing_to_measure, NOTHING_TO_MEASURE)
    # Dropping an invalid index on the target is not done, and not needed: safe by construction.
    refused = Evidence("target", skipped="not measured: a drop", cause=Cause.not_allowed)
    invalid_drop = dataclasses.replace(DROP, rule="invalid_index")
    assert measurement(invalid_drop, refused).cause is Cause.nothing_to_measure
    assert measurement(invalid_drop, Evidence("sandbox")).method is Method.sandbox
    # An assessment built without a measurement derives one from its evidence.
    assert measurement_of(CREATE, None) is NOT_ASSESSED
    bare = measurement_of(CREATE, Assessment(Confidence(0.2)))
    assert (bare.cause, bare.reason) == (Cause.not_configured, "validation did not run for it")
    kept = Assessment(Confidence(0.2), measured=why)
    assert measurement_of(CREATE, kept) is why


def test_the_words_for_each_method() -> None:
    assert Measurement(Method.sandbox, None, None, 3, 3).summary("create_index") == (
        "measured on the sandbox copy, the index built in a transaction that was rolled back; "
        "3 of 3 affected statements timed"
    )
    assert Measurement(Method.rolled_back_build, None, None, 1, 1).summary("drop_index") == (
        "measured on the target, the index dropped in a transaction that was rolled back; "
        "1 of 1 affected statements timed"
    )
    assert Measurement(Method.hidden_index).summary("drop_index") == (
        "measured on the target with the index hidden from the planner (hypopg_hide_index: "
        "one session, no lock, nothing changed); no affected workload statement was found, "
        "so none was timed"
    )
    stopped = Measurement(Method.estimate_only, Cause.lock_wait, "lock wait", 4, 2)
    assert stopped.summary("create_index") == (
        "not measured (estimate only): lock wait; 2 of 4 affected statements were timed "
        "before it stopped, which the score does not count"
    )
    assert not stopped.measured and Measurement(Method.sandbox).measured
