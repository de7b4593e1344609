"""A simulated agent speaking the §10 protocol over HTTP, for tests: heartbeats, polls
desired state with If-None-Match, downloads its bundle, verifies it the way the reference
agent must (signature against keys it already trusts, file hashes, the approval
credential), reports status with its epoch, and remembers what it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from byteor_cloud.approvals.credential import CredentialError, verify_credential
from byteor_cloud.deploybundle.errors import BundleError
from byteor_cloud.deploybundle.verify import VerifiedBundle, open_bundle
from byteor_cloud.spec.kv_decode import decode_spec


@dataclass
class SimAgent:
    client: httpx.AsyncClient
    agent_id: str
    api_key: str
    environment_id: str
    posture: str
    trusted_keys: list[dict[str, Any]]
    # Refuse to activate (report `failed`) any spec hash in here.
    fail_specs: set[str] = field(default_factory=set)
    etag: str | None = None
    epoch: int = 0
    running: dict[str, Any] | None = None
    last_bundle: VerifiedBundle | None = None
    last_error: str | None = None
    # A duplicated agent races its twin: its refused reports (409) are kept, not asserted.
    strict: bool = True
    refused: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_enrollment(
        cls, client: httpx.AsyncClient, enrolled: dict[str, Any], posture: str
    ) -> SimAgent:
        return cls(
            client,
            enrolled["agent_id"],
            enrolled["api_key"],
            enrolled["environment_id"],
            posture,
            list(enrolled["signing_keys"]["keys"]),
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def base(self) -> str:
        return f"/api/v1/agents/{self.agent_id}"

    async def heartbeat(self) -> dict[str, Any]:
        response = await self.client.post(
            f"{self.base}/heartbeat",
            json={"agent_version": "sim-1", "status": "ok", "running": self.running},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def desired_state(self) -> dict[str, Any] | None:
        headers = dict(self.headers)
        if self.etag:
            headers["If-None-Match"] = self.etag
        response = await self.client.get(f"{self.base}/desired-state", headers=headers)
        if response.status_code == 304:
            return None
        assert response.status_code == 200, response.text
        self.etag = response.headers["ETag"]
        return dict(response.json())

    async def report(
        self, deployment_id: str, epoch: int, state: str, **extra: Any
    ) -> httpx.Response:
        response = await self.client.post(
            f"{self.base}/deployments/{deployment_id}/status",
            json={"epoch": epoch, "state": state, **extra},
            headers=self.headers,
        )
        if not self.strict and response.status_code == 409:
            self.refused.append(response.json()["error"])
            return httpx.Response(200, json={}, request=response.request)
        return response

    async def step(self) -> bool:
        """One agent loop turn: heartbeat, poll, apply a new assignment. True if it acted."""
        await self.heartbeat()
        state = await self.desired_state()
        if state is None or state["assignment"] is None:
            return False
        assignment = state["assignment"]
        if assignment["epoch"] <= self.epoch:
            return False
        await self.apply(assignment)
        return True

    async def apply(self, assignment: dict[str, Any]) -> None:
        deployment_id, epoch = assignment["deployment_id"], assignment["epoch"]
        self.epoch = epoch
        response = await self.report(deployment_id, epoch, "downloading")
        assert response.status_code == 200, response.text
        download = await self.client.get(assignment["bundle_url"], headers=self.headers)
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "application/gzip"
        try:
            bundle = open_bundle(download.content, trusted_keys=self.trusted_keys)
            if bundle.manifest["spec_hash"] != assignment["spec_hash"]:
                raise ValueError("the bundle carries another spec")
            if bundle.approval_credential is not None:
                verify_credential(
                    bundle.approval_credential,
                    trusted_keys=self.trusted_keys,
                    spec_hash=assignment["spec_hash"],
                    environment_id=self.environment_id,
                    environment_posture=self.posture,
                    # What the spec itself needs, read from the verified spec.kv.
                    required_capabilities=decode_spec(bundle.spec_kv).capabilities,
                )
            if assignment["spec_hash"] in self.fail_specs:
                raise ValueError("the runtime refused this spec")
        except (BundleError, CredentialError, ValueError) as exc:
            self.last_error = str(exc)
            response = await self.report(deployment_id, epoch, "failed", error=str(exc)[:500])
            assert response.status_code == 200, response.text
            return
        self.last_bundle = bundle
        response = await self.report(deployment_id, epoch, "activating")
        assert response.status_code == 200, response.text
        response = await self.report(deployment_id, epoch, "active")
        assert response.status_code == 200, response.text
        self.running = {
            "deployment_id": deployment_id,
            "epoch": epoch,
            "spec_hash": assignment["spec_hash"],
            "bundle_hash": assignment["bundle_hash"],
        }
