"""The audit log (hash-chained per org), its chain heads, and the instance security log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column, owned_by
from byteor_cloud.db.types import PortableJSON, UTCDateTime


class AuditRecord(Base):
    """One append-only record; `hash = sha256(prev_hash + canonical JSON of the record)`.

    Only organization deletion removes records (with the org); project and environment ids
    are plain columns so their records outlive them.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        UniqueConstraint("org_id", "seq"),
        Index("ix_audit_records_org_id_action_seq", "org_id", "action", "seq"),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(26))
    environment_id: Mapped[str | None] = mapped_column(String(26))
    resource_type: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditChainHead(Base):
    """The last record of an org's chain; locked to append, so sequence numbers never fork."""

    __tablename__ = "audit_chain_heads"

    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class SecurityEvent(Base):
    """Instance-level log of failures by non-members and unauthenticated callers."""

    __tablename__ = "security_events"

    id: Mapped[str] = id_column()
    at: Mapped[datetime] = created_at_column()
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_type: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(64))
