"""Agent fixtures: an environment, an operator, and helpers to mint tokens and enroll."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from byteor_cloud.api.app import create_app
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


@pytest.fixture
async def fleet(test_db: TestDatabase, database: Database) -> AsyncIterator[Fleet]:
    app = create_app(
        test_db.settings(rate_limit_enrollment_per_min=1000, rate_limit_agents_per_min=100_000),
        database=database,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        operator = await make_user(database, "ops@example.com")
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
        yield Fleet(client, app, operator, org["id"], project["id"], env["id"])
