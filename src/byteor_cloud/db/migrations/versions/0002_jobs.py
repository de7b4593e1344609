"""Job queue: jobs, and the periodic schedule (one row per periodic job).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from byteor_cloud.db.types import PortableJSON, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = sa.text("state IN ('queued', 'running', 'retrying')")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", PortableJSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", UTCDateTime(), nullable=False),
        sa.Column("lease_token", sa.String(26), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'retrying', 'dead_letter')",
            name=op.f("ck_jobs_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state_run_at", "jobs", ["state", "run_at"])
    op.create_index("ix_jobs_type_id", "jobs", ["type", "id"])
    op.create_index(
        "uq_jobs_dedupe_key_pending",
        "jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_table(
        "periodic_schedule",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_period_start", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_schedule")),
    )


def downgrade() -> None:
    op.drop_table("periodic_schedule")
    op.drop_index("uq_jobs_dedupe_key_pending", table_name="jobs")
    op.drop_index("ix_jobs_type_id", table_name="jobs")
    op.drop_index("ix_jobs_state_run_at", table_name="jobs")
    op.drop_table("jobs")
