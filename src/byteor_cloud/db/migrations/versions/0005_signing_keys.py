"""Org signing keys (PRODUCT.md §9); every existing org gets an active key.

The backfill encrypts private keys with the master key, which `db.migrate.upgrade` hands
over through `config.attributes["master_key"]`. Without it the migration refuses to run
when there are orgs to backfill (a fresh database needs no key).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# The at-rest format is the platform's (core, not a service): rows written here must
# decrypt with whatever the running code reads them with.
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies (a migration must not change when the service does).
BOX_PURPOSE = "signing-keys"
ACTIVE = sa.text("status = 'active'")
NEXT = sa.text("status = 'next'")
BACKFILL_BATCH = 500


def upgrade() -> None:
    bind = op.get_bind()
    org_ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM organizations"))]
    master_key = context.config.attributes.get("master_key")
    if org_ids and not master_key:
        # Checked before any DDL, so a refused upgrade leaves the database at 0004.
        raise RuntimeError(
            f"migration 0005 creates a signing key for each of the {len(org_ids)} existing "
            "organizations and needs the master key to encrypt them: run "
            "`byteor-cloud db upgrade` with BYTEOR_CLOUD_SECRET_KEY set (or the embedded "
            "data dir holding it), or pass master_key= to byteor_cloud.db.migrate.upgrade"
        )
    _create_table()
    if org_ids:
        _backfill(org_ids, SecretBox(str(master_key), BOX_PURPOSE))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_signing_keys_one_next")
        batch_op.drop_index("uq_signing_keys_one_active")
        batch_op.drop_index("ix_signing_keys_status")
        batch_op.drop_index("ix_signing_keys_org_id_id")
    op.drop_table("signing_keys")


def _create_table() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("org_id", sa.String(length=26), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=43), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("activate_at", UTCDateTime(), nullable=True),
        sa.Column("not_after", UTCDateTime(), nullable=True),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('next', 'active', 'retiring', 'retired')",
            name=op.f("ck_signing_keys_status"),
        ),
        sa.CheckConstraint("alg = 'Ed25519'", name=op.f("ck_signing_keys_alg")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_signing_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index("ix_signing_keys_org_id_id", ["org_id", "id"], unique=False)
        batch_op.create_index("ix_signing_keys_status", ["status"], unique=False)
        batch_op.create_index(
            "uq_signing_keys_one_active",
            ["org_id"],
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        )
        batch_op.create_index(
            "uq_signing_keys_one_next",
            ["org_id"],
            unique=True,
            sqlite_where=NEXT,
            postgresql_where=NEXT,
        )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _active_key_row(org_id: str, box: SecretBox, now: datetime) -> dict[str, Any]:
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    private_raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return {
        "id": new_id(),
        "org_id": org_id,
        "alg": "Ed25519",
        "public_key": _b64url(public_raw),
        "private_key_encrypted": box.encrypt(private_raw),
        "status": "active",
        "created_at": now,
        "activate_at": now,
        "not_after": None,
        "retired_at": None,
    }


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BACKFILL_BATCH):
        yield items[start : start + BACKFILL_BATCH]


def _backfill(org_ids: list[str], box: SecretBox) -> None:
    # A lightweight table clause, not the model: the model may grow columns later.
    signing_keys = sa.table(
        "signing_keys",
        sa.column("id", sa.String()),
        sa.column("org_id", sa.String()),
        sa.column("alg", sa.String()),
        sa.column("public_key", sa.String()),
        sa.column("private_key_encrypted", sa.LargeBinary()),
        sa.column("status", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("activate_at", UTCDateTime()),
        sa.column("not_after", UTCDateTime()),
        sa.column("retired_at", UTCDateTime()),
    )
    now = datetime.now(UTC)
    for batch in _batches(org_ids):
        op.bulk_insert(signing_keys, [_active_key_row(org_id, box, now) for org_id in batch])
