"""`/api/v1/agents/{agent_id}/…`: the routes agents call with their runtime key."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field, StringConstraints, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from byteor_cloud.agents import runtime
from byteor_cloud.agents.rules import AgentScope
from byteor_cloud.api.auth import bearer_token
from byteor_cloud.api.deps import ReadConnection, get_database, require_json_body
from byteor_cloud.api.errors import handle_error
from byteor_cloud.api.ratelimit import enforce
from byteor_cloud.api.schemas import ResponseModel, StrictModel
from byteor_cloud.core.errors import NotFound
from byteor_cloud.db.hotpath import HotConnection, HotPathBusy
from byteor_cloud.db.session import Database
from byteor_cloud.deployments import rollout
from byteor_cloud.deployments.builds import bundle_key_of
from byteor_cloud.deployments.rules import TargetState
from byteor_cloud.idempotency.rules import KEY_HEADER
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
    token = bearer_token(request)
    subject = tokens.digest(token)[:32] if token else "anonymous"
    await enforce(request, RouteClass.agents, subject)


Limited = Annotated[None, Depends(limit_agents)]


# The handlers' bodies, shared by the FastAPI routes below and by `AgentRuntimeFastPath`.


async def _heartbeat(
    request: Request, database: Database, agent_id: str, body: HeartbeatIn
) -> HeartbeatOut:
    token = bearer_token(request)
    beat = body.model_dump(exclude_unset=True, mode="json")
    # Usually: one read and one conditional UPDATE on the hot path, outside any
    # transaction. When SQLite's write lock is held the UPDATE goes through the pool
    # (still one autocommit statement, which waits for the lock in its own thread rather
    # than holding a transaction open). A status change (audited) or a race with the sweep
    # or a deletion redoes it all in one transaction.
    context: runtime.AgentContext | None = None
    try:
        async with database.hot() as hot:
            context = await runtime.authenticate_agent(
                hot, token, agent_id=agent_id, scope=AgentScope.heartbeat
            )
            done = await runtime.record_steady_heartbeat(hot, context, beat)
    except HotPathBusy:
        async with database.autocommit_reader() as connection:
            if context is None:
                context = await runtime.authenticate_agent(
                    connection, token, agent_id=agent_id, scope=AgentScope.heartbeat
                )
            done = await runtime.record_steady_heartbeat(connection, context, beat)
    if not done:
        async with database.transaction() as session:
            context = await runtime.authenticate_agent(
                session, token, agent_id=agent_id, scope=AgentScope.heartbeat
            )
            await runtime.record_heartbeat(session, context, beat)
    return HeartbeatOut(
        heartbeat_interval_s=context.heartbeat_interval_s,
        desired_state_etag=runtime.state_etag(runtime.desired_state(context)),
    )


async def _desired_state(
    request: Request,
    connection: AsyncConnection | HotConnection,
    agent_id: str,
    if_none_match: str | None,
) -> Response:
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


async def _signing_keys(
    request: Request, connection: AsyncConnection | HotConnection, agent_id: str
) -> dict[str, Any]:
    context = await runtime.authenticate_agent(
        connection, bearer_token(request), agent_id=agent_id, scope=AgentScope.signing_keys_read
    )
    return context.signing_keys


# The documented routes. `AgentRuntimeFastPath` answers the ordinary requests before they
# reach FastAPI; these serve the rest (a heartbeat with an Idempotency-Key) and the
# OpenAPI document.


@router.post("/heartbeat", summary="Report liveness, tuning and metrics")
async def heartbeat(agent_id: str, body: HeartbeatIn, request: Request, _: Limited) -> HeartbeatOut:
    return await _heartbeat(request, get_database(request), agent_id, body)


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
    return await _desired_state(request, connection, agent_id, if_none_match)


@router.get("/signing-keys", summary="The org's signing-keys document")
async def signing_keys(
    agent_id: str, request: Request, connection: ReadConnection, _: Limited
) -> dict[str, Any]:
    return await _signing_keys(request, connection, agent_id)


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


# The fast path -------------------------------------------------------------------------

_PREFIX = "/api/v1/agents/"
_FAST_PATH = re.compile(r"^/api/v1/agents/([^/]+)/(heartbeat|desired-state|signing-keys)$")
_METHODS = {"heartbeat": "POST", "desired-state": "GET", "signing-keys": "GET"}


@dataclass(frozen=True)
class _Template:
    path: str


_TEMPLATES = {name: _Template(f"{_PREFIX}{{agent_id}}/{name}") for name in _METHODS}


class AgentRuntimeFastPath:
    """Serves the agent runtime routes (`POST heartbeat`, `GET desired-state`, `GET
    signing-keys`) straight from ASGI, in front of the idempotency and page middlewares and
    FastAPI's router: thousands of agents call them, and routing over every route plus
    dependency solving cost more than the work itself. It sits inside `EdgeMiddleware`, so
    request ids, body caps, metrics by route template and rate-limit headers apply as
    everywhere; it answers with the same checks in the same order, the same statuses and
    the same error envelope as the routes above (tests/agents run against both). Requests
    it does not handle (other methods, a heartbeat carrying an Idempotency-Key) go on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        match = _FAST_PATH.match(scope["path"])
        if match is None or _METHODS[match.group(2)] != scope["method"]:
            await self.app(scope, receive, send)
            return
        agent_id, name = match.groups()
        request = Request(scope, receive)
        if name == "heartbeat" and KEY_HEADER.lower() in request.headers:
            await self.app(scope, receive, send)
            return
        # The documented route's template, recorded in the scope as routing does: the edge
        # labels metrics and the access log with it.
        scope["route"] = _TEMPLATES[name]
        scope.setdefault("path_params", {})["agent_id"] = agent_id
        try:
            response = await self._answer(request, name, agent_id)
        except _BodyNotRead as exc:
            raise exc.cause from None
        except Exception as exc:  # the error envelope, as FastAPI's handlers give it
            response = await handle_error(request, exc)
        await response(scope, receive, send)

    async def _answer(self, request: Request, name: str, agent_id: str) -> Response:
        database: Database = request.app.state.database
        if name == "heartbeat":
            payload = await _read_json(request)
            require_json_body(request)
            await limit_agents(request)
            body = _validated(payload)
            out = await _heartbeat(request, database, agent_id, body)
            return JSONResponse(out.model_dump(mode="json"))
        await limit_agents(request)
        try:
            async with database.hot() as hot:
                return await self._read(request, name, agent_id, hot)
        except HotPathBusy:
            async with database.autocommit_reader() as connection:
                return await self._read(request, name, agent_id, connection)

    async def _read(
        self,
        request: Request,
        name: str,
        agent_id: str,
        connection: AsyncConnection | HotConnection,
    ) -> Response:
        if name == "desired-state":
            return await _desired_state(
                request, connection, agent_id, request.headers.get("if-none-match")
            )
        return JSONResponse(await _signing_keys(request, connection, agent_id))


class _BodyNotRead(Exception):
    """Reading the body failed (too large, client gone): the edge answers, not us."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


_NO_BODY = object()


async def _read_json(request: Request) -> object:
    """The body as FastAPI reads it: JSON when the content type is JSON or missing."""
    try:
        raw = await request.body()
    except Exception as exc:
        raise _BodyNotRead(exc) from exc
    if not raw:
        return _NO_BODY
    content_type = request.headers.get("content-type")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if content_type is not None and not (
        media_type == "application/json" or media_type.endswith("+json")
    ):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}]
        ) from exc


def _validated(payload: object) -> HeartbeatIn:
    if payload is _NO_BODY:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return HeartbeatIn.model_validate(payload, from_attributes=True)  # as FastAPI does
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc
