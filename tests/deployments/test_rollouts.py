"""Rollouts to simulated agents in-process: cap, cancel, reproducible bundles, bundle
access, plan changes, epochs, supersession, unreachable agents, phased failure with
automatic rollback, manual rollback and the audit trail (both databases)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from byteor_cloud.core.clock import utcnow
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.db.models.deployments import Deployment
from byteor_cloud.deployments.builds import render_bundle
from byteor_cloud.deployments.jobs import RolloutSweep
from byteor_cloud.jobs.queue import enqueue
from helpers.deploy_rig import Env, Rig, plan_variant
from helpers.jobs import drain_jobs
from helpers.sim_agent import SimAgent


async def _deployed(rig: Rig, env: Env, version: dict[str, Any], **body: Any) -> dict[str, Any]:
    bundle = await env.bundle(version["id"])
    created = await env.deploy(env.body(version, bundle, **body))
    assert created.status_code == 201, created.text
    await env.settle()
    return await env.deployment(created.json()["id"])


async def _sweep(rig: Rig) -> None:
    from byteor_cloud.agents.jobs import LivenessSweep

    # One after the other: the rollout sweep acts on what the liveness sweep decided.
    for sweep in (LivenessSweep(), RolloutSweep()):
        async with rig.database.transaction() as session:
            await enqueue(session, sweep)
        await drain_jobs(rig.local_app)


async def test_the_inflight_cap_refuses_a_second_deployment_until_the_first_lands(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(1)
    first = await env.deploy(env.body(version, bundle))
    assert first.status_code == 201
    second = await env.deploy(env.body(version, bundle))
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "inflight_cap"
    await env.settle()
    assert (await env.deployment(first.json()["id"]))["status"] == "active"
    third = await env.deploy(env.body(version, bundle))
    assert third.status_code == 201, third.text


async def test_cancel_works_before_agents_and_is_refused_after(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(1)
    created = (await env.deploy(env.body(version, bundle))).json()
    cancel = f"{env.path}/deployments/{created['id']}/cancel"
    response = await rig.client.post(cancel, json={"reason": "typo"}, headers=rig.admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    await env.settle()
    assert env.agents[0].running is None  # the queued build found it cancelled
    again = await rig.client.post(cancel, json={}, headers=rig.admin.headers)
    assert again.status_code == 409

    landed = await _deployed(rig, env, version)
    late = await rig.client.post(
        f"{env.path}/deployments/{landed['id']}/cancel", json={}, headers=rig.admin.headers
    )
    assert late.status_code == 409, late.text
    assert late.json()["error"]["code"] == "invalid_state"


async def test_the_same_inputs_build_the_same_digest_and_only_assigned_agents_download(
    rig: Rig,
) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    first, second, bystander = await env.enroll(3)
    deployment = await _deployed(
        rig, env, version, targets={"agent_ids": [first.agent_id, second.agent_id]}
    )
    assert deployment["status"] == "active"
    digest = deployment["bundle_digest"]
    digests = set()
    for _ in range(2):
        async with rig.database.transaction(readonly=True) as session:
            row = await session.get_one(Deployment, deployment["id"])
            built = await render_bundle(session, rig.local_app.state.settings, row, "rollout")
        digests.add(built.digest)
    assert digests == {digest}

    download = await rig.client.get(f"{first.base}/bundles/{digest}", headers=first.headers)
    assert download.status_code == 200
    assert "sha256:" + hashlib.sha256(download.content).hexdigest() == digest
    # Another agent's path with one's own key: 403; one's own path for a bundle that is not
    # one's assignment: 404, as for a digest that does not exist.
    assert (
        await rig.client.get(f"{first.base}/bundles/{digest}", headers=bystander.headers)
    ).status_code == 403
    assert (
        await rig.client.get(f"{bystander.base}/bundles/{digest}", headers=bystander.headers)
    ).status_code == 404
    assert (
        await rig.client.get(f"{first.base}/bundles/sha256:{'0' * 64}", headers=first.headers)
    ).status_code == 404
    assert (await rig.client.get(f"{first.base}/bundles/{digest}")).status_code == 401


async def test_a_stale_plan_hash_is_409_and_a_later_enrollment_keeps_the_hash(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(1)
    body = env.body(version, bundle, targets={"labels": {"tier": "edge"}})
    none_yet = await env.deploy(body)
    assert none_yet.status_code == 422
    assert none_yet.json()["error"]["code"] == "no_targets"
    await env.enroll(1, tier="edge")
    planned = await rig.client.post(
        f"{env.path}/deployments/plan", json=body, headers=rig.admin.headers
    )
    assert planned.status_code == 200
    await env.enroll(1, tier="edge")
    replanned = await rig.client.post(
        f"{env.path}/deployments/plan", json=body, headers=rig.admin.headers
    )
    assert replanned.json()["plan_hash"] == planned.json()["plan_hash"]
    assert len(replanned.json()["targets"]) == 2

    changed = {**body, "strategy": {"type": "phased", "batches": [50, 100]}}
    stale = await env.deploy({**changed, "plan_hash": planned.json()["plan_hash"]})
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["code"] == "plan_changed"
    assert stale.json()["error"]["details"]["plan_hash"] != planned.json()["plan_hash"]
    fresh = await env.deploy({**body, "plan_hash": planned.json()["plan_hash"]})
    assert fresh.status_code == 201, fresh.text


async def test_bad_plans_are_refused_with_the_field_named(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(1)
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"version_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 422, "unknown_version"),
        ({"bundle_id": "nope"}, 422, "unknown_bundle"),
        ({"targets": {"all": True, "labels": {"a": "b"}}}, 422, None),
        ({"targets": {"agent_ids": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}}, 422, "unknown_agents"),
        ({"strategy": {"type": "phased", "batches": [50, 40, 100]}}, 422, None),
        ({"strategy": {"type": "phased", "batches": [10, 50]}}, 422, None),
        ({"strategy": {"type": "canary"}}, 422, None),
        ({"strategy": {"type": "phased", "batches": [True, 100]}}, 422, None),
        ({"status": "active"}, 422, None),
    ]
    for change, status, code in cases:
        response = await env.deploy({**env.body(version, bundle), **change})
        assert response.status_code == status, (change, response.text)
        if code is not None:
            assert response.json()["error"]["code"] == code, change
    listed = await rig.client.get(f"{env.path}/deployments", headers=rig.admin.headers)
    assert listed.json()["items"] == []


async def test_a_newer_deployment_supersedes_and_stale_epochs_are_refused(rig: Rig) -> None:
    env = await rig.environment("dev")
    old_version = await rig.version()
    agents = await env.enroll(2)
    old = await _deployed(rig, env, old_version)
    assert old["status"] == "active"
    new_version = await rig.version(plan_variant("us"))
    new = await _deployed(rig, env, new_version)
    assert new["status"] == "active"
    old_targets = await env.targets(old["id"])
    assert {t["state"] for t in old_targets.values()} == {"superseded"}
    assert {t["epoch"] for t in (await env.targets(new["id"])).values()} == {2}

    agent = agents[0]
    stale = await agent.report(old["id"], 1, "active")
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["code"] == "stale_epoch"
    assert stale.json()["error"]["details"]["current_epoch"] == 2
    repeat = await agent.report(new["id"], 2, "active")
    assert repeat.status_code == 200
    backwards = await agent.report(new["id"], 2, "downloading")
    assert backwards.status_code == 409
    unknown = await agent.report(new["id"], 3, "active")
    assert unknown.status_code == 422
    other = await agent.report(old["id"], 2, "active")
    assert other.status_code == 422  # epoch 2 belongs to the newer deployment
    missing = await agent.report("01ARZ3NDEKTSV4RRFFQ69G5FAV", 2, "active")
    assert missing.status_code == 404
    assert (await env.targets(old["id"]))[agent.agent_id]["state"] == "superseded"


async def test_a_silent_agent_becomes_unreachable_and_returns(rig: Rig) -> None:
    env = await rig.environment("dev", heartbeat_interval_s=5)
    version = await rig.version()
    steady, silent = await env.enroll(2)
    created = await env.deploy(env.body(version, await env.bundle(version["id"])))
    deployment_id = created.json()["id"]
    await drain_jobs(rig.local_app)
    await steady.step()
    async with rig.database.transaction() as session:
        await session.execute(
            update(Agent)
            .where(Agent.id == silent.agent_id)
            .values(last_heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    await _sweep(rig)
    assert (await env.targets(deployment_id))[silent.agent_id]["state"] == "unreachable"
    assert (await env.deployment(deployment_id))["status"] == "deploying"
    await silent.heartbeat()
    await _sweep(rig)
    assert (await env.targets(deployment_id))[silent.agent_id]["state"] == "pending"
    await env.settle()
    assert (await env.deployment(deployment_id))["status"] == "active"
    actions = await rig.audit_actions(resource_type="deployment_target")
    assert "deployment_target.unreachable" in actions


async def test_a_phased_rollout_with_a_failure_rolls_back_everywhere(rig: Rig) -> None:
    env = await rig.environment("dev")
    good = await rig.version()
    agents = await env.enroll(4)
    first = await _deployed(rig, env, good)
    assert first["status"] == "active"
    bad = await rig.version(plan_variant("apac"))
    agents[3].fail_specs.add(bad["spec_hash"])
    strategy = {"type": "phased", "batches": [50, 100], "bake_s": 0, "max_failures": 0}
    second = await _deployed(rig, env, bad, strategy=strategy)
    assert second["status"] == "rolled_back", second
    assert second["previous_deployment_id"] == first["id"]
    for agent in agents:
        assert agent.running is not None
        assert agent.running["spec_hash"] == good["spec_hash"], agent.agent_id
    targets = await env.targets(second["id"])
    assert {t["phase"] for t in targets.values()} == {"rollback"}
    assert {t["state"] for t in targets.values()} == {"active"}
    actions = await rig.audit_actions(resource_id=second["id"])
    for action in (
        "deployment.create",
        "deployment.building",
        "deployment.deploying",
        "deployment.batch_started",
        "deployment.failed",
        "deployment.rolling_back",
        "deployment.rolled_back",
    ):
        assert action in actions, action


async def test_a_phased_rollout_waits_for_the_bake_time(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    agents = await env.enroll(2)
    strategy = {"type": "phased", "batches": [50, 100], "bake_s": 3600}
    created = await env.deploy(
        env.body(version, await env.bundle(version["id"]), strategy=strategy)
    )
    await env.settle()
    deployment_id = created.json()["id"]
    assert (await env.deployment(deployment_id))["current_batch"] == 0
    assert [agent.running is not None for agent in agents] == [True, False]
    async with rig.database.transaction() as session:
        await session.execute(
            update(Deployment)
            .where(Deployment.id == deployment_id)
            .values(batch_done_at=utcnow() - timedelta(hours=2))
        )
    await _sweep(rig)
    await env.settle()
    assert (await env.deployment(deployment_id))["status"] == "active"
    assert all(agent.running is not None for agent in agents)


async def test_manual_rollback_restores_the_previous_deployment(rig: Rig) -> None:
    env = await rig.environment("staging")
    other = await rig.member("other@example.com")
    first_version = await rig.version()
    agents = await env.enroll(2)

    async def approved(version: dict[str, Any]) -> dict[str, Any]:
        created = await env.deploy(env.body(version, await env.bundle(version["id"])))
        approval = f"{env.path}/approvals/{created.json()['approval_id']}/approve"
        assert (await rig.client.post(approval, json={}, headers=other.headers)).status_code == 200
        await env.settle()
        return await env.deployment(created.json()["id"])

    first = await approved(first_version)
    nothing = await rig.client.post(
        f"{env.path}/deployments/{first['id']}/rollback", json={}, headers=rig.admin.headers
    )
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "nothing_to_roll_back"
    second = await approved(await rig.version(plan_variant("us")))
    rolled = await rig.client.post(
        f"{env.path}/deployments/{second['id']}/rollback", json={}, headers=rig.admin.headers
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["status"] == "rolling_back"
    await env.settle()
    assert (await env.deployment(second["id"]))["status"] == "rolled_back"
    for agent in agents:
        assert agent.running is not None
        assert agent.running["spec_hash"] == first_version["spec_hash"]
        assert agent.last_bundle is not None
        credential = agent.last_bundle.approval_credential
        assert credential is not None  # staging gates deployments: a system-issued one
    assert "deployment.rollback_credential" in await rig.audit_actions(resource_id=second["id"])


async def test_environment_deletion_needs_force_with_an_active_deployment(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    await env.enroll(1)
    await _deployed(rig, env, version)
    # The agent is online too; both reasons are listed.
    refused = await rig.client.delete(env.path, headers=rig.admin.headers)
    assert refused.status_code == 409, refused.text
    assert "deployment" in refused.text
    forced = await rig.client.delete(f"{env.path}?force=true", headers=rig.admin.headers)
    assert forced.status_code == 204, forced.text


async def test_many_agents_reporting_at_once_land_the_rollout(rig: Rig) -> None:
    """Concurrent reports (and a duplicated agent sharing a key) take the locks in one
    order and lose nothing: every target ends active, the deployment once active."""
    env = await rig.environment("dev")
    version = await rig.version()
    agents = await env.enroll(8)
    twin = SimAgent.from_enrollment(
        rig.client,
        {
            "agent_id": agents[0].agent_id,
            "api_key": agents[0].api_key,
            "environment_id": env.environment_id,
            "signing_keys": {"keys": agents[0].trusted_keys},
        },
        "dev",
    )
    # The agent and its twin race on one target: either may be refused for going back.
    twin.strict = agents[0].strict = False
    created = await env.deploy(env.body(version, await env.bundle(version["id"])))
    await drain_jobs(rig.local_app)
    await asyncio.gather(*(agent.step() for agent in [*agents, twin]))
    deployment = await env.deployment(created.json()["id"])
    assert deployment["status"] == "active", deployment
    assert deployment["target_counts"] == {"active": 8}
    actions = await rig.audit_actions(resource_id=created.json()["id"])
    assert actions.count("deployment.active") == 1
    # Either of the pair may have been refused for going back; never for anything else.
    assert {error["code"] for error in twin.refused + agents[0].refused} <= {"invalid_transition"}
