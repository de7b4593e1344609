"""The whole life of a key driven by the sweep (on a hand-moved clock), and the one-active-
key invariant under concurrent rotations and at the database itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from byteor_cloud.db.models.audit import AuditRecord
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.session import Database
from byteor_cloud.jobs.catalog import build_registry
from byteor_cloud.signing import keys, service
from byteor_cloud.signing.jobs import SigningKeySweep
from byteor_cloud.signing.rules import ACTIVATION_DELAY, RETIRING_GRACE
from helpers.databases import TEST_SECRET_KEY, TestDatabase

from .conftest import FakeClock, SigningWorld, run_sweep, stored_keys

BOX = keys.signing_box(TEST_SECRET_KEY)


async def _document_keys(database: Database, org_id: str) -> list[dict[str, str | None]]:
    async with database.transaction(readonly=True) as session:
        document = await service.signing_keys_document(session, org_id)
    return document["keys"]


async def _sign(database: Database, org_id: str, payload: bytes) -> tuple[str, str]:
    async with database.transaction(readonly=True) as session:
        return await service.sign(session, org_id=org_id, payload=payload, box=BOX)


def _statuses(rows: list[SigningKey]) -> dict[str, str]:
    return {row.id: row.status for row in rows}


async def test_a_key_lives_next_active_retiring_retired_on_the_sweep(
    client: httpx.AsyncClient,
    world: SigningWorld,
    database: Database,
    test_db: TestDatabase,
    app: FastAPI,
    clock: FakeClock,
) -> None:
    [old] = await stored_keys(database, world.org_id)
    old_kid, old_signature = await _sign(database, world.org_id, b"approval")
    new_kid = (await client.post(world.keys_path, json={}, headers=world.admin.headers)).json()[
        "kid"
    ]

    clock.advance(ACTIVATION_DELAY - timedelta(seconds=1))
    await run_sweep(test_db, database, app)
    assert _statuses(await stored_keys(database, world.org_id)) == {
        old.id: "active",
        new_kid: "next",
    }

    promoted_at = clock.advance(timedelta(seconds=1))
    await run_sweep(test_db, database, app)
    await run_sweep(test_db, database, app)  # a repeated run changes nothing more
    rows = await stored_keys(database, world.org_id)
    assert _statuses(rows) == {old.id: "retiring", new_kid: "active"}
    assert rows[0].not_after == promoted_at + RETIRING_GRACE
    assert (await _sign(database, world.org_id, b"bundle"))[0] == new_kid

    # The old key still verifies what it signed, until its not_after.
    document = await _document_keys(database, world.org_id)
    assert [(e["kid"], e["status"]) for e in document] == [
        (old_kid, "retiring"),
        (new_kid, "active"),
    ]
    assert service.verify(document, old_kid, b"approval", old_signature, now=clock.now)
    last_moment = clock.advance(RETIRING_GRACE)
    await run_sweep(test_db, database, app)
    assert _statuses(await stored_keys(database, world.org_id))[old_kid] == "retired"
    assert service.verify(document, old_kid, b"approval", old_signature, now=last_moment)
    assert not service.verify(
        document, old_kid, b"approval", old_signature, now=last_moment + timedelta(seconds=1)
    )
    # Retired: gone from the document, so nothing it signed verifies any more.
    document = await _document_keys(database, world.org_id)
    assert [e["kid"] for e in document] == [new_kid]
    assert not service.verify(document, old_kid, b"approval", old_signature, now=last_moment)

    async with database.transaction(readonly=True) as session:
        rows_ = await session.execute(
            select(AuditRecord.action, AuditRecord.actor_type, AuditRecord.resource_id)
            .where(AuditRecord.org_id == world.org_id, AuditRecord.action.like("signing_key.%"))
            .order_by(AuditRecord.seq)
        )
        trail = [tuple(row) for row in rows_]
    assert trail == [
        ("signing_key.create", "user", old_kid),
        ("signing_key.create", "user", new_kid),
        ("signing_key.activate", "system", new_kid),
        ("signing_key.retire", "system", old_kid),
    ]
    verified = await client.get(
        f"/api/v1/orgs/{world.org_id}/audit/verify", headers=world.admin.headers
    )
    assert verified.json()["ok"] is True


async def test_the_sweep_leaves_other_orgs_alone(
    client: httpx.AsyncClient,
    world: SigningWorld,
    database: Database,
    test_db: TestDatabase,
    app: FastAPI,
    clock: FakeClock,
) -> None:
    other = await client.post("/api/v1/orgs", json={"name": "Other"}, headers=world.admin.headers)
    other_keys = _statuses(await stored_keys(database, other.json()["id"]))
    await client.post(world.keys_path, json={}, headers=world.admin.headers)
    clock.advance(ACTIVATION_DELAY)
    await run_sweep(test_db, database, app)
    assert _statuses(await stored_keys(database, other.json()["id"])) == other_keys
    assert sorted(_statuses(await stored_keys(database, world.org_id)).values()) == [
        "active",
        "retiring",
    ]


async def test_concurrent_rotations_leave_exactly_one_active_key(
    client: httpx.AsyncClient, world: SigningWorld, database: Database
) -> None:
    async def rotate(activate_now: bool) -> httpx.Response:
        return await client.post(
            world.keys_path, json={"activate_now": activate_now}, headers=world.admin.headers
        )

    immediate = await asyncio.gather(*(rotate(True) for _ in range(6)))
    assert [r.status_code for r in immediate] == [201] * 6
    statuses = list(_statuses(await stored_keys(database, world.org_id)).values())
    assert statuses.count("active") == 1
    assert statuses.count("retiring") == 6

    scheduled = await asyncio.gather(*(rotate(False) for _ in range(6)))
    codes = sorted(r.status_code for r in scheduled)
    assert codes == [201] + [409] * 5
    statuses = list(_statuses(await stored_keys(database, world.org_id)).values())
    assert (statuses.count("active"), statuses.count("next")) == (1, 1)
    verified = await client.get(
        f"/api/v1/orgs/{world.org_id}/audit/verify", headers=world.admin.headers
    )
    assert verified.json()["ok"] is True


async def test_the_database_refuses_a_second_active_key(
    world: SigningWorld, database: Database
) -> None:
    pair = keys.generate(BOX)
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(
                SigningKey(
                    org_id=world.org_id,
                    alg="Ed25519",
                    public_key=pair.public_key,
                    private_key_encrypted=pair.private_key_encrypted,
                    status="active",
                )
            )
    statuses = _statuses(await stored_keys(database, world.org_id))
    assert list(statuses.values()) == ["active"]


def test_the_sweep_runs_every_30_seconds(test_db: TestDatabase) -> None:
    registry = build_registry(test_db.settings())
    [periodic] = [p for p in registry.periodic if p.job_type == SigningKeySweep.job_type]
    assert periodic.period == timedelta(seconds=30)
