"""Admin job routes: instance administrators only; list with filters and cursor; retry."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.session import Database
from byteor_cloud.jobs import queue
from byteor_cloud.tenancy.jobs import PurgeBlobs
from helpers.identity import make_user


async def test_admin_job_routes_need_the_instance_administrator(
    client: httpx.AsyncClient, database: Database
) -> None:
    assert (await client.get("/api/v1/admin/jobs")).status_code == 401
    person = await make_user(database, "person@example.com")
    denied = await client.get("/api/v1/admin/jobs", headers=person.headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "instance_admin_required"


async def test_list_filter_and_retry_a_dead_letter(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await make_user(database, "root@example.com", admin=True)
    async with database.transaction() as session:
        ids = [await queue.enqueue(session, PurgeBlobs(prefix=f"orgs/{n}/")) for n in range(3)]
    async with database.transaction() as session:
        await session.execute(
            update(Job).where(Job.id == ids[0]).values(state="dead_letter", attempts=10)
        )
    listed = (
        await client.get("/api/v1/admin/jobs", params={"limit": 2}, headers=admin.headers)
    ).json()
    assert [item["id"] for item in listed["items"]] == [ids[2], ids[1]]
    rest = (
        await client.get(
            "/api/v1/admin/jobs", params={"cursor": listed["next_cursor"]}, headers=admin.headers
        )
    ).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]]
    dead = (
        await client.get(
            "/api/v1/admin/jobs", params={"state": "dead_letter"}, headers=admin.headers
        )
    ).json()
    assert [item["id"] for item in dead["items"]] == [ids[0]]
    retried = await client.post(f"/api/v1/admin/jobs/{ids[0]}/retry", headers=admin.headers)
    assert retried.status_code == 200
    assert (retried.json()["state"], retried.json()["attempts"]) == ("queued", 0)
    again = await client.post(f"/api/v1/admin/jobs/{ids[0]}/retry", headers=admin.headers)
    assert again.status_code == 409
    missing = await client.post("/api/v1/admin/jobs/nope/retry", headers=admin.headers)
    assert missing.status_code == 404


async def test_admin_job_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert "get" in paths["/api/v1/admin/jobs"]
    assert "post" in paths["/api/v1/admin/jobs/{job_id}/retry"]
    parameters = {p["name"] for p in paths["/api/v1/admin/jobs"]["get"]["parameters"]}
    assert {"limit", "cursor", "state", "type"} <= parameters
