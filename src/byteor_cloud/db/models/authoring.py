"""Authoring and versioning: drafts (mutable), versions (immutable), config bundles
(immutable, environment-scoped)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column, owned_by
from byteor_cloud.db.types import PortableJSON, UTCDateTime

# Columns of a version that never change once written (guarded by a database trigger,
# see migration 0004); only status and the rendered blob keys are filled in by ingest.
VERSION_IMMUTABLE_COLUMNS = (
    "org_id",
    "project_id",
    "number",
    "spec_hash",
    "target",
    "capabilities",
    "compile_report",
    "spec_kv",
    "source_draft_id",
    "source_revision",
    "created_by",
    "created_at",
    "description",
    "labels",
    "name",
)
BUNDLE_IMMUTABLE_COLUMNS = (
    "org_id",
    "project_id",
    "environment_id",
    "version_id",
    "runtime_config",
    "secret_refs",
    "bundle_hash",
    "created_by",
    "created_at",
)


class Draft(Base):
    __tablename__ = "drafts"
    __table_args__ = (
        CheckConstraint("target IN ('single_ring', 'lane_graph')", name="target"),
        Index("ix_drafts_project_id_id", "project_id", "id"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    target: Mapped[str] = mapped_column(String(16), nullable=False)
    plan: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(26))


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        UniqueConstraint("project_id", "spec_hash"),
        CheckConstraint("status IN ('ingesting', 'ready', 'failed')", name="status"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    spec_hash: Mapped[str] = mapped_column(String(71), nullable=False)
    target: Mapped[str] = mapped_column(String(16), nullable=False)
    capabilities: Mapped[list[str]] = mapped_column(PortableJSON(), nullable=False)
    compile_report: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    # The canonical bytes that were hashed (UTF-8 text); ingest copies them to the store.
    spec_kv: Mapped[str] = mapped_column(Text, nullable=False)
    source_draft_id: Mapped[str | None] = mapped_column(String(26))
    source_revision: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = created_at_column()
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    spec_kv_key: Mapped[str | None] = mapped_column(String(512))
    graph_svg_key: Mapped[str | None] = mapped_column(String(512))
    diff_key: Mapped[str | None] = mapped_column(String(512))
    ingest_error: Mapped[str | None] = mapped_column(Text)


class ConfigBundle(Base):
    __tablename__ = "config_bundles"
    __table_args__ = (Index("ix_config_bundles_environment_id_id", "environment_id", "id"),)

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    project_id: Mapped[str] = owned_by("projects")
    environment_id: Mapped[str] = owned_by("environments")
    version_id: Mapped[str] = owned_by("versions")
    runtime_config: Mapped[dict[str, str]] = mapped_column(PortableJSON(), nullable=False)
    secret_refs: Mapped[dict[str, str]] = mapped_column(PortableJSON(), nullable=False)
    bundle_hash: Mapped[str] = mapped_column(String(71), nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = created_at_column()
