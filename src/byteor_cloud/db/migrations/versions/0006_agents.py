"""Agents: enrollment tokens, agents and their runtime keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from byteor_cloud.db.types import PortableJSON, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _tenant(table: str) -> list[SchemaItem]:
    """The org/project/environment columns and their named, cascading foreign keys."""
    items: list[SchemaItem] = []
    for column, parent in (
        ("org_id", "organizations"),
        ("project_id", "projects"),
        ("environment_id", "environments"),
    ):
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


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.String(26), nullable=False),
        *_tenant("enrollment_tokens"),
        sa.Column("token_prefix", sa.String(24), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(26), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("used_by_agent_id", sa.String(26), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_enrollment_tokens_token_hash")),
    )
    op.create_index(
        "ix_enrollment_tokens_environment_id_id", "enrollment_tokens", ["environment_id", "id"]
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(26), nullable=False),
        *_tenant("agents"),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("labels", PortableJSON(), nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("enrolled_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("health", sa.String(16), nullable=True),
        sa.Column("running", PortableJSON(), nullable=True),
        sa.Column("tuning", PortableJSON(), nullable=True),
        sa.Column("metrics", PortableJSON(), nullable=True),
        sa.Column("desired_revision", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'online', 'offline')", name=op.f("ck_agents_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("environment_id", "name", name=op.f("uq_agents_environment_id_name")),
    )
    op.create_index("ix_agents_status_last_heartbeat_at", "agents", ["status", "last_heartbeat_at"])
    op.create_table(
        "agent_keys",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("agent_id", sa.String(26), nullable=False),
        sa.Column("token_prefix", sa.String(24), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", PortableJSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_keys_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agent_keys_token_hash")),
    )
    op.create_index(op.f("ix_agent_keys_agent_id"), "agent_keys", ["agent_id"])


def downgrade() -> None:
    op.drop_table("agent_keys")
    op.drop_table("agents")
    op.drop_table("enrollment_tokens")
