"""A dev deployment end to end in-process: approved → building → deploying → active."""

from __future__ import annotations

from sqlalchemy import update

from byteor_cloud.db.models.signing import SigningKey
from helpers.deploy_rig import Rig


async def test_dev_deployment_reaches_active_as_agents_verify_and_report(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    agents = await env.enroll(3)
    plan = await rig.client.post(
        f"{env.path}/deployments/plan", json=env.body(version, bundle), headers=rig.admin.headers
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["requires_approval"] is False
    assert [t["change"] for t in plan.json()["targets"]] == ["install"] * 3
    created = await env.deploy(env.body(version, bundle, plan_hash=plan.json()["plan_hash"]))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "approved"
    await env.settle()
    deployment = await env.deployment(created.json()["id"])
    assert deployment["status"] == "active", deployment
    assert deployment["target_counts"] == {"active": 3}
    for agent in agents:
        assert agent.running is not None
        assert agent.running["spec_hash"] == version["spec_hash"]
        assert agent.last_bundle is not None
        assert agent.last_bundle.approval_credential is None


async def test_every_transition_of_a_rollout_is_audited(rig: Rig) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    agents = await env.enroll(2)
    created = await env.deploy(env.body(version, await env.bundle(version["id"])))
    await env.settle()
    deployment_id = created.json()["id"]
    assert [
        action
        for action in await rig.audit_actions(resource_id=deployment_id)
        if action.startswith("deployment.")
    ] == ["deployment.create", "deployment.building", "deployment.deploying", "deployment.active"]
    targets = await env.targets(deployment_id)
    for agent in agents:
        actions = await rig.audit_actions(resource_id=targets[agent.agent_id]["id"])
        assert actions == [
            "deployment_target.pending",
            "deployment_target.downloading",
            "deployment_target.activating",
            "deployment_target.active",
        ]


async def test_a_build_that_cannot_succeed_fails_the_deployment_with_the_reason(
    rig: Rig,
) -> None:
    env = await rig.environment("dev")
    version = await rig.version()
    await env.enroll(1)
    created = await env.deploy(env.body(version, await env.bundle(version["id"])))
    async with rig.database.transaction() as session:
        # No key can sign: the build is refused rather than retried for ever.
        await session.execute(
            update(SigningKey).where(SigningKey.org_id == rig.org_id).values(status="retired")
        )
    await env.settle()
    deployment = await env.deployment(created.json()["id"])
    assert deployment["status"] == "failed"
    assert deployment["status_reason"] == "the organization has no active signing key"
    assert deployment["bundle_digest"] is None
    assert env.agents[0].running is None
