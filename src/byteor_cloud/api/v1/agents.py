"""Agents under an environment: enrollment tokens, enrollment, and the operators' view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StringConstraints

from byteor_cloud.agents import enrollment
from byteor_cloud.agents import service as agents
from byteor_cloud.agents.rules import MISSED_INTERVALS, AgentStatus
from byteor_cloud.api.auth import bearer_token, scoped
from byteor_cloud.api.deps import DbSession, PageParams
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.ratelimit import enforce
from byteor_cloud.api.schemas import PageOut, ResponseModel, StrictModel
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import InvalidInput, Unauthenticated
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.ratelimit import RouteClass
from byteor_cloud.signing.service import signing_keys_document

E = "/orgs/{org_id}/projects/{project_id}/environments/{environment_id}"
router = APIRouter(prefix=E, tags=["agents"])

ViewEnvironment = Annotated[Scope, Depends(scoped(Permission.view_environment))]
OperateEnvironment = Annotated[Scope, Depends(scoped(Permission.operate_environment))]
LabelText = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MAX_LABELS = 32


class EnrollmentTokenIn(StrictModel):
    expires_in_s: int | None = Field(None, description="Default 3600, at most 604800")


class EnrollmentTokenOut(ResponseModel):
    id: str
    token_prefix: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_agent_id: str | None
    revoked_at: datetime | None


class NewEnrollmentTokenOut(EnrollmentTokenOut):
    token: str = Field(description="Shown once")


class EnrollIn(StrictModel):
    name: str | None = Field(None, max_length=100)
    labels: dict[LabelText, LabelText] = Field(default_factory=dict)
    hostname: str | None = Field(None, max_length=255)
    agent_version: str | None = Field(None, max_length=64)


class EnrolledOut(ResponseModel):
    agent_id: str
    api_key: str
    environment_id: str
    org_id: str
    project_id: str
    heartbeat_interval_s: int
    signing_keys: dict[str, Any]


class AgentOut(ResponseModel):
    id: str
    environment_id: str
    name: str
    hostname: str | None
    labels: dict[str, str]
    agent_version: str | None
    status: AgentStatus
    health: str | None
    enrolled_at: datetime
    last_heartbeat_at: datetime | None
    heartbeat_age_s: float | None
    running_deployment: dict[str, Any] | None
    tuning: dict[str, Any] | None
    metrics: dict[str, Any] | None


class RotateIn(StrictModel):
    overlap_s: int | None = Field(None, description="How long the old key keeps working")


class RotatedOut(ResponseModel):
    agent_id: str
    api_key: str
    previous_keys_expire_at: datetime


def render(agent: Agent) -> AgentOut:
    age = (utcnow() - agent.last_heartbeat_at).total_seconds() if agent.last_heartbeat_at else None
    return AgentOut(
        id=agent.id,
        environment_id=agent.environment_id,
        name=agent.name,
        hostname=agent.hostname,
        labels=agent.labels,
        agent_version=agent.agent_version,
        status=AgentStatus(agent.status),
        health=agent.health,
        enrolled_at=agent.enrolled_at,
        last_heartbeat_at=agent.last_heartbeat_at,
        heartbeat_age_s=age,
        running_deployment=agent.running,
        tuning=agent.tuning,
        metrics=agent.metrics,
    )


def label_filters(
    label: Annotated[
        list[str] | None, Query(description="key:value, repeatable (all match)")
    ] = None,
) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in (label or [])[: agents.MAX_LABEL_FILTERS]:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise InvalidInput(
                "label filters are key:value", code="invalid_filter", details={"field": "label"}
            )
        result[key] = value
    return result


@router.get("/enrollment-tokens", summary="Enrollment tokens of the environment")
async def list_enrollment_tokens(
    session: DbSession, scope: OperateEnvironment, page: PageParams
) -> PageOut[EnrollmentTokenOut]:
    result = await enrollment.list_tokens(session, scope, page=page)
    return page_out(result, EnrollmentTokenOut.model_validate)


@router.post("/enrollment-tokens", status_code=201, summary="Create a single-use token")
async def create_enrollment_token(
    body: EnrollmentTokenIn, session: DbSession, scope: OperateEnvironment
) -> NewEnrollmentTokenOut:
    created = await enrollment.create_token(session, scope, expires_in_s=body.expires_in_s)
    return NewEnrollmentTokenOut.model_validate(
        {
            **EnrollmentTokenOut.model_validate(created.record).model_dump(),
            "token": created.plaintext,
        }
    )


@router.delete("/enrollment-tokens/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_enrollment_token(
    token_id: str, session: DbSession, scope: OperateEnvironment
) -> None:
    await enrollment.revoke_token(session, scope, token_id=token_id)


@router.post("/agents", status_code=201, summary="Enroll an agent (enrollment token)")
async def enroll_agent(
    org_id: str,
    project_id: str,
    environment_id: str,
    body: EnrollIn,
    request: Request,
    session: DbSession,
) -> EnrolledOut:
    await enforce(request, RouteClass.enrollment, environment_id)
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("an enrollment token is required", code="unauthenticated")
    if len(body.labels) > MAX_LABELS:
        raise InvalidInput(
            f"at most {MAX_LABELS} labels", code="too_many_labels", details={"field": "labels"}
        )
    enrolled = await enrollment.enroll(
        session,
        token=token,
        org_id=org_id,
        project_id=project_id,
        environment_id=environment_id,
        name=body.name,
        hostname=body.hostname,
        labels=dict(body.labels),
        agent_version=body.agent_version,
    )
    return EnrolledOut(
        agent_id=enrolled.agent.id,
        api_key=enrolled.api_key,
        environment_id=environment_id,
        org_id=org_id,
        project_id=project_id,
        heartbeat_interval_s=enrolled.environment.heartbeat_interval_s,
        signing_keys=await signing_keys_document(session, org_id),
    )


@router.get("/agents", summary="Agents of the environment (filters: status, label)")
async def list_agents(
    session: DbSession,
    scope: ViewEnvironment,
    page: PageParams,
    labels: Annotated[dict[str, str], Depends(label_filters)],
    status: AgentStatus | None = None,
) -> PageOut[AgentOut]:
    result = await agents.list_agents(session, scope, page=page, status=status, labels=labels)
    return page_out(result, render)


@router.get("/agents/{agent_id}", summary="An agent")
async def get_agent(agent_id: str, session: DbSession, scope: ViewEnvironment) -> AgentOut:
    return render(await agents.get_agent(session, scope, agent_id))


@router.delete("/agents/{agent_id}", status_code=204, summary="Delete an agent (kills its key)")
async def delete_agent(agent_id: str, session: DbSession, scope: OperateEnvironment) -> None:
    await agents.delete_agent(session, scope, agent_id)


@router.post("/agents/{agent_id}/rotate-key", summary="Issue a new runtime key")
async def rotate_key(
    agent_id: str, body: RotateIn, session: DbSession, scope: OperateEnvironment
) -> RotatedOut:
    rotated = await agents.rotate_key(session, scope, agent_id, overlap_s=body.overlap_s)
    return RotatedOut(
        agent_id=rotated.agent.id,
        api_key=rotated.api_key,
        previous_keys_expire_at=rotated.previous_expires_at,
    )


__all__ = ["MISSED_INTERVALS", "router"]
