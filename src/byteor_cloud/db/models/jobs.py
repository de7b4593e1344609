"""The job queue's tables: jobs, and one row per periodic job recording its last period."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column
from byteor_cloud.db.types import PortableJSON, UTCDateTime

JOB_STATES = ("queued", "running", "succeeded", "retrying", "dead_letter")
PENDING_STATES = ("queued", "running", "retrying")

_PENDING_SQL = "state IN ('queued', 'running', 'retrying')"


class Job(Base):
    """One unit of asynchronous work; see `jobs/rules.py` for its state machine."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'retrying', 'dead_letter')",
            name="state",
        ),
        # Claim order: due jobs first, oldest due first.
        Index("ix_jobs_state_run_at", "state", "run_at"),
        # While a job with a dedupe key is pending, enqueueing the same key is a no-op.
        Index(
            "uq_jobs_dedupe_key_pending",
            "dedupe_key",
            unique=True,
            sqlite_where=text(_PENDING_SQL),
            postgresql_where=text(_PENDING_SQL),
        ),
        Index("ix_jobs_type_id", "type", "id"),
    )

    id: Mapped[str] = id_column()
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    lease_token: Mapped[str | None] = mapped_column(String(26))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)


class PeriodicSchedule(Base):
    """The last period each periodic job was enqueued for: one row per periodic job, so
    any number of workers enqueue each period exactly once."""

    __tablename__ = "periodic_schedule"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_period_start: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
