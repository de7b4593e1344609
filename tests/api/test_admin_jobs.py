"""Admin job routes exist, are documented, and refuse everyone until identity (T1)."""

from __future__ import annotations

import httpx


async def test_admin_job_routes_answer_401_without_a_credential(
    client: httpx.AsyncClient,
) -> None:
    listing = await client.get("/api/v1/admin/jobs")
    assert listing.status_code == 401
    assert listing.json()["error"]["code"] == "unauthenticated"
    retry = await client.post("/api/v1/admin/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry")
    assert retry.status_code == 401


async def test_admin_job_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert "get" in paths["/api/v1/admin/jobs"]
    assert "post" in paths["/api/v1/admin/jobs/{job_id}/retry"]
    parameters = {p["name"] for p in paths["/api/v1/admin/jobs"]["get"]["parameters"]}
    assert {"limit", "cursor", "state", "type"} <= parameters
