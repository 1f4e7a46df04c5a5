"""Repositories name targets; only the operator's settings hold DSNs and allow validation."""

from __future__ import annotations

import pytest

from app.bot.repo_config import RepoConfig
from app.engine.proof.method import Cause, Method
from app.flows.targets import TargetProblem, resolve_target
from app.settings import Settings, TargetSpec

DSN = "postgresql://audit:pw@db.internal/shop"


def targets(**specs: dict[str, object]) -> dict[str, TargetSpec]:
    return Settings(targets=specs).targets  # type: ignore[arg-type]


def test_a_single_target_needs_no_name_and_validation_defaults_to_estimates() -> None:
    resolved = resolve_target(RepoConfig(), targets(shop={"dsn": DSN}))

    assert (resolved.name, resolved.dsn, resolved.mode) == ("shop", DSN, "hypopg")
    assert not resolved.validation.enabled and not resolved.allow_build
    why = resolved.validation.unmeasured  # what the report says of every recommendation
    assert (why.method, why.cause) == (Method.estimate_only, Cause.not_configured)
    assert why.reason is not None and "target shop has no sandbox copy" in why.reason
    assert "DBARCH_TARGETS" in why.reason and "--validate-dsn" not in why.reason


def test_a_repository_that_chose_estimates_is_told_its_mode_measures_nothing() -> None:
    config = RepoConfig(target="shop", validation="hypopg")
    resolved = resolve_target(config, targets(shop={"dsn": DSN, "sandbox_dsn": DSN + "_copy"}))

    assert not resolved.validation.enabled
    assert resolved.validation.unmeasured.cause is Cause.mode
    assert "validation mode, hypopg, measures nothing" in str(resolved.validation.unmeasured.reason)


def test_auto_validation_prefers_the_sandbox_then_operator_consent() -> None:
    sandbox = resolve_target(
        RepoConfig(target="shop"), targets(shop={"dsn": DSN, "sandbox_dsn": DSN + "_copy"})
    )
    on_target = resolve_target(
        RepoConfig(target="shop"), targets(shop={"dsn": DSN, "allow_target_validation": True})
    )

    assert sandbox.mode == "sandbox" and sandbox.validation.sandbox_dsn == DSN + "_copy"
    assert on_target.mode == "target-transaction" and on_target.validation.on_target
    assert on_target.allow_build


def test_unknown_names_list_only_the_known_names() -> None:
    with pytest.raises(TargetProblem) as caught:
        resolve_target(RepoConfig(target="prod"), targets(shop={"dsn": DSN}))

    assert "`prod`" in caught.value.problem and "`shop`" in caught.value.what_to_do
    assert "pw" not in caught.value.what_to_do + caught.value.problem


def test_several_targets_need_a_name() -> None:
    with pytest.raises(TargetProblem, match="names no `target`"):
        resolve_target(RepoConfig(), targets(a={"dsn": DSN}, b={"dsn": DSN}))


@pytest.mark.parametrize(
    ("validation", "needs"), [("sandbox", "sandbox_dsn"), ("target-transaction", "allow_target")]
)
def test_a_repository_cannot_enable_what_the_operator_did_not(validation: str, needs: str) -> None:
    config = RepoConfig(target="shop", validation=validation)  # type: ignore[arg-type]
    with pytest.raises(TargetProblem) as caught:
        resolve_target(config, targets(shop={"dsn": DSN}))

    assert needs in caught.value.what_to_do
