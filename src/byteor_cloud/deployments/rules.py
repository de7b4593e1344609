"""The deployment status machine, per-agent target states, strategies and the plan hash,
as data and pure functions (no database)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from byteor_cloud.core.canonical_json import canonical_json
from byteor_cloud.core.errors import InvalidState


class DeploymentStatus(StrEnum):
    pending_approval = "pending_approval"
    approved = "approved"
    building = "building"
    deploying = "deploying"
    active = "active"
    denied = "denied"
    failed = "failed"
    rolling_back = "rolling_back"
    rolled_back = "rolled_back"
    cancelled = "cancelled"


class DeploymentEvent(StrEnum):
    approve = "approve"
    deny = "deny"
    cancel = "cancel"
    build_started = "build_started"
    build_succeeded = "build_succeeded"
    build_failed = "build_failed"
    rollout_completed = "rollout_completed"
    rollout_failed = "rollout_failed"
    rollback = "rollback"
    rollback_completed = "rollback_completed"
    rollback_failed = "rollback_failed"


S, E = DeploymentStatus, DeploymentEvent

# PRODUCT.md §9, as a table. One addition, written down in docs/deployments.md: a rollback
# whose own targets fail (or whose bundle cannot be built) ends `failed` rather than
# staying `rolling_back` - in flight - forever; `failed` can be rolled back again.
DEPLOYMENT_TRANSITIONS: dict[tuple[DeploymentStatus, DeploymentEvent], DeploymentStatus] = {
    (S.pending_approval, E.approve): S.approved,
    (S.pending_approval, E.deny): S.denied,
    (S.pending_approval, E.cancel): S.cancelled,
    (S.approved, E.cancel): S.cancelled,
    (S.building, E.cancel): S.cancelled,
    (S.approved, E.build_started): S.building,
    (S.building, E.build_succeeded): S.deploying,
    (S.building, E.build_failed): S.failed,
    (S.deploying, E.rollout_completed): S.active,
    (S.deploying, E.rollout_failed): S.failed,
    (S.active, E.rollback): S.rolling_back,
    (S.failed, E.rollback): S.rolling_back,
    (S.rolling_back, E.rollback_completed): S.rolled_back,
    (S.rolling_back, E.rollback_failed): S.failed,
}

IN_FLIGHT = frozenset({S.approved, S.building, S.deploying, S.rolling_back})
# Statuses in which the deployment's bundle is (or may be) on agents.
ON_AGENTS = frozenset({S.deploying, S.active, S.failed, S.rolling_back, S.rolled_back})
FINAL = frozenset({S.denied, S.rolled_back, S.cancelled})
# Statuses that end a run of work (`finished_at` is set on entering them).
FINISHED = FINAL | {S.active, S.failed}


def next_status(status: DeploymentStatus, event: DeploymentEvent) -> DeploymentStatus:
    """The status after `event`, or InvalidState (409) when the transition is not allowed."""
    after = DEPLOYMENT_TRANSITIONS.get((status, event))
    if after is None:
        raise InvalidState(
            f"a {status.value} deployment cannot {event.value.replace('_', ' ')}",
            code="invalid_state",
            details={"status": status.value, "event": event.value},
        )
    return after


# --- targets ---------------------------------------------------------------------------


class TargetState(StrEnum):
    pending = "pending"
    downloading = "downloading"
    activating = "activating"
    active = "active"
    failed = "failed"
    unreachable = "unreachable"
    superseded = "superseded"


T = TargetState

# What an agent may report, from each state it can be in. Reports may skip states
# (pending -> active) and repeat the current one; they never go back.
REPORTABLE = frozenset({T.downloading, T.activating, T.active, T.failed})
_ORDER = {T.pending: 0, T.downloading: 1, T.activating: 2, T.active: 3, T.failed: 3}
TARGET_FINAL = frozenset({T.active, T.failed, T.superseded})
# Targets the agent is still working on: these become `unreachable` when it goes silent.
TARGET_IN_FLIGHT = frozenset({T.pending, T.downloading, T.activating})


class ReportOutcome(StrEnum):
    changed = "changed"
    repeated = "repeated"


def apply_report(current: TargetState, reported: TargetState) -> ReportOutcome:
    """Whether a report moves the target (`changed`) or repeats its state (`repeated`);
    InvalidState for a report that goes back or leaves a final state."""
    if reported not in REPORTABLE:
        raise InvalidState(f"agents cannot report {reported.value}", code="invalid_report")
    if reported is current:
        return ReportOutcome.repeated
    # `unreachable` has no place in the order: callers pass the state it resumes instead.
    if current in TARGET_FINAL or current not in _ORDER or _ORDER[reported] <= _ORDER[current]:
        raise InvalidState(
            f"a target that is {current.value} cannot become {reported.value}",
            code="invalid_transition",
            details={"state": current.value, "reported": reported.value},
        )
    return ReportOutcome.changed


# --- strategies ------------------------------------------------------------------------

MAX_BATCHES = 20
MAX_BAKE_S = 7 * 86_400


class AllAtOnce(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["all_at_once"]


class Phased(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["phased"]
    # Strict: `true` is not a percentage.
    batches: list[Annotated[int, Field(strict=True, ge=1, le=100)]] = Field(
        min_length=1, max_length=MAX_BATCHES
    )
    bake_s: int = Field(60, ge=0, le=MAX_BAKE_S)
    max_failures: int = Field(0, ge=0, le=100_000)
    auto_rollback: bool = True

    @model_validator(mode="after")
    def _cumulative(self) -> Phased:
        if any(b <= a for a, b in zip(self.batches, self.batches[1:], strict=False)):
            raise ValueError("batches are cumulative percentages: strictly increasing")
        if self.batches[-1] != 100:
            raise ValueError("the last batch must be 100 (every target)")
        return self


Strategy = Annotated[AllAtOnce | Phased, Field(discriminator="type")]

LabelText = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MAX_SELECTED_IDS = 1000


class TargetSelector(BaseModel):
    """Exactly one of `all`, `agent_ids`, `labels`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: Literal[True] | None = None
    agent_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=26)]] | None = Field(
        None, min_length=1, max_length=MAX_SELECTED_IDS
    )
    labels: dict[LabelText, LabelText] | None = Field(None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSelector:
        given = [name for name in ("all", "agent_ids", "labels") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of all, agent_ids, labels")
        if self.agent_ids is not None and len(set(self.agent_ids)) != len(self.agent_ids):
            raise ValueError("agent_ids must not repeat")
        return self

    def normalised(self) -> dict[str, Any]:
        if self.all:
            return {"all": True}
        if self.agent_ids is not None:
            return {"agent_ids": sorted(self.agent_ids)}
        return {"labels": dict(sorted((self.labels or {}).items()))}


def strategy_document(strategy: AllAtOnce | Phased) -> dict[str, Any]:
    """The strategy with its defaults filled in: what is stored and hashed."""
    return strategy.model_dump(mode="json")


def plan_hash(
    *, spec_hash: str, bundle_hash: str, selector: dict[str, Any], strategy: dict[str, Any]
) -> str:
    """`sha256:` of the canonical JSON of the intent (PRODUCT.md §9): not of the resolved
    agents, so an agent enrolling later does not void an approval."""
    intent = {
        "bundle_hash": bundle_hash,
        "spec_hash": spec_hash,
        "strategy": strategy,
        "targets": selector,
    }
    return "sha256:" + hashlib.sha256(canonical_json(intent)).hexdigest()


def batch_ends(total: int, batches: Sequence[int]) -> list[int]:
    """Cumulative target counts per batch (ceil of the percentage, so every non-empty
    batch has at least one agent); batches that would add nobody are dropped."""
    ends: list[int] = []
    for percent in batches:
        end = min(total, math.ceil(total * percent / 100))
        if end > (ends[-1] if ends else 0):
            ends.append(end)
    return ends or [total]


def batch_of(index: int, ends: Sequence[int]) -> int:
    """The 0-based batch of the `index`-th target (targets sorted by agent id)."""
    for batch, end in enumerate(ends):
        if index < end:
            return batch
    return len(ends) - 1


# --- progression -----------------------------------------------------------------------


class Step(StrEnum):
    wait = "wait"
    fail = "fail"
    complete = "complete"
    batch_done = "batch_done"  # record when the current batch finished (bake starts)
    next_batch = "next_batch"


@dataclass(frozen=True)
class Progress:
    step: Step
    failures: int = 0


def evaluate_rollout(
    *,
    strategy: dict[str, Any],
    batches: Iterable[tuple[int, TargetState]],
    current_batch: int,
    batch_count: int,
    batch_done_at: datetime | None,
    now: datetime,
) -> Progress:
    """What a deploying rollout does next, from its targets' `(batch, state)` pairs.

    Failures beyond the budget (`max_failures`; 0 for all-at-once) fail it. The current
    batch is done when each of its targets (and earlier ones) is final; the next batch
    starts when `bake_s` has passed since; after the last batch the rollout is complete.
    """
    pairs = list(batches)
    failures = sum(1 for _, state in pairs if state is T.failed)
    budget = int(strategy.get("max_failures", 0)) if strategy.get("type") == "phased" else 0
    if failures > budget:
        return Progress(Step.fail, failures)
    started = [state for batch, state in pairs if batch <= current_batch]
    if any(state not in TARGET_FINAL for state in started):
        return Progress(Step.wait, failures)
    if current_batch >= batch_count - 1:
        return Progress(Step.complete, failures)
    if batch_done_at is None:
        return Progress(Step.batch_done, failures)
    bake = timedelta(seconds=int(strategy.get("bake_s", 0)))
    if now - batch_done_at >= bake:
        return Progress(Step.next_batch, failures)
    return Progress(Step.wait, failures)


def evaluate_rollback(states: Iterable[TargetState]) -> Step:
    """A rollback completes when every reassigned target is active (or was taken over by a
    newer deployment) and fails when one fails."""
    seen = list(states)
    if any(state is T.failed for state in seen):
        return Step.fail
    if all(state in (T.active, T.superseded) for state in seen):
        return Step.complete
    return Step.wait
