"""Drafts compile into immutable, content-hashed versions: preview hash == version hash ==
sha256 of the served spec.kv; numbering is gap-free under concurrency."""

from __future__ import annotations

import asyncio
import copy
import hashlib

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from byteor_cloud.db.session import Database
from helpers.jobs import drain_jobs

from .conftest import WORKED_EXAMPLE, WORKED_HASH, Workspace


async def new_draft(
    client: httpx.AsyncClient,
    ws: Workspace,
    plan: dict,
    name: str = "d",
    target: str = "single_ring",
) -> dict:
    response = await client.post(
        f"{ws.project}/drafts",
        json={"name": name, "target": target, "plan": plan},
        headers=ws.admin.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_preview_version_and_served_bytes_agree(
    client: httpx.AsyncClient, app: FastAPI, workspace: Workspace
) -> None:
    ws = workspace
    draft = await new_draft(client, ws, WORKED_EXAMPLE)
    preview = (
        await client.post(
            f"{ws.project}/drafts/{draft['id']}/preview", json={}, headers=ws.admin.headers
        )
    ).json()
    assert preview["spec_hash"] == WORKED_HASH
    assert preview["capabilities"] == ["http_post:https://hooks.example.com/orders"]
    created = await client.post(
        f"{ws.project}/drafts/{draft['id']}/versions", json={}, headers=ws.admin.headers
    )
    assert created.status_code == 202
    version = created.json()
    assert (version["status"], version["number"], version["spec_hash"]) == (
        "ingesting",
        1,
        WORKED_HASH,
    )
    assert version["labels"] == {"team": "payments"}
    assert await drain_jobs(app) == 1
    ready = (
        await client.get(f"{ws.project}/versions/{version['id']}", headers=ws.admin.headers)
    ).json()
    assert ready["status"] == "ready"
    served = await client.get(
        f"{ws.project}/versions/{version['id']}/spec.kv", headers=ws.admin.headers
    )
    assert served.headers["content-type"].startswith("text/plain")
    assert "sha256:" + hashlib.sha256(served.content).hexdigest() == WORKED_HASH
    assert served.content.decode() == preview["spec_kv"]
    svg = await client.get(
        f"{ws.project}/versions/{version['id']}/graph.svg", headers=ws.admin.headers
    )
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.lstrip().startswith("<svg") or svg.text.startswith("<?xml")
    assert "only-eu" in svg.text
    again = await client.post(
        f"{ws.project}/drafts/{draft['id']}/versions", json={}, headers=ws.admin.headers
    )
    assert again.status_code == 200
    assert again.json()["id"] == version["id"]
    found = (
        await client.get(
            f"{ws.project}/versions", params={"spec_hash": WORKED_HASH}, headers=ws.admin.headers
        )
    ).json()["items"]
    assert [v["id"] for v in found] == [version["id"]]


async def test_an_invalid_plan_is_a_valid_draft_but_makes_no_version(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ws = workspace
    broken = {**WORKED_EXAMPLE, "stages": [{"id": "BAD ID", "op": "nope"}]}
    draft = await new_draft(client, ws, broken)
    preview = (
        await client.post(
            f"{ws.project}/drafts/{draft['id']}/preview", json={}, headers=ws.admin.headers
        )
    ).json()
    assert preview["spec_hash"] is None
    codes = {d["code"] for d in preview["diagnostics"]}
    assert {"invalid_id", "unknown_op"} <= codes
    refused = await client.post(
        f"{ws.project}/drafts/{draft['id']}/versions", json={}, headers=ws.admin.headers
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "compile_failed"
    assert {d["code"] for d in refused.json()["error"]["details"]["diagnostics"]} == codes
    assert (await client.get(f"{ws.project}/versions", headers=ws.admin.headers)).json()[
        "items"
    ] == []


async def test_stale_if_match_and_target_switching(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ws = workspace
    plan = copy.deepcopy(WORKED_EXAMPLE)
    plan["lane_graph"] = {
        "connections": [
            {"from": "in", "to": "only-eu"},
            {"from": "only-eu", "to": "redact"},
            {"from": "redact", "to": "notify"},
            {"from": "notify", "to": "out"},
        ]
    }
    draft = await new_draft(client, ws, plan)
    path = f"{ws.project}/drafts/{draft['id']}"

    async def put(target: str, etag: str) -> httpx.Response:
        return await client.put(
            path,
            json={"name": "d", "target": target, "plan": plan},
            headers={**ws.admin.headers, "If-Match": etag},
        )

    async def hash_of() -> str:
        report = await client.post(f"{path}/preview", json={}, headers=ws.admin.headers)
        return str(report.json()["spec_hash"])

    ring_hash = await hash_of()
    switched = await put("lane_graph", '"1"')
    assert switched.status_code == 200
    graph_hash = await hash_of()
    assert graph_hash != ring_hash
    assert (await put("single_ring", '"1"')).status_code == 412  # stale
    back = await put("single_ring", switched.headers["etag"])
    assert back.status_code == 200
    assert back.json()["plan"]["lane_graph"] == plan["lane_graph"]  # both blocks kept
    assert await hash_of() == ring_hash
    assert (
        await client.put(
            path,
            json={"name": "d", "target": "single_ring", "plan": plan},
            headers=ws.admin.headers,
        )
    ).status_code == 428


async def test_concurrent_identical_creations_give_one_version(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ws = workspace
    draft = await new_draft(client, ws, WORKED_EXAMPLE)
    url = f"{ws.project}/drafts/{draft['id']}/versions"
    responses = await asyncio.gather(
        *(client.post(url, json={}, headers=ws.admin.headers) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [202]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_concurrent_different_creations_get_gap_free_numbers(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ws = workspace
    drafts = []
    for n in range(20):
        plan = copy.deepcopy(WORKED_EXAMPLE)
        plan["stages"][0]["params"]["value"] = f"region-{n}"
        drafts.append(await new_draft(client, ws, plan, name=f"d{n}"))
    responses = await asyncio.gather(
        *(
            client.post(
                f"{ws.project}/drafts/{d['id']}/versions", json={}, headers=ws.admin.headers
            )
            for d in drafts
        )
    )
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["number"] for r in responses) == list(range(1, 21))
    assert len({r.json()["spec_hash"] for r in responses}) == 20


async def test_versions_are_immutable_in_the_database_too(
    client: httpx.AsyncClient, workspace: Workspace, database: Database
) -> None:
    ws = workspace
    draft = await new_draft(client, ws, WORKED_EXAMPLE)
    version = (
        await client.post(
            f"{ws.project}/drafts/{draft['id']}/versions", json={}, headers=ws.admin.headers
        )
    ).json()
    with pytest.raises(DBAPIError, match="immutable"):
        async with database.transaction() as session:
            await session.execute(
                text("UPDATE versions SET spec_hash = 'sha256:x' WHERE id = :id"),
                {"id": version["id"]},
            )
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    version_routes = [p for p in paths if "/versions/{version_id}" in p]
    assert all(set(paths[p]) == {"get"} for p in version_routes)


async def test_diff_between_versions(
    client: httpx.AsyncClient, app: FastAPI, workspace: Workspace
) -> None:
    ws = workspace
    first = await new_draft(client, ws, WORKED_EXAMPLE)
    changed = copy.deepcopy(WORKED_EXAMPLE)
    changed["stages"][2]["params"]["url"] = "https://hooks.example.com/v2"
    second = await new_draft(client, ws, changed, name="d2")
    v1 = (
        await client.post(
            f"{ws.project}/drafts/{first['id']}/versions", json={}, headers=ws.admin.headers
        )
    ).json()
    v2 = (
        await client.post(
            f"{ws.project}/drafts/{second['id']}/versions", json={}, headers=ws.admin.headers
        )
    ).json()
    await drain_jobs(app)
    result = (
        await client.get(
            f"{ws.project}/versions/{v2['id']}/diff",
            params={"against": v1["id"]},
            headers=ws.admin.headers,
        )
    ).json()
    assert result["stages"]["changed"] == ["notify"]
    assert result["capabilities"]["added"] == ["http_post:https://hooks.example.com/v2"]
    assert "+single_ring.stages.2.params.url=https://hooks.example.com/v2" in result["diff"]
