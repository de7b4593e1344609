"""Organizations, projects, environments, members: CRUD, RBAC resolution, 404 vs 403,
optimistic concurrency, audit in the same transaction."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from byteor_cloud.db.models.audit import AuditRecord, SecurityEvent
from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.session import Database
from helpers.identity import make_user

from .conftest import World


async def test_creator_is_org_admin_and_sees_only_own_orgs(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    mine = (await client.get("/api/v1/orgs", headers=world.admin.headers)).json()
    assert [org["id"] for org in mine["items"]] == [world.org_id]
    theirs = await make_user(database, "someone@example.com")
    await client.post("/api/v1/orgs", json={"name": "Other"}, headers=theirs.headers)
    assert [
        o["name"]
        for o in (await client.get("/api/v1/orgs", headers=theirs.headers)).json()["items"]
    ] == ["Other"]
    assert (await client.get("/api/v1/orgs", headers=world.outsider.headers)).json()["items"] == []


async def test_unknown_fields_cannot_set_server_owned_values(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/api/v1/orgs",
        json={"name": "X", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "created_by": "me"},
        headers=world.admin.headers,
    )
    assert response.status_code == 422
    assert "body.created_by" in {f["field"] for f in response.json()["error"]["details"]["fields"]}


async def test_non_members_get_404_and_a_security_log_entry(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    response = await client.get(f"/api/v1/orgs/{world.org_id}", headers=world.outsider.headers)
    assert response.status_code == 404
    missing = await client.get(
        "/api/v1/orgs/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=world.outsider.headers
    )
    assert missing.json()["error"] == response.json()["error"]  # existence is not leaked
    async with database.transaction(readonly=True) as session:
        events = (await session.scalars(select(SecurityEvent.kind))).all()
    assert "authz.not_member" in events


async def test_members_without_the_permission_get_403_and_it_is_audited(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    path = f"/api/v1/orgs/{world.org_id}/projects"
    assert (await client.get(path, headers=world.viewer.headers)).status_code == 200
    denied = await client.post(path, json={"name": "nope"}, headers=world.viewer.headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["details"] == {"permission": "ManageOrgMemberships"}
    async with database.transaction(readonly=True) as session:
        record = await session.scalar(
            select(AuditRecord).where(AuditRecord.action == "authz.denied")
        )
    assert record is not None
    assert (record.outcome, record.actor_id) == ("denied", world.viewer.user_id)


async def test_a_project_binding_shows_the_org_and_only_that_project(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.operator.headers
    org = await client.get(f"/api/v1/orgs/{world.org_id}", headers=headers)
    assert org.status_code == 200
    projects = (await client.get(f"/api/v1/orgs/{world.org_id}/projects", headers=headers)).json()
    assert [p["id"] for p in projects["items"]] == [world.project_id]
    other = await client.get(
        f"/api/v1/orgs/{world.org_id}/projects/{world.other_project_id}", headers=headers
    )
    assert other.status_code == 404
    members = await client.get(f"/api/v1/orgs/{world.org_id}/members", headers=headers)
    assert members.status_code == 200  # ViewOrg
    api_keys = await client.get(f"/api/v1/orgs/{world.org_id}/api-keys", headers=headers)
    assert api_keys.status_code == 403
    env = f"/api/v1/orgs/{world.org_id}/projects/{world.project_id}/environments"
    assert (await client.get(env, headers=headers)).status_code == 200
    created = await client.post(env, json={"name": "dev"}, headers=headers)
    assert created.status_code == 403  # operators operate, they do not manage


async def test_a_project_binding_replaces_the_org_role(
    client: httpx.AsyncClient, world: World
) -> None:
    # The org viewer becomes project_admin of one project: more rights there only.
    bound = await client.post(
        f"/api/v1/orgs/{world.org_id}/projects/{world.project_id}/members",
        json={"email": world.viewer.email, "role": "project_admin"},
        headers=world.admin.headers,
    )
    assert bound.status_code == 201
    base = f"/api/v1/orgs/{world.org_id}/projects"
    made = await client.post(
        f"{base}/{world.project_id}/environments",
        json={"name": "dev"},
        headers=world.viewer.headers,
    )
    assert made.status_code == 201
    elsewhere = await client.post(
        f"{base}/{world.other_project_id}/environments",
        json={"name": "dev"},
        headers=world.viewer.headers,
    )
    assert elsewhere.status_code == 403


async def test_put_needs_if_match_and_refuses_stale_revisions(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/api/v1/orgs/{world.org_id}"
    current = await client.get(path, headers=world.admin.headers)
    etag = current.headers["etag"]
    assert etag == '"1"'
    missing = await client.put(path, json={"name": "Acme 2"}, headers=world.admin.headers)
    assert missing.status_code == 428
    updated = await client.put(
        path, json={"name": "Acme 2"}, headers={**world.admin.headers, "If-Match": etag}
    )
    assert updated.status_code == 200
    assert updated.headers["etag"] == '"2"'
    assert updated.json()["revision"] == 2
    stale = await client.put(
        path, json={"name": "Acme 3"}, headers={**world.admin.headers, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert (await client.get(path, headers=world.admin.headers)).json()["name"] == "Acme 2"


async def test_environment_posture_defaults_and_policy_validation(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/api/v1/orgs/{world.org_id}/projects/{world.project_id}/environments"
    env = (await client.get(f"{path}/{world.environment_id}", headers=world.admin.headers)).json()
    assert env["posture"] == "prod"
    assert env["policy"]["require_distinct_approver"] is True
    assert env["policy"]["deploy_requires_approval"] is True
    bad = await client.post(path, json={"name": "x", "posture": "qa"}, headers=world.admin.headers)
    assert bad.status_code == 422
    duplicate = await client.post(path, json={"name": "prod"}, headers=world.admin.headers)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "duplicate_name"


async def test_member_management_and_last_admin_guard(
    client: httpx.AsyncClient, world: World
) -> None:
    base = f"/api/v1/orgs/{world.org_id}/members"
    listed = (await client.get(base, headers=world.admin.headers)).json()["items"]
    assert {m["email"]: m["role"] for m in listed} == {
        "admin@example.com": "org_admin",
        "viewer@example.com": "viewer",
    }
    again = await client.post(
        base, json={"email": world.viewer.email, "role": "viewer"}, headers=world.admin.headers
    )
    assert again.status_code == 409
    nobody = await client.post(
        base, json={"email": "ghost@example.com", "role": "viewer"}, headers=world.admin.headers
    )
    assert nobody.status_code == 404
    demote = await client.put(
        f"{base}/{world.admin.user_id}", json={"role": "viewer"}, headers=world.admin.headers
    )
    assert demote.status_code == 409
    assert demote.json()["error"]["code"] == "last_org_admin"
    promoted = await client.put(
        f"{base}/{world.viewer.user_id}", json={"role": "operator"}, headers=world.admin.headers
    )
    assert promoted.json()["role"] == "operator"
    removed = await client.delete(f"{base}/{world.viewer.user_id}", headers=world.admin.headers)
    assert removed.status_code == 204
    assert (
        await client.get(f"/api/v1/orgs/{world.org_id}", headers=world.viewer.headers)
    ).status_code == 404


async def test_deleting_a_project_keeps_its_audit_and_purges_blobs_by_job(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    path = f"/api/v1/orgs/{world.org_id}/projects/{world.project_id}"
    assert (await client.delete(path, headers=world.admin.headers)).status_code == 204
    assert (await client.get(path, headers=world.admin.headers)).status_code == 404
    env_path = f"{path}/environments/{world.environment_id}"
    assert (await client.get(env_path, headers=world.admin.headers)).status_code == 404
    async with database.transaction(readonly=True) as session:
        kept = (
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.project_id == world.project_id)
            )
        ).all()
        jobs = (await session.scalars(select(Job).where(Job.type == "purge_blobs"))).all()
    assert "project.create" in kept
    assert "project.delete" in kept
    assert [job.payload["prefix"] for job in jobs] == [
        f"orgs/{world.org_id}/projects/{world.project_id}/"
    ]
    verify = await client.get(
        f"/api/v1/orgs/{world.org_id}/audit/verify", headers=world.admin.headers
    )
    assert verify.json()["ok"] is True


async def test_deleting_an_org_removes_everything_below_it(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    path = f"/api/v1/orgs/{world.org_id}"
    assert (await client.delete(path, headers=world.viewer.headers)).status_code == 403
    assert (await client.delete(path, headers=world.admin.headers)).status_code == 204
    assert (await client.get(path, headers=world.admin.headers)).status_code == 404
    async with database.transaction(readonly=True) as session:
        left = (
            await session.scalars(select(AuditRecord).where(AuditRecord.org_id == world.org_id))
        ).all()
        events = (await session.scalars(select(SecurityEvent.kind))).all()
    assert left == []
    assert "org.delete" in events
