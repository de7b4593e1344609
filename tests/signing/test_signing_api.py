"""Signing keys through the API: every org starts with one active key, rotation publishes
before it signs, retirement rules, RBAC, audit."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from byteor_cloud.db.models.audit import AuditRecord
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.db.session import Database
from byteor_cloud.signing import service
from byteor_cloud.signing.keys import signing_box
from helpers.databases import TEST_SECRET_KEY

from .conftest import FakeClock, SigningWorld, stored_keys

DOCUMENT_FIELDS = {"kid", "alg", "public_key", "status", "not_after"}


async def _document(database: Database, org_id: str) -> dict[str, list[dict[str, str | None]]]:
    async with database.transaction(readonly=True) as session:
        return await service.signing_keys_document(session, org_id)


async def _sign(database: Database, org_id: str, payload: bytes) -> tuple[str, str]:
    async with database.transaction(readonly=True) as session:
        return await service.sign(
            session, org_id=org_id, payload=payload, box=signing_box(TEST_SECRET_KEY)
        )


async def _actions(database: Database, org_id: str) -> list[tuple[str, str]]:
    async with database.transaction(readonly=True) as session:
        rows = await session.execute(
            select(AuditRecord.action, AuditRecord.actor_type)
            .where(AuditRecord.org_id == org_id, AuditRecord.action.like("signing_key.%"))
            .order_by(AuditRecord.seq)
        )
        return [(row.action, row.actor_type) for row in rows]


async def test_every_new_org_has_exactly_one_active_key_in_its_document(
    client: httpx.AsyncClient, world: SigningWorld, database: Database
) -> None:
    [key] = await stored_keys(database, world.org_id)
    assert key.status == "active"
    document = await _document(database, world.org_id)
    assert document == {
        "keys": [
            {
                "kid": key.id,
                "alg": "Ed25519",
                "public_key": key.public_key,
                "status": "active",
                "not_after": None,
            }
        ]
    }
    listed = await client.get(world.keys_path, headers=world.admin.headers)
    assert listed.status_code == 200
    [shown] = listed.json()["keys"]
    assert {k: shown[k] for k in DOCUMENT_FIELDS} == document["keys"][0]
    assert set(shown) == DOCUMENT_FIELDS | {"created_at", "activate_at", "retired_at"}
    assert "private" not in listed.text
    assert await _actions(database, world.org_id) == [("signing_key.create", "user")]


async def test_a_rotated_key_is_published_before_it_signs(
    client: httpx.AsyncClient, world: SigningWorld, database: Database, clock: FakeClock
) -> None:
    [old] = await stored_keys(database, world.org_id)
    rotated = await client.post(
        world.keys_path, json={"activate_now": False}, headers=world.admin.headers
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["status"] == "next"
    assert new["activate_at"] is not None
    published = [entry["kid"] for entry in (await _document(database, world.org_id))["keys"]]
    assert published == [old.id, new["kid"]]  # agents can learn it now …
    kid, signature = await _sign(database, world.org_id, b"manifest")
    assert kid == old.id  # … while the old key still signs
    document = await _document(database, world.org_id)
    assert service.verify(document["keys"], kid, b"manifest", signature)
    assert not service.verify(document["keys"], kid, b"manifest (tampered)", signature)
    assert not service.verify(document["keys"], new["kid"], b"manifest", signature)


async def test_rotation_waits_three_of_the_orgs_longest_heartbeat_intervals(
    client: httpx.AsyncClient, world: SigningWorld, database: Database, clock: FakeClock
) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Environment)
            .where(Environment.id == world.environment_id)
            .values(heartbeat_interval_s=120)
        )
    rotated = (await client.post(world.keys_path, json={}, headers=world.admin.headers)).json()
    [_, new] = await stored_keys(database, world.org_id)
    assert new.id == rotated["kid"]
    assert new.activate_at is not None
    assert new.activate_at - clock.now == timedelta(seconds=360)


async def test_activate_now_swaps_the_signing_key_in_one_step(
    client: httpx.AsyncClient, world: SigningWorld, database: Database, clock: FakeClock
) -> None:
    [old] = await stored_keys(database, world.org_id)
    rotated = await client.post(
        world.keys_path, json={"activate_now": True}, headers=world.admin.headers
    )
    assert rotated.status_code == 201
    assert rotated.json()["status"] == "active"
    statuses = {key.id: key.status for key in await stored_keys(database, world.org_id)}
    assert statuses == {old.id: "retiring", rotated.json()["kid"]: "active"}
    retiring = next(k for k in await stored_keys(database, world.org_id) if k.id == old.id)
    assert retiring.not_after == clock.now + timedelta(hours=24)
    assert (await _sign(database, world.org_id, b"x"))[0] == rotated.json()["kid"]
    assert await _actions(database, world.org_id) == [
        ("signing_key.create", "user"),
        ("signing_key.create", "user"),
        ("signing_key.activate", "user"),
    ]


async def test_one_rotation_at_a_time(client: httpx.AsyncClient, world: SigningWorld) -> None:
    first = await client.post(world.keys_path, json={}, headers=world.admin.headers)
    assert first.status_code == 201
    second = await client.post(world.keys_path, json={}, headers=world.admin.headers)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "rotation_pending"
    assert second.json()["error"]["details"]["kid"] == first.json()["kid"]


async def test_retiring_rules(
    client: httpx.AsyncClient, world: SigningWorld, database: Database
) -> None:
    [active] = await stored_keys(database, world.org_id)
    refused = await client.post(
        f"{world.keys_path}/{active.id}/retire", headers=world.admin.headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "active_key_required"
    # A pending rotation can be cancelled, which frees the way for another one.
    pending = (await client.post(world.keys_path, json={}, headers=world.admin.headers)).json()
    cancelled = await client.post(
        f"{world.keys_path}/{pending['kid']}/retire", headers=world.admin.headers
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "retired"
    assert cancelled.json()["retired_at"] is not None
    again = await client.post(
        f"{world.keys_path}/{pending['kid']}/retire", headers=world.admin.headers
    )
    assert again.status_code == 409
    listed = (await client.get(world.keys_path, headers=world.admin.headers)).json()
    assert [entry["kid"] for entry in listed["keys"]] == [active.id]
    unknown = await client.post(
        f"{world.keys_path}/01ARZ3NDEKTSV4RRFFQ69G5FAV/retire", headers=world.admin.headers
    )
    assert unknown.status_code == 404
    # An old key past its use can be retired before its grace period ends (a compromise).
    swapped = await client.post(
        world.keys_path, json={"activate_now": True}, headers=world.admin.headers
    )
    assert swapped.status_code == 201
    early = await client.post(f"{world.keys_path}/{active.id}/retire", headers=world.admin.headers)
    assert early.status_code == 200
    assert [k["kid"] for k in (await _document(database, world.org_id))["keys"]] == [
        swapped.json()["kid"]
    ]
    retirements = [a for a in await _actions(database, world.org_id) if a[0].endswith("retire")]
    assert retirements == [("signing_key.retire", "user")] * 2


async def test_a_key_of_another_org_is_not_found(
    client: httpx.AsyncClient, world: SigningWorld, database: Database
) -> None:
    [theirs] = await stored_keys(database, world.org_id)
    mine = (
        await client.post("/api/v1/orgs", json={"name": "Mine"}, headers=world.outsider.headers)
    ).json()
    response = await client.post(
        f"/api/v1/orgs/{mine['id']}/signing-keys/{theirs.id}/retire",
        headers=world.outsider.headers,
    )
    assert response.status_code == 404


async def test_viewers_read_admins_rotate_outsiders_see_nothing(
    client: httpx.AsyncClient, world: SigningWorld, database: Database
) -> None:
    [active] = await stored_keys(database, world.org_id)
    for person in (world.viewer, world.operator, world.admin):
        assert (await client.get(world.keys_path, headers=person.headers)).status_code == 200
    for person in (world.viewer, world.operator):
        rotate = await client.post(world.keys_path, json={}, headers=person.headers)
        assert rotate.status_code == 403
        assert rotate.json()["error"]["code"] == "permission_denied"
        retire = await client.post(f"{world.keys_path}/{active.id}/retire", headers=person.headers)
        assert retire.status_code == 403
    for method, path in (
        ("GET", world.keys_path),
        ("POST", world.keys_path),
        ("POST", f"{world.keys_path}/{active.id}/retire"),
    ):
        response = await client.request(
            method, path, json={} if method == "POST" else None, headers=world.outsider.headers
        )
        assert response.status_code == 404, (method, path)
    assert len(await stored_keys(database, world.org_id)) == 1


async def test_unknown_body_fields_are_refused(
    client: httpx.AsyncClient, world: SigningWorld
) -> None:
    response = await client.post(
        world.keys_path, json={"status": "active"}, headers=world.admin.headers
    )
    assert response.status_code == 422
