"""Deployments behind approvals: who may decide, the credential agents receive, deny,
revoke, expiry and plan changes (in-process, both databases)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from byteor_cloud.approvals.credential import CredentialError, canonical_json, verify_credential
from byteor_cloud.core.clock import utcnow
from byteor_cloud.db.models.deployments import Approval
from byteor_cloud.signing import repository as signing_repository
from byteor_cloud.signing.keys import b64url, from_b64url, sign_sealed, signing_box
from helpers.deploy_rig import Env, Rig
from helpers.jobs import drain_jobs


async def _pending(rig: Rig, env: Env) -> tuple[dict[str, Any], dict[str, Any]]:
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(2)
    created = await env.deploy(env.body(version, bundle))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending_approval"
    return version, created.json()


async def _approval(rig: Rig, env: Env, approval_id: str) -> dict[str, Any]:
    response = await rig.client.get(
        f"{env.path}/approvals/{approval_id}", headers=rig.admin.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_prod_deployment_needs_another_person_and_agents_get_a_valid_credential(
    rig: Rig,
) -> None:
    env = await rig.environment("prod")
    version, deployment = await _pending(rig, env)
    approval_id = deployment["approval_id"]
    approve = f"{env.path}/approvals/{approval_id}/approve"

    # Nothing moves while it waits: no build job runs, no agent is assigned.
    await env.settle()
    assert (await env.deployment(deployment["id"]))["status"] == "pending_approval"
    assert all(agent.running is None for agent in env.agents)

    own = await rig.client.post(approve, json={}, headers=rig.admin.headers)
    assert own.status_code == 403, own.text
    assert own.json()["error"]["code"] == "distinct_approver_required"
    key_of_requester = await rig.api_key(rig.admin)
    by_key = await rig.client.post(approve, json={}, headers=key_of_requester)
    assert by_key.status_code == 403, by_key.text
    assert by_key.json()["error"]["code"] == "distinct_approver_required"
    viewer = await rig.member("viewer@example.com", "viewer")
    assert (await rig.client.post(approve, json={}, headers=viewer.headers)).status_code == 403

    other = await rig.member("other@example.com", "operator")
    approved = await rig.client.post(approve, json={"reason": "looks right"}, headers=other.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == other.user_id
    again = await rig.client.post(approve, json={}, headers=other.headers)
    assert again.status_code == 409

    await env.settle()
    assert (await env.deployment(deployment["id"]))["status"] == "active"
    credential = (
        await rig.client.get(f"{approve.rsplit('/', 1)[0]}/credential", headers=rig.admin.headers)
    ).json()
    for agent in env.agents:
        assert agent.last_bundle is not None
        assert agent.last_bundle.approval_credential == credential["credential"]
        payload = verify_credential(
            credential["credential"],
            trusted_keys=agent.trusted_keys,
            spec_hash=version["spec_hash"],
            environment_id=env.environment_id,
            environment_posture="prod",
            required_capabilities=version["capabilities"],
        )
        assert payload.approval_id == approval_id
        assert payload.issued_by == f"user:{other.user_id}"
        assert tuple(version["capabilities"]) == payload.capabilities


async def test_an_operator_key_of_another_person_can_approve(rig: Rig) -> None:
    env = await rig.environment("prod")
    _, deployment = await _pending(rig, env)
    # Only admins mint org API keys; the key itself acts as an operator.
    other = await rig.member("other@example.com", "org_admin")
    response = await rig.client.post(
        f"{env.path}/approvals/{deployment['approval_id']}/approve",
        json={},
        headers=await rig.api_key(other),
    )
    assert response.status_code == 200, response.text


async def test_staging_lets_the_requester_approve_their_own_deployment(rig: Rig) -> None:
    env = await rig.environment("staging")
    _, deployment = await _pending(rig, env)
    response = await rig.client.post(
        f"{env.path}/approvals/{deployment['approval_id']}/approve",
        json={},
        headers=rig.admin.headers,
    )
    assert response.status_code == 200, response.text


async def test_deny_ends_the_deployment_and_no_decision_follows(rig: Rig) -> None:
    env = await rig.environment("prod")
    _, deployment = await _pending(rig, env)
    other = await rig.member("other@example.com")
    base = f"{env.path}/approvals/{deployment['approval_id']}"
    denied = await rig.client.post(
        f"{base}/deny", json={"reason": "not today"}, headers=other.headers
    )
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "denied"
    assert denied.json()["reason"] == "not today"
    assert (await env.deployment(deployment["id"]))["status"] == "denied"
    late = await rig.client.post(f"{base}/approve", json={}, headers=other.headers)
    assert late.status_code == 409
    credential = await rig.client.get(f"{base}/credential", headers=rig.admin.headers)
    assert credential.status_code == 409
    assert credential.json()["error"]["code"] == "not_approved"


async def test_revoking_before_the_build_cancels_and_after_rollout_is_only_recorded(
    rig: Rig,
) -> None:
    env = await rig.environment("prod")
    _, first = await _pending(rig, env)
    other = await rig.member("other@example.com")
    base = f"{env.path}/approvals/{first['approval_id']}"
    assert (
        await rig.client.post(f"{base}/approve", json={}, headers=other.headers)
    ).status_code == 200
    revoked = await rig.client.post(
        f"{base}/revoke", json={"reason": "wrong"}, headers=other.headers
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    await env.settle()
    shown = await env.deployment(first["id"])
    assert shown["status"] == "cancelled"
    assert shown["approval_status"] == "revoked"
    assert all(agent.running is None for agent in env.agents)

    second = await env.deploy(env.body(await rig.version(), await env.bundle(first["version_id"])))
    assert second.status_code == 201, second.text
    base = f"{env.path}/approvals/{second.json()['approval_id']}"
    assert (
        await rig.client.post(f"{base}/approve", json={}, headers=other.headers)
    ).status_code == 200
    await env.settle()
    assert (await env.deployment(second.json()["id"]))["status"] == "active"
    assert (
        await rig.client.post(f"{base}/revoke", json={}, headers=other.headers)
    ).status_code == 200
    shown = await env.deployment(second.json()["id"])
    assert shown["status"] == "active"
    assert shown["approval_status"] == "revoked"
    assert "deployment.approval_revoked" in await rig.audit_actions(resource_id=second.json()["id"])


async def test_a_pending_request_expires_and_cancels_its_deployment(rig: Rig) -> None:
    env = await rig.environment("prod")
    _, deployment = await _pending(rig, env)
    await drain_jobs(rig.local_app)
    assert (await _approval(rig, env, deployment["approval_id"]))["status"] == "pending"
    async with rig.database.transaction() as session:
        await session.execute(
            update(Approval)
            .where(Approval.id == deployment["approval_id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await _run_expiry_sweep(rig)
    assert (await _approval(rig, env, deployment["approval_id"]))["status"] == "expired"
    shown = await env.deployment(deployment["id"])
    assert shown["status"] == "cancelled"
    assert shown["status_reason"] == "approval expired"


async def test_an_expired_credential_cancels_a_deployment_not_yet_built(rig: Rig) -> None:
    env = await rig.environment("prod")
    _, deployment = await _pending(rig, env)
    other = await rig.member("other@example.com")
    base = f"{env.path}/approvals/{deployment['approval_id']}"
    assert (
        await rig.client.post(f"{base}/approve", json={}, headers=other.headers)
    ).status_code == 200
    async with rig.database.transaction() as session:
        await session.execute(
            update(Approval)
            .where(Approval.id == deployment["approval_id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await _run_expiry_sweep(rig)
    assert (await _approval(rig, env, deployment["approval_id"]))["status"] == "expired"
    await env.settle()
    assert (await env.deployment(deployment["id"]))["status"] == "cancelled"
    assert all(agent.running is None for agent in env.agents)


async def test_a_posture_change_after_approval_revokes_it_as_plan_changed(rig: Rig) -> None:
    env = await rig.environment("staging")
    _, deployment = await _pending(rig, env)
    base = f"{env.path}/approvals/{deployment['approval_id']}"
    assert (
        await rig.client.post(f"{base}/approve", json={}, headers=rig.admin.headers)
    ).status_code == 200
    current = await rig.client.get(env.path, headers=rig.admin.headers)
    changed = await rig.client.put(
        env.path,
        json={"name": current.json()["name"], "posture": "prod"},
        headers={**rig.admin.headers, "If-Match": current.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    await env.settle()
    approval = await _approval(rig, env, deployment["approval_id"])
    assert approval["status"] == "revoked"
    assert approval["reason"] == "plan_changed"
    assert (await env.deployment(deployment["id"]))["status"] == "cancelled"
    assert all(agent.running is None for agent in env.agents)


async def _run_expiry_sweep(rig: Rig) -> None:
    """The sweep's handler, run now (ahead of any queued build)."""
    from byteor_cloud.approvals.jobs import ApprovalExpirySweep, sweep
    from byteor_cloud.jobs.context import JobContext

    context = JobContext(
        database=rig.database,
        settings=rig.local_app.state.settings,
        store=rig.local_app.state.store,
        job_id="test",
        job_type=ApprovalExpirySweep.job_type,
        attempt=1,
    )
    await sweep(context, ApprovalExpirySweep())


async def test_the_credential_the_server_issues_fails_each_check_with_its_code(
    rig: Rig,
) -> None:
    """Each verifier code, provoked on a credential the server issued (the order and the
    module itself are covered in tests/approvals)."""
    env = await rig.environment("prod")
    version, deployment = await _pending(rig, env)
    other = await rig.member("other@example.com")
    base = f"{env.path}/approvals/{deployment['approval_id']}"
    assert (
        await rig.client.post(f"{base}/approve", json={}, headers=other.headers)
    ).status_code == 200
    token = (await rig.client.get(f"{base}/credential", headers=rig.admin.headers)).json()[
        "credential"
    ]
    trusted = env.agents[0].trusted_keys
    good: dict[str, Any] = {
        "trusted_keys": trusted,
        "spec_hash": version["spec_hash"],
        "environment_id": env.environment_id,
        "environment_posture": "prod",
        "required_capabilities": version["capabilities"],
    }
    assert verify_credential(token, **good).approval_id == deployment["approval_id"]

    payload_part, signature_part = token.split(".")
    flipped = ("A" if signature_part[0] != "A" else "B") + signature_part[1:]
    async with rig.database.transaction(readonly=True) as session:
        key = await signing_repository.active_key(session, rig.org_id)
        assert key is not None
        box = signing_box(rig.local_app.state.settings.master_key())
        document = json.loads(from_b64url(payload_part))
        v2 = canonical_json({**document, "v": 2})
        resigned = f"{b64url(v2)}.{sign_sealed(key.private_key_encrypted, box, v2)}"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("credential_malformed", token[:-5] + "!!!!!", {}),
        ("unknown_key", token, {"trusted_keys": []}),
        ("bad_signature", f"{payload_part}.{flipped}", {}),
        ("unsupported_version", resigned, {}),
        ("spec_hash_mismatch", token, {"spec_hash": "sha256:" + "0" * 64}),
        ("environment_mismatch", token, {"environment_posture": "staging"}),
        ("environment_mismatch", token, {"environment_id": deployment["id"]}),
        ("expired", token, {"now": utcnow() + timedelta(days=30)}),
        (
            "missing_capability",
            token,
            {"required_capabilities": [*version["capabilities"], "net:raw"]},
        ),
    ]
    for code, candidate, changes in cases:
        with pytest.raises(CredentialError) as failure:
            verify_credential(candidate, **{**good, **changes})
        assert failure.value.code == code, (code, failure.value)


async def test_approving_respects_the_cap_and_a_cancelled_subject(rig: Rig) -> None:
    env = await rig.environment("staging")
    version = await rig.version()
    bundle = await env.bundle(version["id"])
    await env.enroll(1)
    first = (await env.deploy(env.body(version, bundle))).json()
    second = (await env.deploy(env.body(version, bundle))).json()
    assert second["status"] == "pending_approval"  # waiting is not in flight

    def approve(deployment: dict[str, Any]) -> str:
        return f"{env.path}/approvals/{deployment['approval_id']}/approve"

    assert (
        await rig.client.post(approve(first), json={}, headers=rig.admin.headers)
    ).status_code == 200
    capped = await rig.client.post(approve(second), json={}, headers=rig.admin.headers)
    assert capped.status_code == 409, capped.text
    assert capped.json()["error"]["code"] == "inflight_cap"
    assert (await _approval(rig, env, second["approval_id"]))["status"] == "pending"

    cancelled = await rig.client.post(
        f"{env.path}/deployments/{second['id']}/cancel", json={}, headers=rig.admin.headers
    )
    assert cancelled.json()["status"] == "cancelled"
    await env.settle()
    closed = await rig.client.post(approve(second), json={}, headers=rig.admin.headers)
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "subject_closed"
