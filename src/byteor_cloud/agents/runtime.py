"""The agent-facing hot path: authenticate a runtime key, take heartbeats, serve the
desired state. Each call is a couple of indexed statements; nothing is cached in memory,
so a deleted agent or an expired key fails on its very next request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.agents.rules import AgentScope, AgentStatus, LivenessEvent, next_status
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import PermissionDenied, Unauthenticated
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.db.models.agents import Agent, AgentKey
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.identity import tokens
from byteor_cloud.signing.service import signing_keys_document


@dataclass(frozen=True)
class AgentContext:
    agent: Agent
    key: AgentKey
    heartbeat_interval_s: int

    @property
    def principal(self) -> Principal:
        return Principal(CredentialKind.agent_key, self.agent.id, None, self.agent.name)


async def authenticate_agent(
    session: AsyncSession, token: str | None, *, agent_id: str, scope: AgentScope
) -> AgentContext:
    """401 for a missing/bad/expired key or a deleted agent; 403 for another agent's path or
    a key without the scope."""
    if not token or tokens.kind_of(token) is not tokens.TokenKind.agent_key:
        raise Unauthenticated("agent runtime key required", code="invalid_credential")
    row = (
        await session.execute(
            select(AgentKey, Agent, Environment.heartbeat_interval_s)
            .join(Agent, Agent.id == AgentKey.agent_id)
            .join(Environment, Environment.id == Agent.environment_id)
            .where(AgentKey.token_hash == tokens.digest(token))
        )
    ).first()
    if row is None:
        raise Unauthenticated("invalid or revoked agent key", code="invalid_credential")
    key, agent, interval = row
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthenticated("invalid or revoked agent key", code="invalid_credential")
    if agent.id != agent_id:
        raise PermissionDenied("this key belongs to another agent", code="wrong_agent")
    if scope.value not in key.scopes:
        raise PermissionDenied(
            f"the key lacks the {scope.value} scope",
            code="missing_scope",
            details={"scope": scope.value},
        )
    return AgentContext(agent, key, interval)


def _target(agent: Agent) -> AuditTarget:
    return AuditTarget(
        agent.org_id,
        "agent",
        agent.id,
        project_id=agent.project_id,
        environment_id=agent.environment_id,
    )


async def record_heartbeat(
    session: AsyncSession, context: AgentContext, beat: dict[str, Any]
) -> None:
    """Update the agent's one row with the beat; a pending/offline agent comes online
    (audited). No row is written per beat."""
    agent = context.agent
    before = AgentStatus(agent.status)
    after = next_status(before, LivenessEvent.heartbeat)
    agent.status = after.value
    agent.last_heartbeat_at = utcnow()
    for field in ("agent_version", "running", "tuning", "metrics"):
        if field in beat:
            setattr(agent, field, beat[field])
    if "status" in beat:
        agent.health = beat["status"]
    if after is not before:
        await audit.record(
            session,
            context.principal,
            "agent.online",
            _target(agent),
            details={"from": before.value},
        )


async def desired_state(session: AsyncSession, context: AgentContext) -> dict[str, Any]:
    """What the agent should run (D1 fills the assignment) and the keys it should trust."""
    document = await signing_keys_document(session, context.agent.org_id)
    return {
        "assignment": None,
        "replay_orders": [],
        "signing_keys_etag": document_etag(document),
    }


def document_etag(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def state_etag(state: dict[str, Any]) -> str:
    return '"' + document_etag(state) + '"'
