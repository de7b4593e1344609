"""Agents: enrollment tokens, enrolled agents (one row each, updated by heartbeats) and
their runtime keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column, owned_by
from byteor_cloud.db.models.identity import HASH_LENGTH
from byteor_cloud.db.types import PortableJSON, UTCDateTime


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"
    __table_args__ = (Index("ix_enrollment_tokens_environment_id_id", "environment_id", "id"),)

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    environment_id: Mapped[str] = owned_by("environments")
    token_prefix: Mapped[str] = mapped_column(String(24), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), nullable=False, unique=True)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by_agent_id: Mapped[str | None] = mapped_column(String(26))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("environment_id", "name"),
        CheckConstraint("status IN ('pending', 'online', 'offline')", name="status"),
        Index("ix_agents_status_last_heartbeat_at", "status", "last_heartbeat_at"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    environment_id: Mapped[str] = owned_by("environments")
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    hostname: Mapped[str | None] = mapped_column(String(255))
    labels: Mapped[dict[str, str]] = mapped_column(PortableJSON(), nullable=False)
    agent_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    enrolled_at: Mapped[datetime] = created_at_column()
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    health: Mapped[str | None] = mapped_column(String(16))
    running: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())
    tuning: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())
    metrics: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())
    # Bumped whenever what the agent should run changes; part of the desired-state ETag.
    desired_revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # The newest assignment epoch (0: never assigned); reports with a lower one are stale.
    epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # The desired-state assignment document, kept on the row so that serving desired state
    # stays the one statement that authenticates the key.
    assignment: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())


class AgentKey(Base):
    """A runtime key; after a rotation the predecessor keeps working until `expires_at`."""

    __tablename__ = "agent_keys"

    id: Mapped[str] = id_column()
    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_prefix: Mapped[str] = mapped_column(String(24), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(PortableJSON(), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
