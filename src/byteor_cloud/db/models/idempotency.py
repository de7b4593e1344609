"""Stored first responses of POSTs sent with an Idempotency-Key, per credential, for 24 h."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column
from byteor_cloud.db.types import UTCDateTime


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("credential", "key"),
        Index("ix_idempotency_records_expires_at", "expires_at"),
    )

    id: Mapped[str] = id_column()
    # sha256 hex digest of the credential that sent the request (bearer token, else the
    # session cookie): a key is only ever replayed to its sender; no secret is stored.
    credential: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    # sha256 of method, path, query string and body: the same key with another request
    # is a 409.
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    # The response (kept headers + body), always encrypted with the master key
    # (idempotency/responses.py); NULL while the first request is in progress.
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    encrypted: Mapped[bool] = mapped_column(default=False, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
