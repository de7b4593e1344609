"""`/api/v1/agents/{agent_id}/…`: the routes agents call with their runtime key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field, StringConstraints

from byteor_cloud.agents import runtime
from byteor_cloud.agents.rules import AgentScope
from byteor_cloud.api.auth import bearer_token
from byteor_cloud.api.deps import ReadConnection, get_database
from byteor_cloud.api.ratelimit import counted_before, enforce, judge
from byteor_cloud.api.schemas import ResponseModel, StrictModel
from byteor_cloud.core.errors import NotFound
from byteor_cloud.deployments import rollout
from byteor_cloud.deployments.builds import bundle_key_of
from byteor_cloud.deployments.rules import TargetState
from byteor_cloud.identity import tokens
from byteor_cloud.ratelimit import RouteClass
from byteor_cloud.storage import BlobNotFound, BlobStore

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
    lag: float = Field(0, ge=0, allow_inf_nan=False)  # JSON has no Infinity or NaN


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


class AssignmentOut(ResponseModel):
    deployment_id: str
    epoch: int
    spec_hash: str
    bundle_hash: str
    bundle_digest: str
    bundle_url: str = Field(description="Relative to the API origin")
    approval_credential: str | None


class DesiredStateOut(ResponseModel):
    assignment: AssignmentOut | None
    replay_orders: list[dict[str, Any]]
    signing_keys_etag: str


async def limit_agents(request: Request) -> None:
    counted = counted_before(request)
    if counted is not None:  # the agent gateway counted it before handing it on
        judge(request, RouteClass.agents, counted)
        return
    token = bearer_token(request)
    subject = tokens.digest(token)[:32] if token else "anonymous"
    await enforce(request, RouteClass.agents, subject)


Limited = Annotated[None, Depends(limit_agents)]


# `api.agent_gateway` answers the steady heartbeat and the unchanged (304) desired-state
# poll before they reach FastAPI; these routes answer everything else about them, every
# refusal included, and describe them in the OpenAPI document.


@router.post("/heartbeat", summary="Report liveness, tuning and metrics")
async def heartbeat(agent_id: str, body: HeartbeatIn, request: Request, _: Limited) -> HeartbeatOut:
    context = await runtime.take_heartbeat(
        get_database(request),
        bearer_token(request),
        agent_id=agent_id,
        beat=body.model_dump(exclude_unset=True, mode="json"),
    )
    return HeartbeatOut(
        heartbeat_interval_s=context.heartbeat_interval_s,
        desired_state_etag=runtime.state_etag(runtime.desired_state(context)),
    )


@router.get(
    "/desired-state",
    summary="What the agent should run; If-None-Match gives 304 without any write",
    responses={304: {"description": "Unchanged"}},
)
async def desired_state(
    agent_id: str,
    request: Request,
    connection: ReadConnection,
    _: Limited,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    context = await runtime.authenticate_agent(
        connection, bearer_token(request), agent_id=agent_id, scope=AgentScope.deployment_read
    )
    state = runtime.desired_state(context)
    etag = runtime.state_etag(state)
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(
        DesiredStateOut.model_validate(state).model_dump(mode="json"), headers={"ETag": etag}
    )


@router.get("/signing-keys", summary="The org's signing-keys document")
async def signing_keys(
    agent_id: str, request: Request, connection: ReadConnection, _: Limited
) -> dict[str, Any]:
    context = await runtime.authenticate_agent(
        connection, bearer_token(request), agent_id=agent_id, scope=AgentScope.signing_keys_read
    )
    return context.signing_keys


@router.get(
    "/bundles/{digest}",
    summary="Download a deploy bundle assigned to this agent",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": {}}}},
)
async def bundle(
    agent_id: str,
    digest: Annotated[str, Path(pattern=r"^sha256:[0-9a-f]{64}$")],
    request: Request,
    connection: ReadConnection,
    _: Limited,
) -> StreamingResponse:
    """Only the bundle of the agent's current assignment: any other digest is 404, so one
    agent can never fetch another's bundle (or an old one) by guessing digests."""
    context = await runtime.authenticate_agent(
        connection, bearer_token(request), agent_id=agent_id, scope=AgentScope.deployment_read
    )
    assignment = context.assignment or {}
    if assignment.get("bundle_digest") != digest:
        raise NotFound("no such bundle is assigned to this agent", code="bundle_not_assigned")
    store: BlobStore = request.app.state.store
    key = bundle_key_of(context.org_id, context.project_id, context.environment_id, digest)
    try:
        stream = await store.open_stream(key)
    except BlobNotFound:
        raise NotFound("the bundle is not stored", code="bundle_not_assigned") from None
    return StreamingResponse(
        stream,
        media_type="application/gzip",
        headers={"Content-Length": str(stream.size), "ETag": f'"{digest}"'},
    )


class StatusIn(StrictModel):
    epoch: int = Field(ge=1, le=2**31)
    state: Literal["downloading", "activating", "active", "failed"]
    error: Annotated[str, StringConstraints(max_length=2000)] | None = None
    tuning: Tuning | None = None


class TargetOut(ResponseModel):
    deployment_id: str
    agent_id: str
    epoch: int | None
    state: str
    phase: str


@router.post(
    "/deployments/{deployment_id}/status",
    summary="Report progress on an assignment (fenced by epoch)",
)
async def report_status(
    agent_id: str, deployment_id: str, body: StatusIn, request: Request, _: Limited
) -> TargetOut:
    database = get_database(request)
    async with database.transaction() as session:
        context = await runtime.authenticate_agent(
            session, bearer_token(request), agent_id=agent_id, scope=AgentScope.heartbeat
        )
        target = await rollout.report_status(
            session,
            context.principal,
            agent_id=context.agent_id,
            deployment_id=deployment_id,
            epoch=body.epoch,
            state=TargetState(body.state),
            error=body.error,
            tuning=body.tuning.model_dump(mode="json") if body.tuning is not None else None,
        )
        out = TargetOut.model_validate(target)
    return out
