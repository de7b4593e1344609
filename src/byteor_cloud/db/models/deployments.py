"""Deployments, their per-agent targets, and approvals (PRODUCT.md §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column, owned_by
from byteor_cloud.db.types import PortableJSON, UTCDateTime

DEPLOYMENT_STATUSES = (
    "pending_approval",
    "approved",
    "building",
    "deploying",
    "active",
    "denied",
    "failed",
    "rolling_back",
    "rolled_back",
    "cancelled",
)
TARGET_STATES = (
    "pending",
    "downloading",
    "activating",
    "active",
    "failed",
    "unreachable",
    "superseded",
)
APPROVAL_STATUSES = ("pending", "approved", "denied", "expired", "revoked")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint(_in("status", DEPLOYMENT_STATUSES), name="status"),
        Index("ix_deployments_environment_id_id", "environment_id", "id"),
        Index("ix_deployments_status", "status"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    environment_id: Mapped[str] = owned_by("environments")
    version_id: Mapped[str] = owned_by("versions")
    bundle_id: Mapped[str] = owned_by("config_bundles")
    spec_hash: Mapped[str] = mapped_column(String(71), nullable=False)
    bundle_hash: Mapped[str] = mapped_column(String(71), nullable=False)
    capabilities: Mapped[list[str]] = mapped_column(PortableJSON(), nullable=False)
    selector: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    strategy: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    plan_hash: Mapped[str] = mapped_column(String(71), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    status_reason: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(26))
    requested_via: Mapped[str] = mapped_column(String(64), nullable=False)
    approval_id: Mapped[str | None] = mapped_column(String(26))
    # The deployment that was active in the environment when this one started deploying:
    # what a rollback restores.
    previous_deployment_id: Mapped[str | None] = mapped_column(String(26))
    bundle_digest: Mapped[str | None] = mapped_column(String(71))
    bundle_key: Mapped[str | None] = mapped_column(String(512))
    rollback_digest: Mapped[str | None] = mapped_column(String(71))
    rollback_key: Mapped[str | None] = mapped_column(String(512))
    approval_credential: Mapped[str | None] = mapped_column(Text)
    rollback_credential: Mapped[str | None] = mapped_column(Text)
    # Phased rollouts: the batch being deployed (0-based) and when it finished.
    current_batch: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    batch_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeploymentTarget(Base):
    """One agent of a deployment. `epoch` is set when the agent is assigned; a rollback
    reassigns the same row (`phase` becomes `rollback`, with a fresh epoch)."""

    __tablename__ = "deployment_targets"
    __table_args__ = (
        UniqueConstraint("deployment_id", "agent_id"),
        CheckConstraint(_in("state", TARGET_STATES), name="state"),
        CheckConstraint("phase IN ('rollout', 'rollback')", name="phase"),
        Index("ix_deployment_targets_agent_id_state", "agent_id", "state"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    environment_id: Mapped[str] = owned_by("environments")
    deployment_id: Mapped[str] = owned_by("deployments")
    agent_id: Mapped[str] = owned_by("agents")
    agent_name: Mapped[str] = mapped_column(String(100), nullable=False)
    batch: Mapped[int] = mapped_column(Integer, nullable=False)
    phase: Mapped[str] = mapped_column(String(10), nullable=False, default="rollout")
    epoch: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    # The state to return to when an `unreachable` agent is heard from again.
    resume_state: Mapped[str | None] = mapped_column(String(16))
    # What the agent ran before (for the plan and the operator's view).
    previous: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())
    error: Mapped[str | None] = mapped_column(Text)
    tuning: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(_in("status", APPROVAL_STATUSES), name="status"),
        CheckConstraint("subject_type IN ('deployment', 'replay')", name="subject_type"),
        Index("ix_approvals_environment_id_id", "environment_id", "id"),
        Index("ix_approvals_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    environment_id: Mapped[str] = owned_by("environments")
    subject_type: Mapped[str] = mapped_column(String(16), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(26), nullable=False)
    plan_hash: Mapped[str | None] = mapped_column(String(71))
    spec_hash: Mapped[str] = mapped_column(String(71), nullable=False)
    capabilities: Mapped[list[str]] = mapped_column(PortableJSON(), nullable=False)
    environment_posture: Mapped[str] = mapped_column(String(16), nullable=False)
    requested_by: Mapped[str | None] = mapped_column(String(26))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    decided_by: Mapped[str | None] = mapped_column(String(26))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    # Pending: when the request lapses (7 days). Approved: when the credential expires.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    credential: Mapped[str | None] = mapped_column(Text)
    credential_kid: Mapped[str | None] = mapped_column(String(26))
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
