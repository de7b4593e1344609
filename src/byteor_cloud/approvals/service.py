"""Approvals: requested when policy requires, decided by operators and admins, with the
approval credential issued on approval (PRODUCT.md §9)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.approvals.credential import encode_credential, issue_payload
from byteor_cloud.approvals.rules import (
    PENDING_LIFETIME,
    ApprovalEvent,
    ApprovalStatus,
    check_distinct_approver,
    next_status,
)
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.core.errors import Conflict, InvalidState, NotFound
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.principal import SYSTEM, Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.deployments import Approval, Deployment
from byteor_cloud.db.scoped import get_in_environment, page_in_environment
from byteor_cloud.deployments import service as deployments
from byteor_cloud.deployments.rules import DeploymentEvent, DeploymentStatus
from byteor_cloud.deployments.service import Plan
from byteor_cloud.signing import repository as signing_keys
from byteor_cloud.signing.keys import raw_signer

# Deployments that have not reached agents: revoking or expiring their approval cancels them.
NOT_ON_AGENTS = frozenset({DeploymentStatus.approved, DeploymentStatus.building})


def approval_target(approval: Approval) -> AuditTarget:
    return AuditTarget.in_environment("approval", approval)


async def request_for_deployment(
    session: AsyncSession, principal: Principal, deployment: Deployment, plan: Plan
) -> Approval:
    """The pending request for a deployment the policy gates (lapses after 7 days)."""
    now = utcnow()
    approval = Approval(
        org_id=deployment.org_id,
        project_id=deployment.project_id,
        environment_id=deployment.environment_id,
        subject_type="deployment",
        subject_id=deployment.id,
        plan_hash=deployment.plan_hash,
        spec_hash=deployment.spec_hash,
        capabilities=list(deployment.capabilities),
        environment_posture=plan.environment.posture,
        requested_by=principal.user_id,
        status=ApprovalStatus.pending.value,
        expires_at=now + PENDING_LIFETIME,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    session.add(approval)
    await session.flush()
    await audit.record(
        session,
        principal,
        "approval.request",
        approval_target(approval),
        details={
            "subject": {"type": "deployment", "id": deployment.id},
            "plan_hash": deployment.plan_hash,
        },
    )
    return approval


async def get_approval(
    session: AsyncSession, scope: Scope, approval_id: str, *, lock: bool = False
) -> Approval:
    return await get_in_environment(
        session, Approval, scope, approval_id, what="approval", lock=lock
    )


async def list_approvals(
    session: AsyncSession, scope: Scope, *, page: PageRequest, status: ApprovalStatus | None
) -> Page[Approval]:
    return await page_in_environment(session, Approval, scope, page=page, status=status)


async def _subject(session: AsyncSession, approval: Approval) -> Deployment:
    deployment = await session.scalar(
        select(Deployment)
        .where(Deployment.id == approval.subject_id, Deployment.org_id == approval.org_id)
        .with_for_update()
    )
    if deployment is None:  # cascades delete both; a dangling approval is a bug
        raise NotFound("the approval's deployment no longer exists")
    return deployment


async def _move(
    session: AsyncSession,
    principal: Principal,
    approval: Approval,
    event: ApprovalEvent,
    *,
    reason: str | None,
    decided: bool = True,
) -> None:
    before = ApprovalStatus(approval.status)
    after = next_status(before, event)
    now = utcnow()
    approval.status = after.value
    approval.reason = reason
    if decided:
        approval.decided_by = principal.user_id
        approval.decided_at = now
    approval.revision += 1
    approval.updated_at = now
    await audit.record(
        session,
        principal,
        f"approval.{after.value}",
        approval_target(approval),
        details={"from": before.value, "reason": reason, "subject_id": approval.subject_id},
    )


async def approve(
    session: AsyncSession, scope: Scope, approval_id: str, *, reason: str | None, box: SecretBox
) -> Approval:
    """Approve (distinct person when the policy says so), issue the credential, start the
    deployment (subject to the in-flight cap)."""
    environment = await deployments.environment_of(session, scope, lock=True)
    approval = await get_approval(session, scope, approval_id, lock=True)
    next_status(ApprovalStatus(approval.status), ApprovalEvent.approve)
    policy = deployments.policy_of(environment)
    check_distinct_approver(
        required=policy.require_distinct_approver,
        requested_by=approval.requested_by,
        decided_by=scope.principal.user_id,
    )
    deployment = await _subject(session, approval)
    if DeploymentStatus(deployment.status) is not DeploymentStatus.pending_approval:
        raise InvalidState(
            f"the deployment is {deployment.status}",
            code="subject_closed",
            details={"deployment_status": deployment.status},
        )
    await deployments.check_inflight_cap(session, environment)
    credential, kid, expires_at = await issue_credential(
        session,
        box,
        approval=approval,
        posture=environment.posture,
        issued_by=f"user:{scope.principal.user_id}",
        ttl_s=policy.approval_ttl_s,
    )
    approval.credential, approval.credential_kid, approval.expires_at = credential, kid, expires_at
    await _move(session, scope.principal, approval, ApprovalEvent.approve, reason=reason)
    deployment.approval_credential = credential
    await deployments.transition(
        session,
        scope.principal,
        deployment,
        DeploymentEvent.approve,
        details={"approval_id": approval.id},
    )
    await deployments.enqueue_build(session, deployment, purpose="rollout")
    await session.flush()
    return approval


async def issue_credential(
    session: AsyncSession,
    box: SecretBox,
    *,
    approval: Approval,
    posture: str,
    issued_by: str,
    ttl_s: int,
    spec_hash: str | None = None,
    capabilities: list[str] | None = None,
    approval_id: str | None = None,
) -> tuple[str, str, datetime]:
    """Sign an approval credential v1 with the org's active key: (token, kid, expires_at)."""
    key = await signing_keys.active_key(session, approval.org_id)
    if key is None:
        raise InvalidState("the organization has no active signing key", code="no_signing_key")
    payload = issue_payload(
        kid=key.id,
        org_id=approval.org_id,
        project_id=approval.project_id,
        environment_id=approval.environment_id,
        environment_posture=posture,
        spec_hash=spec_hash or approval.spec_hash,
        capabilities=capabilities if capabilities is not None else approval.capabilities,
        issued_by=issued_by,
        approval_id=approval_id or approval.id,
        ttl=timedelta(seconds=ttl_s),
    )
    token = encode_credential(payload, raw_signer(key.id, key.private_key_encrypted, box))
    return token, key.id, payload.expires_at


async def deny(
    session: AsyncSession, scope: Scope, approval_id: str, *, reason: str | None
) -> Approval:
    approval = await get_approval(session, scope, approval_id, lock=True)
    await _move(session, scope.principal, approval, ApprovalEvent.deny, reason=reason)
    deployment = await _subject(session, approval)
    if DeploymentStatus(deployment.status) is DeploymentStatus.pending_approval:
        await deployments.transition(
            session, scope.principal, deployment, DeploymentEvent.deny, reason=reason or "denied"
        )
    await session.flush()
    return approval


async def revoke(
    session: AsyncSession,
    principal: Principal,
    approval: Approval,
    *,
    reason: str,
) -> Approval:
    """Revoke an approved approval: a deployment that has not reached agents is cancelled;
    one already on agents keeps running, and the revocation is audited on it."""
    await _move(session, principal, approval, ApprovalEvent.revoke, reason=reason)
    deployment = await _subject(session, approval)
    status = DeploymentStatus(deployment.status)
    if status in NOT_ON_AGENTS:
        await deployments.transition(
            session,
            principal,
            deployment,
            DeploymentEvent.cancel,
            reason=f"approval revoked: {reason}",
        )
    else:
        await audit.record(
            session,
            principal,
            "deployment.approval_revoked",
            deployments.deployment_target(deployment),
            details={"approval_id": approval.id, "status": status.value, "reason": reason},
        )
    await session.flush()
    return approval


async def revoke_by_operator(
    session: AsyncSession, scope: Scope, approval_id: str, *, reason: str | None
) -> Approval:
    approval = await get_approval(session, scope, approval_id, lock=True)
    return await revoke(
        session, scope.principal, approval, reason=reason or "revoked by an operator"
    )


async def expire(session: AsyncSession, principal: Principal, approval: Approval) -> None:
    """A lapsed request or credential: `expired`; a deployment not yet on agents is
    cancelled, one on agents is audited."""
    was = ApprovalStatus(approval.status)
    await _move(session, principal, approval, ApprovalEvent.expire, reason="expired", decided=False)
    deployment = await _subject(session, approval)
    status = DeploymentStatus(deployment.status)
    if status is DeploymentStatus.pending_approval or (
        was is ApprovalStatus.approved and status in NOT_ON_AGENTS
    ):
        await deployments.transition(
            session, principal, deployment, DeploymentEvent.cancel, reason="approval expired"
        )
    elif was is ApprovalStatus.approved:
        await audit.record(
            session,
            principal,
            "deployment.approval_expired",
            deployments.deployment_target(deployment),
            details={"approval_id": approval.id, "status": status.value},
        )


async def expire_due(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """The expiry sweep: approvals still pending or approved and past `expires_at` expire
    (see `expire`). Idempotent; rows another sweep holds are skipped."""
    due = (
        await session.scalars(
            select(Approval)
            .where(
                Approval.status.in_([ApprovalStatus.pending.value, ApprovalStatus.approved.value]),
                Approval.expires_at <= now,
            )
            .order_by(Approval.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for approval in due:
        await expire(session, SYSTEM, approval)
    return len(due)


async def approval_status_of(
    session: AsyncSession, deployment: Deployment
) -> ApprovalStatus | None:
    """The status of the deployment's approval (None when the policy needed none)."""
    if deployment.approval_id is None:
        return None
    status = await session.scalar(
        select(Approval.status).where(
            Approval.id == deployment.approval_id, Approval.org_id == deployment.org_id
        )
    )
    return ApprovalStatus(status) if status is not None else None


def credential_of(approval: Approval) -> str:
    if ApprovalStatus(approval.status) is not ApprovalStatus.approved or not approval.credential:
        raise Conflict(
            f"the approval is {approval.status}: no credential is valid",
            code="not_approved",
            details={"status": approval.status},
        )
    return approval.credential
