"""The agent hot path at the ASGI level: steady heartbeats and unchanged desired-state polls.

Thousands of agents call these two all day. Through FastAPI each costs routing over every
route, dependency solving, request/response objects and a pooled connection — several
times the one or two statements that are the actual work. `AgentGateway` sits inside
`EdgeMiddleware` (so request ids, body caps, metrics by route template, the access log and
the rate-limit headers apply as to every request) and in front of everything else, and
answers a request itself only when it can answer it *successfully*:

- `POST /api/v1/agents/{id}/heartbeat` with a valid JSON body, no Idempotency-Key, from an
  agent that is online: one credential read and one UPDATE on the hot connection (200);
- `GET /api/v1/agents/{id}/desired-state` whose `If-None-Match` matches: one credential
  read, no write (304).

Anything else — a refusal of any kind, an agent coming online (audited), a changed desired
state, SQLite's write lock being held — goes on to the documented routes in
`api/v1/agent_runtime.py`, which answer it from scratch with the one implementation of
every check, status and error envelope. A request the gateway already counted against the
rate limit carries that decision on, so it is never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from byteor_cloud.agents import hot as hot_agents
from byteor_cloud.agents.rules import AgentScope, AgentStatus
from byteor_cloud.api.ratelimit import COUNTED_STATE_KEY, count_in
from byteor_cloud.api.v1.agent_runtime import HeartbeatIn
from byteor_cloud.db.hotpath import HotPathBusy
from byteor_cloud.db.session import Database
from byteor_cloud.identity import tokens
from byteor_cloud.ratelimit import RouteClass

PREFIX = "/api/v1/agents/"
_BEARER = "bearer "
_MAX_AUTHORIZATION = 512  # as `api.auth.bearer_token`


@dataclass(frozen=True)
class _Template:
    path: str


# The documented routes' templates, recorded in the scope as routing does: the edge labels
# metrics and the access log with them.
_HEARTBEAT = _Template(PREFIX + "{agent_id}/heartbeat")
_DESIRED_STATE = _Template(PREFIX + "{agent_id}/desired-state")


class AgentGateway:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(PREFIX):
            agent_id, _, name = path[len(PREFIX) :].partition("/")
            method = scope["method"]
            if name == "heartbeat" and method == "POST":
                await self._heartbeat(scope, receive, send, agent_id)
                return
            if name == "desired-state" and method == "GET":
                await self._desired_state(scope, receive, send, agent_id)
                return
        await self.app(scope, receive, send)

    async def _heartbeat(self, scope: Scope, receive: Receive, send: Send, agent_id: str) -> None:
        headers = _headers(scope["headers"])
        token = _agent_token(headers)
        if token is None or b"idempotency-key" in headers or not _is_json(headers):
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive)
        beat = _parse_beat(body) if body is not None else None
        if beat is None:
            await self.app(scope, replay, send)
            return
        agent = await _steady_agent(scope, token, agent_id, AgentScope.heartbeat)
        if not (
            agent is not None
            and agent.status is AgentStatus.online
            and await _recorded(scope, agent_id, beat)
        ):
            await self.app(scope, replay, send)
            return
        scope["route"] = _HEARTBEAT
        # As `JSONResponse` renders `HeartbeatOut` (the parity test compares the bytes).
        payload = json.dumps(
            {
                "heartbeat_interval_s": agent.heartbeat_interval_s,
                "desired_state_etag": agent.desired_state_etag,
            },
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _desired_state(
        self, scope: Scope, receive: Receive, send: Send, agent_id: str
    ) -> None:
        headers = _headers(scope["headers"])
        token = _agent_token(headers)
        if_none_match = headers.get(b"if-none-match")
        if token is None or if_none_match is None:
            await self.app(scope, receive, send)
            return
        agent = await _steady_agent(scope, token, agent_id, AgentScope.deployment_read)
        etag = agent.desired_state_etag if agent is not None else None
        if etag is None or etag not in _entity_tags(if_none_match):
            await self.app(scope, receive, send)  # the route answers 200 with the state
            return
        scope["route"] = _DESIRED_STATE
        # As `Response(status_code=304, headers={"ETag": etag})` renders it.
        await send(
            {"type": "http.response.start", "status": 304, "headers": [(b"etag", etag.encode())]}
        )
        await send({"type": "http.response.body", "body": b""})


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    # ASGI header names are lower-case; a repeated header keeps its first value.
    headers: dict[bytes, bytes] = {}
    for name, value in raw:
        headers.setdefault(name, value)
    return headers


def _agent_token(headers: dict[bytes, bytes]) -> str | None:
    """The bearer token when it looks like an agent key (else the route explains)."""
    raw = headers.get(b"authorization")
    if raw is None or len(raw) > _MAX_AUTHORIZATION:
        return None
    header = raw.decode("latin-1")
    if not header.lower().startswith(_BEARER):
        return None
    token = header[len(_BEARER) :].strip()
    return token if hot_agents.is_agent_key(token) else None


def _is_json(headers: dict[bytes, bytes]) -> bool:
    content_type = headers.get(b"content-type")
    if content_type is None:
        return False
    media_type = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _entity_tags(header: bytes) -> set[str]:
    return {tag.strip() for tag in header.decode("latin-1").split(",")}


async def _steady_agent(
    scope: Scope, token: str, agent_id: str, agent_scope: AgentScope
) -> hot_agents.SteadyAgent | None:
    """The agent, if the request is within the rate limit and its key may make this call
    on this path right now; None hands the request on to the route."""
    digest = tokens.digest(token)
    if not await _counted(scope, digest):
        return None
    try:
        return await hot_agents.steady_agent(
            _database(scope), digest, agent_id=agent_id, scope=agent_scope
        )
    except HotPathBusy:
        return None


async def _recorded(scope: Scope, agent_id: str, beat: dict[str, Any]) -> bool:
    """Whether the steady beat landed (else the route takes it, from scratch)."""
    try:
        return await hot_agents.record_steady_beat(_database(scope), agent_id, beat)
    except HotPathBusy:
        return False


def _database(scope: Scope) -> Database:
    database: Database = scope["app"].state.database
    return database


async def _counted(scope: Scope, digest: str) -> bool:
    """Count the request against the agents' rate limit as `limit_agents` does (same key);
    False when refused. The decision stays on the request either way."""
    request_state = scope.setdefault("state", {})  # the edge has made it; tests may not
    decision = await count_in(scope["app"].state, request_state, RouteClass.agents, digest[:32])
    request_state[COUNTED_STATE_KEY] = decision
    return decision.allowed


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None if the client went away) and a `receive` that replays what was
    read, for a request handed on to the routes."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            body = None
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = b"".join(chunks)
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay


def _parse_beat(body: bytes) -> dict[str, Any] | None:
    """The beat as the route reads it (`json.loads`, then the model), or None to let the
    route refuse it."""
    if not body:
        return None
    try:
        model = HeartbeatIn.model_validate(json.loads(body), from_attributes=True)
    except (ValueError, ValidationError):
        return None
    return model.model_dump(exclude_unset=True, mode="json")
