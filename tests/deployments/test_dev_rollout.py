"""A dev deployment end to end in-process: approved → building → deploying → active."""

from __future__ import annotations

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
