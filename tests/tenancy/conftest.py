"""A small world for tenancy tests: an org with a project and an environment, and people
holding each role."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from byteor_cloud.db.session import Database
from helpers.identity import TestUser, make_user


@dataclass
class World:
    admin: TestUser  # org_admin (creator)
    viewer: TestUser  # org viewer
    operator: TestUser  # project-level operator only
    outsider: TestUser  # member of nothing
    org_id: str
    project_id: str
    environment_id: str
    other_project_id: str


@pytest.fixture
async def world(client: httpx.AsyncClient, database: Database) -> World:
    admin = await make_user(database, "admin@example.com")
    viewer = await make_user(database, "viewer@example.com")
    operator = await make_user(database, "operator@example.com")
    outsider = await make_user(database, "outsider@example.com")
    org = (await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=admin.headers)).json()
    org_path = f"/api/v1/orgs/{org['id']}"
    project = (
        await client.post(f"{org_path}/projects", json={"name": "payments"}, headers=admin.headers)
    ).json()
    other = (
        await client.post(f"{org_path}/projects", json={"name": "search"}, headers=admin.headers)
    ).json()
    environment = (
        await client.post(
            f"{org_path}/projects/{project['id']}/environments",
            json={"name": "prod", "posture": "prod"},
            headers=admin.headers,
        )
    ).json()
    added = await client.post(
        f"{org_path}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=admin.headers,
    )
    assert added.status_code == 201, added.text
    bound = await client.post(
        f"{org_path}/projects/{project['id']}/members",
        json={"email": operator.email, "role": "operator"},
        headers=admin.headers,
    )
    assert bound.status_code == 201, bound.text
    return World(
        admin, viewer, operator, outsider, org["id"], project["id"], environment["id"], other["id"]
    )
