"""Environment posture, policy and runtime settings with the per-posture defaults of
PRODUCT.md §8, and the consistency rules a policy must satisfy (pure).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Posture(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class ReplayPolicy(StrEnum):
    disabled = "disabled"
    dry_run_only = "dry_run_only"
    allowed = "allowed"


DEFAULT_APPROVAL_TTL_S = 86_400


class EnvironmentPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    deploy_requires_approval: bool
    replay: ReplayPolicy
    execute_replay_requires_approval: bool
    require_distinct_approver: bool
    approval_ttl_s: int = Field(DEFAULT_APPROVAL_TTL_S, ge=60, le=30 * 86_400)


POSTURE_DEFAULTS: dict[Posture, EnvironmentPolicy] = {
    Posture.dev: EnvironmentPolicy(
        deploy_requires_approval=False,
        replay=ReplayPolicy.allowed,
        execute_replay_requires_approval=False,
        require_distinct_approver=False,
    ),
    Posture.staging: EnvironmentPolicy(
        deploy_requires_approval=True,
        replay=ReplayPolicy.dry_run_only,
        execute_replay_requires_approval=False,
        require_distinct_approver=False,
    ),
    Posture.prod: EnvironmentPolicy(
        deploy_requires_approval=True,
        replay=ReplayPolicy.allowed,
        execute_replay_requires_approval=True,
        require_distinct_approver=True,
    ),
}


def default_policy(posture: Posture) -> EnvironmentPolicy:
    return POSTURE_DEFAULTS[posture]


class PolicyOverrides(BaseModel):
    """The policy fields a request may set; the rest come from the posture's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deploy_requires_approval: bool | None = None
    replay: ReplayPolicy | None = None
    execute_replay_requires_approval: bool | None = None
    require_distinct_approver: bool | None = None
    approval_ttl_s: int | None = Field(None, ge=60, le=30 * 86_400)


class PolicyConflict(ValueError):
    """An impossible combination; `field` names the policy field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def effective_policy(posture: Posture, overrides: PolicyOverrides | None) -> EnvironmentPolicy:
    """The posture's defaults with the given overrides applied, checked for consistency."""
    base = default_policy(posture).model_dump()
    if overrides is not None:
        base.update(overrides.model_dump(exclude_none=True))
    policy = EnvironmentPolicy.model_validate(base)
    check_policy(posture, policy)
    return policy


def check_policy(posture: Posture, policy: EnvironmentPolicy) -> None:
    """Refuse combinations that cannot mean anything, or that would ungovern production."""
    if posture is Posture.prod and not policy.deploy_requires_approval:
        # A production environment is never deployable without an approval.
        raise PolicyConflict("deploy_requires_approval", "prod environments require approval")
    needs_approval = policy.deploy_requires_approval or (
        policy.replay is ReplayPolicy.allowed and policy.execute_replay_requires_approval
    )
    if policy.require_distinct_approver and not needs_approval:
        raise PolicyConflict(
            "require_distinct_approver", "a distinct approver needs something to approve"
        )
    if policy.execute_replay_requires_approval and policy.replay is not ReplayPolicy.allowed:
        raise PolicyConflict(
            "execute_replay_requires_approval",
            f"replay is {policy.replay.value}: execute replays are not possible at all",
        )


class RuntimeSettings(BaseModel):
    """Per-environment runtime limits of PRODUCT.md §8."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_inflight_deployments: int = Field(1, ge=1, le=100)
    artifact_retention_days: int = Field(30, ge=1, le=3650)
    heartbeat_interval_s: int = Field(30, ge=5, le=3600)
