"""The audit log: every change recorded with its actor, hash-chained, listable, streamable,
verifiable, and tamper-evident."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import update

from byteor_cloud.db.models.audit import AuditRecord
from byteor_cloud.db.session import Database

from .conftest import World


async def test_changes_are_recorded_in_order_with_actors(
    client: httpx.AsyncClient, world: World
) -> None:
    page = (
        await client.get(f"/api/v1/orgs/{world.org_id}/audit", headers=world.admin.headers)
    ).json()
    actions = [item["action"] for item in page["items"]]
    assert actions[::-1] == [
        "org.create",
        "signing_key.create",  # the org's first signing key comes with it
        "project.create",
        "project.create",
        "environment.create",
        "org.member.add",
        "project.member.add",
    ]
    seqs = [item["seq"] for item in page["items"]]
    assert seqs == sorted(seqs, reverse=True)
    first = page["items"][-1]
    assert first["actor"] == {
        "type": "user",
        "id": world.admin.user_id,
        "name": "admin@example.com",
    }
    assert first["resource_scope"]["org_id"] == world.org_id
    assert first["prev_hash"] == "0" * 64
    filtered = (
        await client.get(
            f"/api/v1/orgs/{world.org_id}/audit",
            params={"action": "project.create", "limit": 1},
            headers=world.admin.headers,
        )
    ).json()
    assert len(filtered["items"]) == 1
    assert filtered["next_cursor"]


async def test_reading_the_audit_log_needs_org_admin(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/v1/orgs/{world.org_id}/audit", headers=world.viewer.headers)
    assert response.status_code == 403


async def test_ndjson_export_streams_every_record_oldest_first(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/api/v1/orgs/{world.org_id}/audit",
        headers={**world.admin.headers, "Accept": "application/x-ndjson"},
    )
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[1]["prev_hash"] == lines[0]["hash"]


async def test_verify_detects_a_tampered_record(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    path = f"/api/v1/orgs/{world.org_id}/audit/verify"
    ok = (await client.get(path, headers=world.admin.headers)).json()
    assert ok == {"ok": True, "checked": 7, "first_bad_seq": None, "reason": None}
    async with database.transaction() as session:
        await session.execute(
            update(AuditRecord)
            .where(AuditRecord.org_id == world.org_id, AuditRecord.seq == 3)
            .values(details={"name": "forged"})
        )
    broken = (await client.get(path, headers=world.admin.headers)).json()
    assert broken["ok"] is False
    assert broken["first_bad_seq"] == 3
    assert broken["checked"] == 2


async def test_secrets_never_reach_audit_details(client: httpx.AsyncClient, world: World) -> None:
    created = await client.post(
        f"/api/v1/orgs/{world.org_id}/api-keys",
        json={"name": "k", "role": "viewer"},
        headers=world.admin.headers,
    )
    key = created.json()["key"]
    export = await client.get(
        f"/api/v1/orgs/{world.org_id}/audit",
        headers={**world.admin.headers, "Accept": "application/x-ndjson"},
    )
    assert key not in export.text
    assert key[len("bc_oak_") :] not in export.text


async def test_authz_explain(client: httpx.AsyncClient, world: World) -> None:
    ask = {
        "permission": "OperateEnvironment",
        "org_id": world.org_id,
        "project_id": world.project_id,
        "environment_id": world.environment_id,
    }
    mine = (
        await client.post("/api/v1/authz/explain", json=ask, headers=world.operator.headers)
    ).json()
    assert mine["allowed"] is True
    assert mine["bindings"] == [{"level": "project", "id": world.project_id, "role": "operator"}]
    about_viewer = (
        await client.post(
            "/api/v1/authz/explain",
            json={**ask, "user_id": world.viewer.user_id},
            headers=world.admin.headers,
        )
    ).json()
    assert about_viewer["allowed"] is False
    assert about_viewer["decision"] == "deny"
    assert about_viewer["reason"] == "viewer at org level does not grant OperateEnvironment"
    outsider = await client.post("/api/v1/authz/explain", json=ask, headers=world.outsider.headers)
    assert outsider.status_code == 404
