"""Environment posture and policy with the per-posture defaults of PRODUCT.md §8 (pure).

V1 extends this with validation of impossible combinations and the runtime fields.
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
        execute_replay_requires_approval=True,
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
