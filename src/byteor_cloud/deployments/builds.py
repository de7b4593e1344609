"""Building a deployment's bundle (for its rollout or its rollback): the steps the
`bundle_build` job runs, each in its own transaction — begin (record `building`, or stop
when the approved plan no longer holds), render (the signed bundle from the stored inputs),
finish (record the digest, assign the first agents) or fail (with the reason)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.approvals import service as approvals
from byteor_cloud.approvals.rules import ApprovalStatus
from byteor_cloud.audit import service as audit
from byteor_cloud.config import Settings
from byteor_cloud.core.principal import SYSTEM, CredentialKind, Principal
from byteor_cloud.db.models.authoring import ConfigBundle, Version
from byteor_cloud.db.models.deployments import Approval, Deployment
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.deploybundle.build import BuiltBundle, BundleInputs, build_bundle
from byteor_cloud.deployments import rollout
from byteor_cloud.deployments.rules import DeploymentEvent, DeploymentStatus, plan_hash
from byteor_cloud.deployments.service import (
    deployment_target,
    policy_of,
    previous_active,
    transition,
)
from byteor_cloud.signing import repository as signing_keys
from byteor_cloud.signing.keys import RawSigner, raw_signer, signing_box
from byteor_cloud.signing.service import signing_keys_document
from byteor_cloud.tenancy.jobs import blob_prefix

# Rollbacks are issued by the control plane itself (PRODUCT.md §9: `system:rollback`).
ROLLBACK_ISSUER = Principal(CredentialKind.system, "rollback", None, "system:rollback")


def bundle_key(deployment: Deployment, digest: str) -> str:
    return bundle_key_of(
        deployment.org_id, deployment.project_id, deployment.environment_id, digest
    )


def bundle_key_of(org_id: str, project_id: str, environment_id: str, digest: str) -> str:
    """Stored by digest under the environment's prefix (purged with it)."""
    prefix = blob_prefix(org_id, project_id, environment_id)
    return f"{prefix}deploy-bundles/{digest.replace(':', '-')}.tar.gz"


@dataclass(frozen=True)
class _Inputs:
    inputs: BundleInputs
    sign: RawSigner


class BuildRefused(Exception):
    """The build cannot succeed (the deployment fails with this reason)."""


async def render_bundle(
    session: AsyncSession, settings: Settings, deployment: Deployment, purpose: str
) -> BuiltBundle:
    """The deploy bundle for the deployment (or its rollback), from its stored inputs: the
    same inputs give the same bytes (see docs/deploy-bundle.md)."""
    prepared = await _prepare(session, settings, deployment, purpose)
    return build_bundle(prepared.inputs, sign=prepared.sign)


async def _prepare(
    session: AsyncSession, settings: Settings, deployment: Deployment, purpose: str
) -> _Inputs:
    source = deployment
    credential = deployment.approval_credential
    if purpose == "rollback":
        previous = await session.get(Deployment, deployment.previous_deployment_id or "")
        if previous is None:
            raise BuildRefused("the deployment to restore no longer exists")
        source = previous
        if deployment.rollback_credential is None:
            # Issued once per rollback (kept, so a retried build gives the same bytes).
            deployment.rollback_credential = await _rollback_credential(
                session, settings, deployment, previous
            )
        credential = deployment.rollback_credential
    version = await session.get(Version, source.version_id)
    bundle = await session.get(ConfigBundle, source.bundle_id)
    if version is None or bundle is None:
        raise BuildRefused("the version or config bundle no longer exists")
    key = await signing_keys.active_key(session, deployment.org_id)
    if key is None:
        raise BuildRefused("the organization has no active signing key")
    return _Inputs(
        BundleInputs(
            org_id=deployment.org_id,
            project_id=deployment.project_id,
            environment_id=deployment.environment_id,
            deployment_id=deployment.id,
            version_id=version.id,
            spec_hash=version.spec_hash,
            bundle_hash=bundle.bundle_hash,
            spec_kv=version.spec_kv.encode(),
            runtime_config=dict(bundle.runtime_config),
            secret_refs=dict(bundle.secret_refs),
            signing_keys_document=await signing_keys_document(session, deployment.org_id),
            approval_credential=credential,
        ),
        raw_signer(key.id, key.private_key_encrypted, signing_box(settings.master_key())),
    )


async def _rollback_credential(
    session: AsyncSession, settings: Settings, deployment: Deployment, previous: Deployment
) -> str | None:
    """A fresh credential for the restored spec when the environment gates deployments."""
    environment = await session.get_one(Environment, deployment.environment_id)
    policy = policy_of(environment)
    if not policy.deploy_requires_approval:
        return None
    anchor = await session.get(Approval, deployment.approval_id or "") or Approval(
        org_id=deployment.org_id,
        project_id=deployment.project_id,
        environment_id=deployment.environment_id,
        spec_hash=previous.spec_hash,
        capabilities=previous.capabilities,
    )
    token, kid, expires_at = await approvals.issue_credential(
        session,
        signing_box(settings.master_key()),
        approval=anchor,
        posture=environment.posture,
        issued_by=ROLLBACK_ISSUER.name,
        ttl_s=policy.approval_ttl_s,
        spec_hash=previous.spec_hash,
        capabilities=list(previous.capabilities),
        approval_id=previous.approval_id or f"rollback-{deployment.id}",
    )
    await audit.record(
        session,
        ROLLBACK_ISSUER,
        "deployment.rollback_credential",
        deployment_target(deployment),
        details={"kid": kid, "spec_hash": previous.spec_hash, "expires_at": str(expires_at)},
    )
    return token


async def _still_approved(session: AsyncSession, deployment: Deployment) -> str | None:
    """Why the approved plan no longer holds, if it does not: the intent hash recomputed
    from the stored inputs, or the environment's posture, differ from what was approved."""
    if deployment.approval_id is None:
        return None
    approval = await session.get(Approval, deployment.approval_id)
    if approval is None or approval.status != ApprovalStatus.approved.value:
        return "the approval is no longer valid"
    version = await session.get(Version, deployment.version_id)
    bundle = await session.get(ConfigBundle, deployment.bundle_id)
    environment = await session.get_one(Environment, deployment.environment_id)
    if version is None or bundle is None:
        return "plan_changed"
    current = plan_hash(
        spec_hash=version.spec_hash,
        bundle_hash=bundle.bundle_hash,
        selector=deployment.selector,
        strategy=deployment.strategy,
    )
    if current != approval.plan_hash or environment.posture != approval.environment_posture:
        return "plan_changed"
    return None


async def _locked(session: AsyncSession, deployment_id: str) -> Deployment | None:
    deployment: Deployment | None = await session.scalar(
        select(Deployment).where(Deployment.id == deployment_id).with_for_update()
    )
    return deployment


async def begin(session: AsyncSession, deployment_id: str, purpose: str) -> bool:
    """Whether a build should run now. An approved rollout whose plan no longer holds is
    revoked (`plan_changed`) and cancelled; otherwise it is recorded as `building`. A
    deployment no longer waiting for this build is left alone (False)."""
    deployment = await _locked(session, deployment_id)
    if deployment is None:
        return False
    status = DeploymentStatus(deployment.status)
    if purpose == "rollback":
        return status is DeploymentStatus.rolling_back and deployment.rollback_digest is None
    if status is DeploymentStatus.approved:
        reason = await _still_approved(session, deployment)
        if reason is not None:
            await _revoke_changed(session, deployment, reason)
            return False
        await transition(session, SYSTEM, deployment, DeploymentEvent.build_started)
        return True
    return status is DeploymentStatus.building


async def render(
    session: AsyncSession, settings: Settings, deployment_id: str, purpose: str
) -> tuple[BuiltBundle, str]:
    """The bundle and the key it is stored under; BuildRefused when it cannot be built."""
    deployment = await session.get_one(Deployment, deployment_id)
    built = await render_bundle(session, settings, deployment, purpose)
    return built, bundle_key(deployment, built.digest)


async def finish(
    session: AsyncSession, deployment_id: str, purpose: str, *, digest: str, key: str, size: int
) -> None:
    """Record the stored bundle and assign the first agents (a rollout's batch 0, or every
    target a rollback restores), if the deployment still waits for this build."""
    deployment = await _locked(session, deployment_id)
    if deployment is None:
        return
    if purpose == "rollout" and deployment.status == DeploymentStatus.building.value:
        deployment.bundle_digest, deployment.bundle_key = digest, key
        previous = await previous_active(session, deployment)
        deployment.previous_deployment_id = previous.id if previous else None
        await transition(
            session,
            SYSTEM,
            deployment,
            DeploymentEvent.build_succeeded,
            details={"bundle_digest": digest, "size": size},
        )
        await rollout.assign_batch(session, deployment, 0)
        await rollout.advance(session, deployment)
    elif (
        purpose == "rollback"
        and deployment.status == DeploymentStatus.rolling_back.value
        and deployment.rollback_digest is None
    ):
        previous = await session.get_one(Deployment, deployment.previous_deployment_id or "")
        deployment.rollback_digest, deployment.rollback_key = digest, key
        await rollout.assign_rollback(session, deployment, previous)
        await rollout.advance(session, deployment)


async def fail(session: AsyncSession, deployment_id: str, purpose: str, reason: str) -> None:
    """A build that cannot succeed: the rollout `failed`, or the rollback `failed`."""
    deployment = await _locked(session, deployment_id)
    if deployment is None:
        return
    status = DeploymentStatus(deployment.status)
    if purpose == "rollout" and status is DeploymentStatus.building:
        await transition(session, SYSTEM, deployment, DeploymentEvent.build_failed, reason=reason)
    elif purpose == "rollback" and status is DeploymentStatus.rolling_back:
        await transition(
            session, SYSTEM, deployment, DeploymentEvent.rollback_failed, reason=reason
        )


async def _revoke_changed(session: AsyncSession, deployment: Deployment, reason: str) -> None:
    approval = await session.get(Approval, deployment.approval_id or "")
    if approval is not None and approval.status == ApprovalStatus.approved.value:
        await approvals.revoke(session, SYSTEM, approval, reason=reason)
    elif DeploymentStatus(deployment.status) is DeploymentStatus.approved:
        await transition(session, SYSTEM, deployment, DeploymentEvent.cancel, reason=reason)
