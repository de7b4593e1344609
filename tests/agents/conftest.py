"""Agent fixtures: an environment, an operator, and helpers to mint tokens and enroll."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI, Request

from byteor_cloud.api.app import create_app
from byteor_cloud.api.v1.agent_runtime import limit_agents
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase
from helpers.identity import TestUser, make_user


@dataclass
class Fleet:
    client: httpx.AsyncClient
    app: FastAPI
    operator: TestUser
    org_id: str
    project_id: str
    environment_id: str

    @property
    def env(self) -> str:
        return (
            f"/api/v1/orgs/{self.org_id}/projects/{self.project_id}"
            f"/environments/{self.environment_id}"
        )

    async def token(self, **body: object) -> str:
        response = await self.client.post(
            f"{self.env}/enrollment-tokens", json=body, headers=self.operator.headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    async def enroll(self, **body: object) -> dict:
        token = await self.token()
        response = await self.client.post(
            f"{self.env}/agents", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@contextmanager
def routed_requests(app: FastAPI) -> Iterator[list[str]]:
    """The paths of agent runtime requests that reached the FastAPI routes meanwhile (the
    agent gateway answers the others): recorded by the routes' rate-limit dependency."""
    seen: list[str] = []

    async def recording(request: Request) -> None:
        seen.append(request.url.path)
        await limit_agents(request)

    app.dependency_overrides[limit_agents] = recording
    try:
        yield seen
    finally:
        del app.dependency_overrides[limit_agents]


async def open_fleet(
    app: FastAPI, client: httpx.AsyncClient, database: Database, email: str = "ops@example.com"
) -> Fleet:
    """An operator, an org, a project and an environment (heartbeat every 10 s) on `app`."""
    operator = await make_user(database, email)
    org = (
        await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=operator.headers)
    ).json()
    project = (
        await client.post(
            f"/api/v1/orgs/{org['id']}/projects", json={"name": "p"}, headers=operator.headers
        )
    ).json()
    env = (
        await client.post(
            f"/api/v1/orgs/{org['id']}/projects/{project['id']}/environments",
            json={"name": "dev", "heartbeat_interval_s": 10},
            headers=operator.headers,
        )
    ).json()
    return Fleet(client, app, operator, org["id"], project["id"], env["id"])


@pytest.fixture
async def fleet(test_db: TestDatabase, database: Database) -> AsyncIterator[Fleet]:
    app = create_app(
        test_db.settings(rate_limit_enrollment_per_min=1000, rate_limit_agents_per_min=100_000),
        database=database,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield await open_fleet(app, client, database)
