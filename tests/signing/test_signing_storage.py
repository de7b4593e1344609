"""Private halves at rest: sealed with the master key, readable nowhere in the database."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.db.models import metadata
from byteor_cloud.db.session import Database
from byteor_cloud.signing import keys
from helpers.databases import TEST_SECRET_KEY

from .conftest import SigningWorld, stored_keys


def _forms(raw: bytes) -> list[bytes]:
    """The ways raw key bytes could show up if someone stored them carelessly."""
    return [
        raw,
        raw.hex().encode(),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
    ]


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    return str(value).encode()


async def test_the_private_half_is_sealed_with_the_master_key(
    world: SigningWorld, database: Database
) -> None:
    [row] = await stored_keys(database, world.org_id)
    private_raw = keys.signing_box(TEST_SECRET_KEY).decrypt(row.private_key_encrypted)
    assert len(private_raw) == 32
    derived = Ed25519PrivateKey.from_private_bytes(private_raw).public_key()
    public_raw = derived.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert keys.from_b64url(row.public_key) == public_raw
    for form in _forms(private_raw):
        assert form not in row.private_key_encrypted
        assert form.decode("latin-1") not in row.public_key
    for wrong in (
        keys.signing_box("some-other-master-key"),
        SecretBox(TEST_SECRET_KEY, "idempotency"),
    ):
        with pytest.raises(ValueError, match="master key"):
            wrong.decrypt(row.private_key_encrypted)


async def test_private_key_bytes_are_nowhere_readable_in_the_database(
    client: httpx.AsyncClient, world: SigningWorld, database: Database
) -> None:
    await client.post(world.keys_path, json={"activate_now": True}, headers=world.admin.headers)
    await client.post(world.keys_path, json={}, headers=world.admin.headers)
    box = keys.signing_box(TEST_SECRET_KEY)
    secrets = [
        form
        for row in await stored_keys(database, world.org_id)
        for form in _forms(box.decrypt(row.private_key_encrypted))
    ]
    assert len(secrets) == 3 * 4
    async with database.transaction(readonly=True) as session:
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                stored = b"\x00".join(_as_bytes(value) for value in row)
                assert not [s for s in secrets if s in stored], table.name
