"""Deployments and approvals under an environment (PRODUCT.md §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field, StringConstraints

from byteor_cloud.api.auth import scoped
from byteor_cloud.api.deps import DbSession, PageParams, SettingsDep
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut, ResponseModel, StrictModel
from byteor_cloud.approvals import service as approvals
from byteor_cloud.approvals.rules import ApprovalStatus
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.deployments import Approval, Deployment
from byteor_cloud.deployments import service as deployments
from byteor_cloud.deployments.rules import DeploymentStatus, Strategy, TargetSelector
from byteor_cloud.signing.keys import signing_box

E = "/orgs/{org_id}/projects/{project_id}/environments/{environment_id}"
router = APIRouter(prefix=E, tags=["deployments"])

ViewEnvironment = Annotated[Scope, Depends(scoped(Permission.view_environment))]
OperateEnvironment = Annotated[Scope, Depends(scoped(Permission.operate_environment))]
Reason = Annotated[str, StringConstraints(max_length=1000)]
Hash = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=26)]


class PlanIn(StrictModel):
    version_id: Id
    bundle_id: Id
    targets: TargetSelector = Field(
        description='{"all": true} | {"agent_ids": [...]} | {"labels": {...}}'
    )
    strategy: Strategy = Field(description='{"type": "all_at_once"} or {"type": "phased", ...}')


class DeploymentIn(PlanIn):
    plan_hash: Hash | None = Field(None, description="The plan's hash; 409 plan_changed if stale")


class Artifacts(ResponseModel):
    spec_hash: str | None
    bundle_hash: str | None


class PlanTargetOut(ResponseModel):
    agent_id: str
    name: str
    status: str
    labels: dict[str, str]
    batch: int
    change: str
    current: dict[str, Any] | None
    new: Artifacts


class PlanOut(ResponseModel):
    plan_hash: str
    version_id: str
    bundle_id: str
    spec_hash: str
    bundle_hash: str
    targets: list[PlanTargetOut]
    capabilities: list[str]
    requires_approval: bool
    require_distinct_approver: bool
    strategy: dict[str, Any]
    in_flight: int
    max_inflight_deployments: int


class DeploymentOut(ResponseModel):
    # Read from the row's `selector` or, when re-validated, by its own name.
    model_config = ConfigDict(from_attributes=True, validate_by_name=True)

    id: str
    environment_id: str
    version_id: str
    bundle_id: str
    spec_hash: str
    bundle_hash: str
    capabilities: list[str]
    targets: dict[str, Any] = Field(validation_alias="selector")
    strategy: dict[str, Any]
    plan_hash: str
    status: DeploymentStatus
    status_reason: str | None
    requested_by: str | None
    approval_id: str | None
    previous_deployment_id: str | None
    bundle_digest: str | None
    rollback_digest: str | None
    current_batch: int
    revision: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class DeploymentDetailOut(DeploymentOut):
    target_counts: dict[str, int]
    approval_status: ApprovalStatus | None


class TargetOut(ResponseModel):
    id: str = Field(description="The target's id (audit records name it)")
    agent_id: str
    agent_name: str
    batch: int
    phase: str
    epoch: int | None
    state: str
    previous: dict[str, Any] | None
    error: str | None
    assigned_at: datetime | None
    updated_at: datetime


class DecisionIn(StrictModel):
    reason: Reason | None = None


class Subject(ResponseModel):
    type: str
    id: str


class ApprovalOut(ResponseModel):
    id: str
    environment_id: str
    subject: Subject
    plan_hash: str | None
    spec_hash: str
    capabilities: list[str]
    environment_posture: str
    requested_by: str | None
    status: ApprovalStatus
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    expires_at: datetime
    created_at: datetime
    revision: int


class CredentialOut(ResponseModel):
    approval_id: str
    kid: str | None
    credential: str
    expires_at: datetime


def render_approval(approval: Approval) -> ApprovalOut:
    return ApprovalOut.model_validate(
        {
            **{
                name: getattr(approval, name)
                for name in ApprovalOut.model_fields
                if name != "subject"
            },
            "subject": {"type": approval.subject_type, "id": approval.subject_id},
        }
    )


async def _detail(session: DbSession, deployment: Deployment) -> DeploymentDetailOut:
    counts = await deployments.target_counts(session, deployment.id)
    approval_status = await approvals.approval_status_of(session, deployment)
    return DeploymentDetailOut(
        **DeploymentOut.model_validate(deployment).model_dump(),
        target_counts=counts,
        approval_status=approval_status,
    )


@router.post("/deployments/plan", summary="Resolve targets and the plan hash; nothing is stored")
async def plan(body: PlanIn, session: DbSession, scope: OperateEnvironment) -> PlanOut:
    result = await deployments.make_plan(
        session,
        scope,
        version_id=body.version_id,
        bundle_id=body.bundle_id,
        selector=body.targets,
        strategy=body.strategy,
    )
    return PlanOut(
        plan_hash=result.plan_hash,
        version_id=result.version.id,
        bundle_id=result.bundle.id,
        spec_hash=result.version.spec_hash,
        bundle_hash=result.bundle.bundle_hash,
        targets=[
            PlanTargetOut(
                agent_id=target.agent.id,
                name=target.agent.name,
                status=target.agent.status,
                labels=target.agent.labels,
                batch=target.batch,
                change=target.change,
                current=target.current,
                new=Artifacts(
                    spec_hash=result.version.spec_hash, bundle_hash=result.bundle.bundle_hash
                ),
            )
            for target in result.targets
        ],
        capabilities=sorted(result.version.capabilities),
        requires_approval=result.requires_approval,
        require_distinct_approver=result.policy.require_distinct_approver,
        strategy=result.strategy,
        in_flight=await deployments.inflight_count(session, result.environment.id),
        max_inflight_deployments=result.environment.max_inflight_deployments,
    )


@router.post("/deployments", status_code=201, summary="Create a deployment (approval per policy)")
async def create(
    body: DeploymentIn, session: DbSession, scope: OperateEnvironment
) -> DeploymentDetailOut:
    deployment = await deployments.create_deployment(
        session,
        scope,
        version_id=body.version_id,
        bundle_id=body.bundle_id,
        selector=body.targets,
        strategy=body.strategy,
        expected_plan_hash=body.plan_hash,
    )
    return await _detail(session, deployment)


@router.get("/deployments", summary="Deployments of the environment, newest first")
async def list_deployments(
    session: DbSession,
    scope: ViewEnvironment,
    page: PageParams,
    status: DeploymentStatus | None = None,
) -> PageOut[DeploymentOut]:
    result = await deployments.list_deployments(session, scope, page=page, status=status)
    return page_out(result, DeploymentOut.model_validate)


@router.get("/deployments/{deployment_id}", summary="A deployment with its target counts")
async def get(
    deployment_id: str, session: DbSession, scope: ViewEnvironment
) -> DeploymentDetailOut:
    return await _detail(session, await deployments.get_deployment(session, scope, deployment_id))


@router.get("/deployments/{deployment_id}/targets", summary="A deployment's per-agent targets")
async def targets(
    deployment_id: str, session: DbSession, scope: ViewEnvironment, page: PageParams
) -> PageOut[TargetOut]:
    result = await deployments.list_targets(session, scope, deployment_id, page=page)
    return page_out(result, TargetOut.model_validate)


@router.post("/deployments/{deployment_id}/cancel", summary="Cancel before it reaches agents")
async def cancel(
    deployment_id: str, body: DecisionIn, session: DbSession, scope: OperateEnvironment
) -> DeploymentDetailOut:
    deployment = await deployments.cancel(session, scope, deployment_id, reason=body.reason)
    return await _detail(session, deployment)


@router.post("/deployments/{deployment_id}/rollback", summary="Restore the previous deployment")
async def rollback(
    deployment_id: str, body: DecisionIn, session: DbSession, scope: OperateEnvironment
) -> DeploymentDetailOut:
    deployment = await deployments.request_rollback(
        session, scope, deployment_id, reason=body.reason
    )
    return await _detail(session, deployment)


@router.get("/approvals", summary="Approvals of the environment, newest first")
async def list_approvals(
    session: DbSession,
    scope: ViewEnvironment,
    page: PageParams,
    status: ApprovalStatus | None = None,
) -> PageOut[ApprovalOut]:
    result = await approvals.list_approvals(session, scope, page=page, status=status)
    return page_out(result, render_approval)


@router.get("/approvals/{approval_id}", summary="An approval")
async def get_approval(approval_id: str, session: DbSession, scope: ViewEnvironment) -> ApprovalOut:
    return render_approval(await approvals.get_approval(session, scope, approval_id))


@router.post("/approvals/{approval_id}/approve", summary="Approve (issues the credential)")
async def approve(
    approval_id: str,
    body: DecisionIn,
    session: DbSession,
    scope: OperateEnvironment,
    settings: SettingsDep,
) -> ApprovalOut:
    approval = await approvals.approve(
        session, scope, approval_id, reason=body.reason, box=signing_box(settings.master_key())
    )
    return render_approval(approval)


@router.post("/approvals/{approval_id}/deny", summary="Deny a pending request")
async def deny(
    approval_id: str, body: DecisionIn, session: DbSession, scope: OperateEnvironment
) -> ApprovalOut:
    return render_approval(await approvals.deny(session, scope, approval_id, reason=body.reason))


@router.post("/approvals/{approval_id}/revoke", summary="Revoke an approval")
async def revoke(
    approval_id: str, body: DecisionIn, session: DbSession, scope: OperateEnvironment
) -> ApprovalOut:
    return render_approval(
        await approvals.revoke_by_operator(session, scope, approval_id, reason=body.reason)
    )


@router.get("/approvals/{approval_id}/credential", summary="The issued approval credential")
async def credential(approval_id: str, session: DbSession, scope: ViewEnvironment) -> CredentialOut:
    approval = await approvals.get_approval(session, scope, approval_id)
    return CredentialOut(
        approval_id=approval.id,
        kid=approval.credential_kid,
        credential=approvals.credential_of(approval),
        expires_at=approval.expires_at,
    )
