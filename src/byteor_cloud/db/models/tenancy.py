"""The tenancy tree (organizations → projects → environments), memberships and org API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column, owned_by
from byteor_cloud.db.models.identity import HASH_LENGTH
from byteor_cloud.db.types import PortableJSON, UTCDateTime

ROLES_SQL = "role IN ('org_admin', 'project_admin', 'operator', 'viewer')"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("posture IN ('dev', 'staging', 'prod')", name="posture"),
        Index("ix_environments_org_id", "org_id"),
    )

    id: Mapped[str] = id_column()
    # org_id is denormalised so every environment query can start from the org scope.
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    posture: Mapped[str] = mapped_column(String(16), nullable=False)
    policy: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False, default=dict)
    max_inflight_deployments: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, server_default="1"
    )
    artifact_retention_days: Mapped[int] = mapped_column(
        Integer, nullable=False, default=30, server_default="30"
    )
    heartbeat_interval_s: Mapped[int] = mapped_column(
        Integer, nullable=False, default=30, server_default="30"
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class OrgMembership(Base):
    __tablename__ = "org_memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        CheckConstraint(ROLES_SQL, name="role"),
        Index("ix_org_memberships_user_id", "user_id"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    user_id: Mapped[str] = owned_by("users")
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class ProjectMembership(Base):
    __tablename__ = "project_memberships"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id"),
        CheckConstraint(ROLES_SQL + " AND role <> 'org_admin'", name="role"),
        Index("ix_project_memberships_org_id_user_id", "org_id", "user_id"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    user_id: Mapped[str] = owned_by("users")
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class ApiKey(Base):
    """An organization API key: a role at org level (or at one project), for automation."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(ROLES_SQL, name="role"),
        Index("ix_api_keys_org_id_id", "org_id", "id"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    # The person the key acts for (audit actor, distinct-approver rule).
    created_by: Mapped[str] = owned_by("users")
    token_prefix: Mapped[str] = mapped_column(String(24), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), nullable=False, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
