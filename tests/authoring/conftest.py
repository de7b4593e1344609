"""Authoring fixtures: an org/project/environment owned by one operator-capable admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from byteor_cloud.db.session import Database
from helpers.identity import TestUser, make_user

WORKED_EXAMPLE: dict[str, Any] = {
    "plan": 2,
    "name": "orders-enrich",
    "description": "free text",
    "labels": {"team": "payments"},
    "target": "single_ring",
    "ingress": [{"id": "in", "adapter": "file", "config": {"path": "/var/lib/byteor/in.jsonl"}}],
    "egress": [{"id": "out", "adapter": "file", "config": {"path": "/var/lib/byteor/out.jsonl"}}],
    "stages": [
        {"id": "only-eu", "op": "filter", "params": {"field": "region", "op": "eq", "value": "eu"}},
        {
            "id": "redact",
            "op": "dataguard",
            "params": {"rules": ["card:mask=4:4:*", "email:hash"]},
            "depends_on": ["only-eu"],
        },
        {
            "id": "notify",
            "op": "http_post",
            "params": {"url": "https://hooks.example.com/orders"},
            "depends_on": ["redact"],
        },
    ],
    "single_ring": {
        "shards": 1,
        "ordering": "strict",
        "producer": "single",
        "scheduling": "dedicated",
    },
    "lane_graph": {
        "connections": [{"from": "in", "to": "only-eu", "lane": "events", "capacity": 1024}],
        "on_full": "block",
        "features": [],
    },
}
WORKED_HASH = "sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657"


@dataclass
class Workspace:
    admin: TestUser
    org_id: str
    project_id: str
    environment_id: str

    @property
    def project(self) -> str:
        return f"/api/v1/orgs/{self.org_id}/projects/{self.project_id}"

    @property
    def environment(self) -> str:
        return f"{self.project}/environments/{self.environment_id}"


async def make_workspace(client: httpx.AsyncClient, database: Database, email: str) -> Workspace:
    admin = await make_user(database, email)
    org = (await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=admin.headers)).json()
    project = (
        await client.post(
            f"/api/v1/orgs/{org['id']}/projects", json={"name": "p"}, headers=admin.headers
        )
    ).json()
    environment = (
        await client.post(
            f"/api/v1/orgs/{org['id']}/projects/{project['id']}/environments",
            json={"name": "dev", "posture": "dev"},
            headers=admin.headers,
        )
    ).json()
    return Workspace(admin, org["id"], project["id"], environment["id"])


@pytest.fixture
async def workspace(client: httpx.AsyncClient, database: Database) -> Workspace:
    return await make_workspace(client, database, "author@example.com")
