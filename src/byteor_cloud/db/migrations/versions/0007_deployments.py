"""Deployments, deployment targets, approvals; agents' epoch and assignment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from byteor_cloud.db.types import PortableJSON, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

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


def _parents(table: str, columns: tuple[tuple[str, str], ...]) -> list[SchemaItem]:
    """Columns referencing parents, with named, cascading foreign keys."""
    items: list[SchemaItem] = []
    for column, parent in columns:
        items.append(sa.Column(column, sa.String(26), nullable=False))
        items.append(
            sa.ForeignKeyConstraint(
                [column],
                [f"{parent}.id"],
                name=op.f(f"fk_{table}_{column}_{parent}"),
                ondelete="CASCADE",
            )
        )
    return items


_TENANT = (
    ("org_id", "organizations"),
    ("project_id", "projects"),
    ("environment_id", "environments"),
)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(26), nullable=False),
        *_parents(
            "deployments",
            (*_TENANT, ("version_id", "versions"), ("bundle_id", "config_bundles")),
        ),
        sa.Column("spec_hash", sa.String(71), nullable=False),
        sa.Column("bundle_hash", sa.String(71), nullable=False),
        sa.Column("capabilities", PortableJSON(), nullable=False),
        sa.Column("selector", PortableJSON(), nullable=False),
        sa.Column("strategy", PortableJSON(), nullable=False),
        sa.Column("plan_hash", sa.String(71), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(26), nullable=True),
        sa.Column("requested_via", sa.String(64), nullable=False),
        sa.Column("approval_id", sa.String(26), nullable=True),
        sa.Column("previous_deployment_id", sa.String(26), nullable=True),
        sa.Column("bundle_digest", sa.String(71), nullable=True),
        sa.Column("bundle_key", sa.String(512), nullable=True),
        sa.Column("rollback_digest", sa.String(71), nullable=True),
        sa.Column("rollback_key", sa.String(512), nullable=True),
        sa.Column("approval_credential", sa.Text(), nullable=True),
        sa.Column("rollback_credential", sa.Text(), nullable=True),
        sa.Column("current_batch", sa.Integer(), nullable=False),
        sa.Column("batch_done_at", UTCDateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(_in("status", DEPLOYMENT_STATUSES), name=op.f("ck_deployments_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index("ix_deployments_environment_id_id", "deployments", ["environment_id", "id"])
    op.create_index("ix_deployments_status", "deployments", ["status"])
    op.create_table(
        "deployment_targets",
        sa.Column("id", sa.String(26), nullable=False),
        *_parents(
            "deployment_targets",
            (
                ("org_id", "organizations"),
                ("environment_id", "environments"),
                ("deployment_id", "deployments"),
                ("agent_id", "agents"),
            ),
        ),
        sa.Column("agent_name", sa.String(100), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resume_state", sa.String(16), nullable=True),
        sa.Column("previous", PortableJSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tuning", PortableJSON(), nullable=True),
        sa.Column("assigned_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(_in("state", TARGET_STATES), name=op.f("ck_deployment_targets_state")),
        sa.CheckConstraint(
            "phase IN ('rollout', 'rollback')", name=op.f("ck_deployment_targets_phase")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_targets")),
        sa.UniqueConstraint(
            "deployment_id", "agent_id", name=op.f("uq_deployment_targets_deployment_id_agent_id")
        ),
    )
    op.create_index(
        "ix_deployment_targets_agent_id_state", "deployment_targets", ["agent_id", "state"]
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(26), nullable=False),
        *_parents("approvals", _TENANT),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(26), nullable=False),
        sa.Column("plan_hash", sa.String(71), nullable=True),
        sa.Column("spec_hash", sa.String(71), nullable=False),
        sa.Column("capabilities", PortableJSON(), nullable=False),
        sa.Column("environment_posture", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(26), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(26), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("credential", sa.Text(), nullable=True),
        sa.Column("credential_kid", sa.String(26), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(_in("status", APPROVAL_STATUSES), name=op.f("ck_approvals_status")),
        sa.CheckConstraint(
            "subject_type IN ('deployment', 'replay')", name=op.f("ck_approvals_subject_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index("ix_approvals_environment_id_id", "approvals", ["environment_id", "id"])
    op.create_index("ix_approvals_status_expires_at", "approvals", ["status", "expires_at"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("assignment", PortableJSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("assignment")
        batch.drop_column("epoch")
    op.drop_table("approvals")
    op.drop_table("deployment_targets")
    op.drop_table("deployments")
