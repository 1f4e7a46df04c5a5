"""Resolve a repository's target name to the operator's DSN and the validation it allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.adapters.validate import Budget
from app.bot.repo_config import RepoConfig
from app.engine.advisor.budget import DEFAULT_BUDGET
from app.engine.model import Query
from app.engine.proof.method import Cause, Measurement, Method
from app.flows.audit_target import ValidationSpec
from app.settings import TargetSpec

__all__ = ["Resolved", "TargetProblem", "resolve_target"]


class TargetProblem(Exception):
    """The repository names a target, or a validation, the operator has not set up."""

    def __init__(self, problem: str, what_to_do: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.what_to_do = what_to_do


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where to audit and where to measure (the DSNs stay here: never logged, never shown)."""

    name: str
    dsn: str = field(repr=False)
    validation: ValidationSpec = field(repr=False)
    #: Real index builds inside rolled-back transactions may run on the target (what-if
    #: without HypoPG, and measurements), because the operator said so.
    allow_build: bool
    #: ``hypopg`` | ``sandbox`` | ``target-transaction``, as chosen.
    mode: str
    #: The repository's disk budget for new indexes (``RepoConfig.disk_budget``).
    disk_budget: str = DEFAULT_BUDGET
    #: Slow statements seen on the target earlier (the worker's minute looks).
    sightings: tuple[Query, ...] = field(default=(), repr=False)
    #: The audit's own looks at pg_stat_activity: this long at least (None: no looks).
    activity_min_ms: float | None = 1000.0


def resolve_target(
    config: RepoConfig,
    targets: Mapping[str, TargetSpec],
    *,
    budget: Budget | None = None,
    max_seconds: float = 600.0,
) -> Resolved:
    """The operator's target for ``config.target`` and the validation mode to use.

    Without a name in the config, a single configured target is used. ``validation`` unset
    means: the sandbox when the operator gave one, else rolled-back builds on the target when
    the operator allowed them, else estimates only (which never reach the PR bar).

    Raises:
        TargetProblem: unknown name, no targets at all, or a validation the operator did not
            allow; the message says what to change and where.
    """
    name = config.target
    if name is None:
        if len(targets) != 1:
            known = ", ".join(sorted(targets)) or "none configured"
            raise TargetProblem(
                "the repository config names no `target`",
                f"add `target: <name>` to .github/db-architect.yml (targets: {known})",
            )
        name = next(iter(targets))
    spec = targets.get(name)
    if spec is None:
        known = ", ".join(f"`{n}`" for n in sorted(targets)) or "none"
        raise TargetProblem(
            f"target `{name}` is not known to this DB Architect installation",
            f"ask its operator to add `{name}` to DBARCH_TARGETS (known targets: {known})",
        )
    mode = config.validation or _auto_mode(spec)
    budget = budget or Budget()
    if mode == "sandbox":
        if spec.sandbox_dsn is None:
            raise TargetProblem(
                f"validation `sandbox` was asked for, but target `{name}` has no sandbox",
                f"ask the operator to set `sandbox_dsn` for `{name}` in DBARCH_TARGETS, "
                "or remove `validation` from the config",
            )
        validation = ValidationSpec(
            sandbox_dsn=spec.sandbox_dsn.get_secret_value(), budget=budget, max_seconds=max_seconds
        )
    elif mode == "target-transaction":
        if not spec.allow_target_validation:
            raise TargetProblem(
                f"validation `target-transaction` was asked for, but the operator has not "
                f"allowed index builds on target `{name}`",
                f"ask the operator to set `allow_target_validation: true` for `{name}` in "
                "DBARCH_TARGETS, or use `validation: sandbox`",
            )
        validation = ValidationSpec(on_target=True, budget=budget, max_seconds=max_seconds)
    else:
        validation = ValidationSpec(
            budget=budget,
            max_seconds=max_seconds,
            unmeasured=_estimates_only(name, chosen=config.validation is not None),
        )
    return Resolved(
        name=name,
        dsn=spec.dsn.get_secret_value(),
        validation=validation,
        allow_build=spec.allow_target_validation,
        mode=mode,
        disk_budget=config.disk_budget,
    )


def _estimates_only(name: str, *, chosen: bool) -> Measurement:
    """Why nothing is measured in ``hypopg`` mode: the repository chose it, or nothing else
    was set up for the target."""
    if chosen:
        return Measurement(
            Method.estimate_only,
            Cause.mode,
            "the repository's validation mode, hypopg, measures nothing (planner estimates only)",
        )
    return Measurement(
        Method.estimate_only,
        Cause.not_configured,
        f"target {name} has no sandbox copy, and its operator has not allowed rolled-back "
        "builds on it (sandbox_dsn or allow_target_validation in DBARCH_TARGETS)",
    )


def _auto_mode(spec: TargetSpec) -> str:
    if spec.sandbox_dsn is not None:
        return "sandbox"
    if spec.allow_target_validation:
        return "target-transaction"
    return "hypopg"
