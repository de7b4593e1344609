"""Deployments against the real `byteor-cloud serve` and `byteor-cloud worker` processes,
with several simulated agents speaking HTTP (helpers.sim_agent): they download the bundle,
verify its signature, file hashes and approval credential, and report status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from byteor_cloud.approvals.credential import verify_credential
from byteor_cloud.db.models.deployments import Deployment
from byteor_cloud.db.session import Database
from byteor_cloud.deployments.builds import render_bundle
from helpers.databases import TestDatabase
from helpers.deploy_rig import Rig, make_rig, plan_variant
from helpers.processes import RunningProcess, start_server, start_worker_process


@pytest.fixture
def processes(test_db: TestDatabase, tmp_path: Path) -> Iterator[RunningProcess]:
    env = {
        **test_db.env(),
        "BYTEOR_CLOUD_RATE_LIMIT_ENROLLMENT_PER_MIN": "1000",
        "BYTEOR_CLOUD_RATE_LIMIT_AGENTS_PER_MIN": "100000",
    }
    server = start_server(env, tmp_path)
    worker = start_worker_process(env, tmp_path)
    try:
        yield server
    finally:
        worker.stop()
        server.stop()


@pytest.fixture
async def live(processes: RunningProcess, database: Database) -> AsyncIterator[Rig]:
    async with httpx.AsyncClient(base_url=processes.base_url, timeout=30) as client:
        yield await make_rig(client, None, database)


async def test_dev_rollout_supersession_and_stale_epochs_on_the_real_server(live: Rig) -> None:
    env = await live.environment("dev")
    first_version = await live.version()
    agents = await env.enroll(3)
    bundle = await env.bundle(first_version["id"])
    created = await env.deploy(env.body(first_version, bundle))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "approved"
    first = await env.until_status(created.json()["id"], "active")
    assert first["target_counts"] == {"active": 3}
    for agent in agents:
        assert agent.running is not None
        assert agent.running["spec_hash"] == first_version["spec_hash"]
    statuses = [
        action
        for action in await live.audit_actions(resource_id=first["id"])
        if action.startswith("deployment.")
    ]
    assert statuses == [
        "deployment.create",
        "deployment.building",
        "deployment.deploying",
        "deployment.active",
    ]

    second_version = await live.version(plan_variant("us"))
    second_bundle = await env.bundle(second_version["id"])
    newer = await env.deploy(env.body(second_version, second_bundle))
    assert newer.status_code == 201, newer.text
    await env.until_status(newer.json()["id"], "active")
    assert {t["state"] for t in (await env.targets(first["id"])).values()} == {"superseded"}
    stale = await agents[0].report(first["id"], 1, "active")
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_epoch"
    other = await live.client.get(
        f"{agents[0].base}/bundles/{(await env.deployment(newer.json()['id']))['bundle_digest']}",
        headers=agents[1].headers,
    )
    assert other.status_code == 403


async def test_prod_rollout_waits_for_another_person_and_ships_a_valid_credential(
    live: Rig,
) -> None:
    env = await live.environment("prod")
    version = await live.version()
    agents = await env.enroll(2)
    created = await env.deploy(env.body(version, await env.bundle(version["id"])))
    assert created.json()["status"] == "pending_approval"
    approve = f"{env.path}/approvals/{created.json()['approval_id']}/approve"
    assert (await live.client.post(approve, json={}, headers=live.admin.headers)).status_code == 403
    other = await live.member("approver@example.com")
    assert (await live.client.post(approve, json={}, headers=other.headers)).status_code == 200
    await env.until_status(created.json()["id"], "active")
    for agent in agents:
        assert agent.last_bundle is not None
        assert agent.last_bundle.approval_credential is not None
        verify_credential(
            agent.last_bundle.approval_credential,
            trusted_keys=agent.trusted_keys,
            spec_hash=version["spec_hash"],
            environment_id=env.environment_id,
            environment_posture="prod",
            required_capabilities=version["capabilities"],
        )


async def test_phased_failure_rolls_back_on_the_real_server(live: Rig) -> None:
    env = await live.environment("dev")
    good = await live.version()
    agents = await env.enroll(4)
    first = await env.deploy(env.body(good, await env.bundle(good["id"])))
    await env.until_status(first.json()["id"], "active")
    bad = await live.version(plan_variant("apac"))
    agents[3].fail_specs.add(bad["spec_hash"])
    strategy = {"type": "phased", "batches": [50, 100], "bake_s": 0, "max_failures": 0}
    second = await env.deploy(env.body(bad, await env.bundle(bad["id"]), strategy=strategy))
    assert second.status_code == 201, second.text
    done = await env.until_status(second.json()["id"], "rolled_back")
    assert done["previous_deployment_id"] == first.json()["id"]
    for agent in agents:
        assert agent.running is not None
        assert agent.running["spec_hash"] == good["spec_hash"]


async def test_a_silent_agent_becomes_unreachable_on_the_real_server(live: Rig) -> None:
    env = await live.environment("dev", heartbeat_interval_s=5)
    version = await live.version()
    steady, silent = await env.enroll(2)
    created = await env.deploy(env.body(version, await env.bundle(version["id"])))
    deployment_id = created.json()["id"]
    # Only `steady` keeps talking; after 3 intervals the liveness sweep takes `silent`
    # offline and the rollout sweep marks its target unreachable (both every 10 s).
    deadline_rounds = 0
    while (await env.targets(deployment_id))[silent.agent_id]["state"] != "unreachable":
        deadline_rounds += 1
        assert deadline_rounds < 300, "never became unreachable"
        await steady.step()
        await asyncio.sleep(0.2)
    assert (await env.deployment(deployment_id))["status"] == "deploying"
    await env.until_status(deployment_id, "active")
    assert silent.running is not None


async def test_operator_controls_and_reproducible_bundles_on_the_real_server(
    live: Rig, test_db: TestDatabase
) -> None:
    env = await live.environment("staging")
    version = await live.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(2)
    body = env.body(version, bundle)
    planned = await live.client.post(
        f"{env.path}/deployments/plan", json=body, headers=live.admin.headers
    )
    assert planned.json()["requires_approval"] is True
    phased = {**body, "strategy": {"type": "phased", "batches": [50, 100]}}
    stale = await env.deploy({**phased, "plan_hash": planned.json()["plan_hash"]})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "plan_changed"
    nobody = await env.deploy({**body, "targets": {"labels": {"zone": "nowhere"}}})
    assert nobody.status_code == 422
    assert nobody.json()["error"]["code"] == "no_targets"

    # Deny one, cancel one, ship one.
    decided = []
    for _ in range(3):
        created = await env.deploy({**body, "plan_hash": planned.json()["plan_hash"]})
        assert created.status_code == 201, created.text
        decided.append(created.json())
    denied, cancelled, shipped = decided
    base = f"{env.path}/approvals"
    deny = await live.client.post(
        f"{base}/{denied['approval_id']}/deny", json={}, headers=live.admin.headers
    )
    assert deny.json()["status"] == "denied"
    cancel = await live.client.post(
        f"{env.path}/deployments/{cancelled['id']}/cancel", json={}, headers=live.admin.headers
    )
    assert cancel.json()["status"] == "cancelled"
    # Approving one fills the in-flight cap (1) until it lands.
    approve = await live.client.post(
        f"{base}/{shipped['approval_id']}/approve", json={}, headers=live.admin.headers
    )
    assert approve.status_code == 200
    capped = await env.deploy(body)
    assert capped.status_code == 201  # waiting for approval is not in flight …
    over = await live.client.post(
        f"{base}/{capped.json()['approval_id']}/approve", json={}, headers=live.admin.headers
    )
    assert over.status_code == 409  # … approving it would be
    assert over.json()["error"]["code"] == "inflight_cap"
    done = await env.until_status(shipped["id"], "active")
    assert (await env.deployment(denied["id"]))["status"] == "denied"
    assert (await env.deployment(cancelled["id"]))["status"] == "cancelled"
    # Revoking what already reached agents is recorded and shown, not undone.
    revoke = await live.client.post(
        f"{base}/{shipped['approval_id']}/revoke", json={}, headers=live.admin.headers
    )
    assert revoke.json()["status"] == "revoked"
    shown = await env.deployment(shipped["id"])
    assert (shown["status"], shown["approval_status"]) == ("active", "revoked")
    # With the first one landed, the waiting one may now be approved.
    later = await live.client.post(
        f"{base}/{capped.json()['approval_id']}/approve", json={}, headers=live.admin.headers
    )
    assert later.status_code == 200, later.text

    # The server's bundle is reproduced byte for byte from the same inputs in this process.
    async with live.database.transaction(readonly=True) as session:
        row = await session.get_one(Deployment, shipped["id"])
        again = await render_bundle(session, test_db.settings(), row, "rollout")
    assert again.digest == done["bundle_digest"]
