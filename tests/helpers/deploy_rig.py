"""A deployment test rig over HTTP: an org and project, versions, config bundles,
environments of each posture, people of each role, and simulated agents
(helpers.sim_agent). In-process (`app` set: jobs are drained) or against real server and
worker processes (`app` None: the worker runs the jobs, the rig waits)."""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from byteor_cloud.db.session import Database
from helpers.identity import TestUser, make_user
from helpers.jobs import drain_jobs
from helpers.sim_agent import SimAgent

PLAN: dict[str, Any] = {
    "plan": 2,
    "name": "orders",
    "target": "single_ring",
    "ingress": [{"id": "in", "adapter": "file", "config": {"path": "/var/lib/byteor/in.jsonl"}}],
    "egress": [{"id": "out", "adapter": "file", "config": {"path": "/var/lib/byteor/out.jsonl"}}],
    "stages": [
        {"id": "only-eu", "op": "filter", "params": {"field": "region", "op": "eq", "value": "eu"}},
        {
            "id": "notify",
            "op": "http_post",
            "params": {"url": "https://hooks.example.com/orders"},
            "depends_on": ["only-eu"],
        },
    ],
    "single_ring": {
        "shards": 1,
        "ordering": "strict",
        "producer": "single",
        "scheduling": "dedicated",
    },
}


def plan_variant(value: str) -> dict[str, Any]:
    """Another valid plan (another spec hash)."""
    plan = copy.deepcopy(PLAN)
    plan["stages"][0]["params"]["value"] = value
    return plan


@dataclass
class Env:
    rig: Rig
    environment_id: str
    posture: str
    agents: list[SimAgent] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.rig.project}/environments/{self.environment_id}"

    async def bundle(self, version_id: str, **runtime_config: str) -> dict[str, Any]:
        response = await self.rig.client.post(
            f"{self.path}/config-bundles",
            json={"version_id": version_id, "runtime_config": runtime_config, "secret_refs": {}},
            headers=self.rig.admin.headers,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def enroll(self, count: int = 1, **labels: str) -> list[SimAgent]:
        made = []
        for _ in range(count):
            token = await self.rig.client.post(
                f"{self.path}/enrollment-tokens", json={}, headers=self.rig.admin.headers
            )
            response = await self.rig.client.post(
                f"{self.path}/agents",
                json={"hostname": "host", "labels": labels},
                headers={"Authorization": f"Bearer {token.json()['token']}"},
            )
            assert response.status_code == 201, response.text
            agent = SimAgent.from_enrollment(self.rig.client, response.json(), self.posture)
            await agent.heartbeat()
            made.append(agent)
        self.agents.extend(made)
        return made

    def body(self, version: dict[str, Any], bundle: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "version_id": version["id"],
            "bundle_id": bundle["id"],
            "targets": {"all": True},
            "strategy": {"type": "all_at_once"},
            **extra,
        }

    async def deploy(self, body: dict[str, Any], user: TestUser | None = None) -> httpx.Response:
        return await self.rig.client.post(
            f"{self.path}/deployments", json=body, headers=(user or self.rig.admin).headers
        )

    async def deployment(self, deployment_id: str) -> dict[str, Any]:
        response = await self.rig.client.get(
            f"{self.path}/deployments/{deployment_id}", headers=self.rig.admin.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def targets(self, deployment_id: str) -> dict[str, dict[str, Any]]:
        response = await self.rig.client.get(
            f"{self.path}/deployments/{deployment_id}/targets?limit=200",
            headers=self.rig.admin.headers,
        )
        assert response.status_code == 200, response.text
        return {item["agent_id"]: item for item in response.json()["items"]}

    async def settle(self, rounds: int = 10) -> None:
        """Run jobs and let every agent act until nothing moves (in-process rigs)."""
        assert self.rig.app is not None, "live rigs wait with until_status"
        for _ in range(rounds):
            ran = await drain_jobs(self.rig.app)
            acted = [await agent.step() for agent in self.agents]
            if not ran and not any(acted):
                return
        raise AssertionError("the rollout never settled")

    async def until_status(
        self,
        deployment_id: str,
        *wanted: str,
        within_s: float = 60,
        agents: list[SimAgent] | None = None,
    ) -> dict[str, Any]:
        """Live rigs: let the agents act until the deployment reaches one of `wanted`."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for agent in self.agents if agents is None else agents:
                await agent.step()
            deployment = await self.deployment(deployment_id)
            if deployment["status"] in wanted:
                return deployment
            await asyncio.sleep(0.2)
        raise AssertionError(f"still {deployment['status']} after {within_s} s, wanted {wanted}")


@dataclass
class Rig:
    client: httpx.AsyncClient
    app: FastAPI | None
    database: Database
    admin: TestUser
    org_id: str
    project_id: str

    @property
    def project(self) -> str:
        return f"/api/v1/orgs/{self.org_id}/projects/{self.project_id}"

    @property
    def local_app(self) -> FastAPI:
        assert self.app is not None, "an in-process rig"
        return self.app

    async def version(self, plan: dict[str, Any] | None = None) -> dict[str, Any]:
        draft = await self.client.post(
            f"{self.project}/drafts",
            json={"name": "d", "target": "single_ring", "plan": plan or PLAN},
            headers=self.admin.headers,
        )
        assert draft.status_code == 201, draft.text
        version = await self.client.post(
            f"{self.project}/drafts/{draft.json()['id']}/versions",
            json={},
            headers=self.admin.headers,
        )
        assert version.status_code in (200, 202), version.text
        if self.app is not None:
            await drain_jobs(self.app)
            return dict(version.json())
        path = f"{self.project}/versions/{version.json()['id']}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = await self.client.get(path, headers=self.admin.headers)
            if current.json()["status"] == "ready":
                return dict(current.json())
            await asyncio.sleep(0.1)
        raise AssertionError("the version never became ready")

    async def environment(self, posture: str, **extra: Any) -> Env:
        response = await self.client.post(
            f"{self.project}/environments",
            json={"name": f"{posture}-{len(extra)}-{id(extra)}"[:40], "posture": posture, **extra},
            headers=self.admin.headers,
        )
        assert response.status_code == 201, response.text
        return Env(self, response.json()["id"], posture)

    async def member(self, email: str, role: str = "operator") -> TestUser:
        user = await make_user(self.database, email)
        response = await self.client.post(
            f"/api/v1/orgs/{self.org_id}/members",
            json={"email": email, "role": role},
            headers=self.admin.headers,
        )
        assert response.status_code == 201, response.text
        return user

    async def audit_actions(self, **filters: str) -> list[str]:
        """Every audit action recorded in the org matching `filters`, oldest first."""
        actions: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "200", **filters, **({"cursor": cursor} if cursor else {})}
            response = await self.client.get(
                f"/api/v1/orgs/{self.org_id}/audit", params=params, headers=self.admin.headers
            )
            assert response.status_code == 200, response.text
            actions.extend(item["action"] for item in response.json()["items"])
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return actions[::-1]  # the API lists newest first

    async def api_key(self, user: TestUser, role: str = "operator") -> dict[str, str]:
        response = await self.client.post(
            f"/api/v1/orgs/{self.org_id}/api-keys",
            json={"name": "automation", "role": role},
            headers=user.headers,
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}


async def make_rig(client: httpx.AsyncClient, app: FastAPI | None, database: Database) -> Rig:
    admin = await make_user(database, "admin@example.com")
    org = (await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=admin.headers)).json()
    project = (
        await client.post(
            f"/api/v1/orgs/{org['id']}/projects", json={"name": "p"}, headers=admin.headers
        )
    ).json()
    return Rig(client, app, database, admin, org["id"], project["id"])
