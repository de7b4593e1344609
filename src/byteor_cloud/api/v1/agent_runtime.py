"""`/api/v1/agents/{agent_id}/…`: the routes agents call with their runtime key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import Field, StringConstraints

from byteor_cloud.agents import runtime
from byteor_cloud.agents.rules import AgentScope
from byteor_cloud.api.auth import bearer_token
from byteor_cloud.api.deps import DbSession, ReadSession
from byteor_cloud.api.ratelimit import enforce
from byteor_cloud.api.schemas import ResponseModel, StrictModel
from byteor_cloud.identity import tokens
from byteor_cloud.ratelimit import RouteClass
from byteor_cloud.signing.service import signing_keys_document

router = APIRouter(prefix="/agents/{agent_id}", tags=["agent runtime"])

Short = Annotated[str, StringConstraints(max_length=64)]
Reason = Annotated[str, StringConstraints(max_length=512)]
HostValue = Annotated[str, StringConstraints(max_length=256)] | int | float | bool


class Running(StrictModel):
    deployment_id: str | None = Field(None, max_length=26)
    epoch: int = Field(0, ge=0, le=2**31)
    spec_hash: str | None = Field(None, max_length=71)
    bundle_hash: str | None = Field(None, max_length=71)


class TuningIssue(StrictModel):
    setting: Short
    reason: Reason


class Tuning(StrictModel):
    requested: dict[Short, Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict, max_length=64
    )
    applied: dict[Short, Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict, max_length=64
    )
    degraded: list[TuningIssue] = Field(default_factory=list, max_length=64)
    failed: list[TuningIssue] = Field(default_factory=list, max_length=64)
    host: dict[Short, HostValue] = Field(default_factory=dict, max_length=64)


class Metrics(StrictModel):
    records_in: int = Field(0, ge=0)
    records_out: int = Field(0, ge=0)
    errors: int = Field(0, ge=0)
    lag: float = Field(0, ge=0)


class HeartbeatIn(StrictModel):
    """Every field optional; sizes bounded (the whole body is capped at 64 KiB too)."""

    agent_version: Short | None = None
    status: Literal["ok", "degraded", "failed"] | None = None
    running: Running | None = None
    tuning: Tuning | None = None
    metrics: Metrics | None = None


class HeartbeatOut(ResponseModel):
    heartbeat_interval_s: int
    desired_state_etag: str


class DesiredStateOut(ResponseModel):
    assignment: dict[str, Any] | None
    replay_orders: list[dict[str, Any]]
    signing_keys_etag: str


async def limit_agents(request: Request) -> None:
    token = bearer_token(request)
    subject = tokens.digest(token)[:32] if token else "anonymous"
    await enforce(request, RouteClass.agents, subject)


Limited = Annotated[None, Depends(limit_agents)]


@router.post("/heartbeat", summary="Report liveness, tuning and metrics")
async def heartbeat(
    agent_id: str, body: HeartbeatIn, request: Request, session: DbSession, _: Limited
) -> HeartbeatOut:
    context = await runtime.authenticate_agent(
        session, bearer_token(request), agent_id=agent_id, scope=AgentScope.heartbeat
    )
    await runtime.record_heartbeat(
        session, context, body.model_dump(exclude_unset=True, mode="json")
    )
    state = await runtime.desired_state(session, context)
    return HeartbeatOut(
        heartbeat_interval_s=context.heartbeat_interval_s,
        desired_state_etag=runtime.state_etag(state),
    )


@router.get(
    "/desired-state",
    summary="What the agent should run; If-None-Match gives 304 without any write",
    responses={304: {"description": "Unchanged"}},
)
async def desired_state(
    agent_id: str,
    request: Request,
    response: Response,
    session: ReadSession,
    _: Limited,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    context = await runtime.authenticate_agent(
        session, bearer_token(request), agent_id=agent_id, scope=AgentScope.deployment_read
    )
    state = await runtime.desired_state(session, context)
    etag = runtime.state_etag(state)
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return DesiredStateOut.model_validate(state)


@router.get("/signing-keys", summary="The org's signing-keys document")
async def signing_keys(
    agent_id: str, request: Request, session: ReadSession, _: Limited
) -> dict[str, Any]:
    context = await runtime.authenticate_agent(
        session, bearer_token(request), agent_id=agent_id, scope=AgentScope.signing_keys_read
    )
    return await signing_keys_document(session, context.agent.org_id)
