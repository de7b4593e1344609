"""Org signing keys (PRODUCT.md §9): Ed25519 pairs whose private halves are encrypted at rest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from byteor_cloud.db.base import Base, created_at_column, id_column, owned_by
from byteor_cloud.db.types import UTCDateTime

KEY_STATUSES = ("next", "active", "retiring", "retired")
ALG = "Ed25519"
# base64url without padding of a raw 32-byte Ed25519 public key.
PUBLIC_KEY_CHARS = 43

_ACTIVE_SQL = "status = 'active'"
_NEXT_SQL = "status = 'next'"


class SigningKey(Base):
    """One org signing key; its id is the `kid` that signatures name.

    States and transitions are in `signing/rules.py`. The two partial unique indexes make
    "one active key per org" (and one pending rotation) a database fact, not just a habit
    of the code: a bug or a race that tried a second one fails instead of forking trust.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint(
            "status IN ('next', 'active', 'retiring', 'retired')",
            name="status",
        ),
        CheckConstraint("alg = 'Ed25519'", name="alg"),
        Index("ix_signing_keys_org_id_id", "org_id", "id"),
        # The sweep looks for `next` and `retiring` keys across orgs.
        Index("ix_signing_keys_status", "status"),
        Index(
            "uq_signing_keys_one_active",
            "org_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index(
            "uq_signing_keys_one_next",
            "org_id",
            unique=True,
            sqlite_where=text(_NEXT_SQL),
            postgresql_where=text(_NEXT_SQL),
        ),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = owned_by("organizations")
    alg: Mapped[str] = mapped_column(String(16), nullable=False, default=ALG)
    public_key: Mapped[str] = mapped_column(String(PUBLIC_KEY_CHARS), nullable=False)
    # The raw 32-byte private key sealed by SecretBox(master key, "signing-keys").
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    # For a `next` key: when the sweep makes it active; afterwards, when it became active.
    activate_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # For a `retiring` key: the end of its grace period (it verifies until then).
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def kid(self) -> str:
        return self.id
