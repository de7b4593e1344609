"""Personal access tokens and org API keys: shown once, stored hashed, revocable, expiring;
a key acts with its role and counts as the person who created it."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from byteor_cloud.core.clock import utcnow
from byteor_cloud.db.models.audit import AuditRecord
from byteor_cloud.db.models.identity import PersonalAccessToken
from byteor_cloud.db.models.tenancy import ApiKey
from byteor_cloud.db.session import Database
from byteor_cloud.identity.tokens import digest

from .conftest import World


async def test_me_and_personal_tokens(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    me = (await client.get("/api/v1/me", headers=world.admin.headers)).json()
    assert me["email"] == "admin@example.com"
    assert me["credential_kind"] == "pat"
    created = await client.post(
        "/api/v1/me/tokens", json={"name": "ci"}, headers=world.admin.headers
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("bc_pat_")
    assert len(token) >= len("bc_pat_") + 43
    assert created.json()["token_prefix"] == token[:11]
    listed = (await client.get("/api/v1/me/tokens", headers=world.admin.headers)).json()["items"]
    assert all("token" not in item for item in listed)
    async with database.transaction(readonly=True) as session:
        stored = await session.get_one(PersonalAccessToken, created.json()["id"])
    assert stored.token_hash == digest(token)  # only the hash is kept
    fresh = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=fresh)).status_code == 200
    revoked = await client.delete(
        f"/api/v1/me/tokens/{created.json()['id']}", headers=world.admin.headers
    )
    assert revoked.status_code == 204
    after = await client.get("/api/v1/me", headers=fresh)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_credential"


async def test_an_expired_token_fails_on_its_next_request(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    assert (await client.get("/api/v1/me", headers=world.viewer.headers)).status_code == 200
    async with database.transaction() as session:
        await session.execute(
            update(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == world.viewer.user_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await client.get("/api/v1/me", headers=world.viewer.headers)).status_code == 401


async def test_garbage_and_missing_credentials_are_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/me")).status_code == 401
    for header in ("Bearer bc_pat_nope", "Bearer something", "Basic abc"):
        response = await client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert "bc_pat_nope" not in response.text


async def test_token_expiry_is_bounded(client: httpx.AsyncClient, world: World) -> None:
    past = await client.post(
        "/api/v1/me/tokens",
        json={"name": "x", "expires_at": (utcnow() - timedelta(days=1)).isoformat()},
        headers=world.admin.headers,
    )
    assert past.status_code == 422
    far = await client.post(
        "/api/v1/me/tokens",
        json={"name": "x", "expires_at": (utcnow() + timedelta(days=400)).isoformat()},
        headers=world.admin.headers,
    )
    assert far.status_code == 422


async def test_an_api_key_acts_with_its_role_and_counts_as_its_creator(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    base = f"/api/v1/orgs/{world.org_id}"
    created = await client.post(
        f"{base}/api-keys",
        json={"name": "deployer", "role": "operator", "project_id": world.project_id},
        headers=world.admin.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("bc_oak_")
    headers = {"Authorization": f"Bearer {key}"}
    projects = (await client.get(f"{base}/projects", headers=headers)).json()["items"]
    assert [p["id"] for p in projects] == [world.project_id]
    assert (
        await client.get(f"{base}/projects/{world.other_project_id}", headers=headers)
    ).status_code == 404
    denied = await client.post(
        f"{base}/projects/{world.project_id}/environments", json={"name": "x"}, headers=headers
    )
    assert denied.status_code == 403
    assert (
        await client.post("/api/v1/orgs", json={"name": "k"}, headers=headers)
    ).status_code == 403
    async with database.transaction(readonly=True) as session:
        record = await session.scalar(
            select(AuditRecord).where(AuditRecord.action == "authz.denied")
        )
        stored = await session.get_one(ApiKey, created.json()["id"])
    assert record is not None
    assert record.actor_type == "api_key"
    assert "admin@example.com" in (record.actor_name or "")
    assert stored.token_hash == digest(key)
    revoke = await client.delete(f"{base}/api-keys/{stored.id}", headers=world.admin.headers)
    assert revoke.status_code == 204
    assert (await client.get(f"{base}/projects", headers=headers)).status_code == 401


async def test_a_key_dies_with_its_creators_membership(
    client: httpx.AsyncClient, world: World
) -> None:
    base = f"/api/v1/orgs/{world.org_id}"
    promoted = await client.put(
        f"{base}/members/{world.viewer.user_id}",
        json={"role": "org_admin"},
        headers=world.admin.headers,
    )
    assert promoted.status_code == 200
    key = (
        await client.post(
            f"{base}/api-keys", json={"name": "k", "role": "viewer"}, headers=world.viewer.headers
        )
    ).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get(base, headers=headers)).status_code == 200
    await client.delete(f"{base}/members/{world.viewer.user_id}", headers=world.admin.headers)
    assert (await client.get(base, headers=headers)).status_code == 401


async def test_project_roles_cannot_be_org_admin(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        f"/api/v1/orgs/{world.org_id}/api-keys",
        json={"name": "k", "role": "org_admin", "project_id": world.project_id},
        headers=world.admin.headers,
    )
    assert response.status_code == 422


async def test_no_credential_can_mint_one_with_more_power_than_itself(
    client: httpx.AsyncClient, world: World
) -> None:
    base = f"/api/v1/orgs/{world.org_id}"
    operator_key = (
        await client.post(
            f"{base}/api-keys",
            json={"name": "op", "role": "operator", "project_id": world.project_id},
            headers=world.admin.headers,
        )
    ).json()["key"]
    as_key = {"Authorization": f"Bearer {operator_key}"}
    for role in ("org_admin", "operator", "viewer"):
        minted = await client.post(
            f"{base}/api-keys", json={"name": "x", "role": role}, headers=as_key
        )
        assert minted.status_code == 403
    assert (
        await client.post("/api/v1/me/tokens", json={"name": "x"}, headers=as_key)
    ).status_code == 403
    viewer_mint = await client.post(
        f"{base}/api-keys", json={"name": "x", "role": "viewer"}, headers=world.viewer.headers
    )
    assert viewer_mint.status_code == 403
    # A person's own token mints tokens of that same person only.
    token = (
        await client.post("/api/v1/me/tokens", json={"name": "t"}, headers=world.viewer.headers)
    ).json()["token"]
    me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert (me["user_id"], me["is_instance_admin"]) == (world.viewer.user_id, False)
