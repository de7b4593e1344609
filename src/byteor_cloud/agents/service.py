"""Operators' view of agents: list (filters), get, delete, rotate the runtime key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.agents.enrollment import issue_agent_key
from byteor_cloud.agents.rules import MISSED_INTERVALS, AgentStatus, LivenessEvent, next_status
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import InvalidInput, NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.principal import SYSTEM
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.agents import Agent, AgentKey
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.db.pagination import paginate
from byteor_cloud.tenancy.service import DELETION_BLOCKERS

DEFAULT_OVERLAP = timedelta(minutes=5)
MAX_OVERLAP = timedelta(days=1)
MAX_LABEL_FILTERS = 10


def _target(scope: Scope, agent: Agent) -> AuditTarget:
    return AuditTarget.in_environment("agent", agent)


async def list_agents(
    session: AsyncSession,
    scope: Scope,
    *,
    page: PageRequest,
    status: AgentStatus | None = None,
    labels: dict[str, str] | None = None,
) -> Page[Agent]:
    """Agents of the environment; label filters all have to match."""
    statement = select(Agent).where(
        Agent.org_id == scope.org_id, Agent.environment_id == scope.environment_id
    )
    if status is not None:
        statement = statement.where(Agent.status == status.value)
    for key, value in (labels or {}).items():
        # JSON path filters differ per database; a portable containment test on the
        # label map, evaluated in SQL on both (->> on PostgreSQL, json_extract on SQLite).
        statement = statement.where(Agent.labels[key].as_string() == value)
    return await paginate(session, statement, sort_key=[Agent.id], page=page)


async def get_agent(session: AsyncSession, scope: Scope, agent_id: str) -> Agent:
    agent = await session.get(Agent, agent_id) if is_id(agent_id) else None
    if agent is None or agent.environment_id != scope.environment_id:
        raise NotFound("agent not found", code="agent_not_found")
    return agent


async def delete_agent(session: AsyncSession, scope: Scope, agent_id: str) -> None:
    """Delete the agent; its keys go with it, so its next request is refused."""
    agent = await get_agent(session, scope, agent_id)
    await audit.record(
        session,
        scope.principal,
        "agent.delete",
        _target(scope, agent),
        details={"name": agent.name},
    )
    await session.delete(agent)
    await session.flush()


@dataclass(frozen=True)
class RotatedKey:
    agent: Agent
    api_key: str
    previous_expires_at: datetime


async def rotate_key(
    session: AsyncSession, scope: Scope, agent_id: str, *, overlap_s: int | None
) -> RotatedKey:
    """A new runtime key; the current ones keep working for the overlap window only."""
    overlap = DEFAULT_OVERLAP if overlap_s is None else timedelta(seconds=overlap_s)
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput(
            "overlap_s must be between 0 and 86400",
            code="invalid_overlap",
            details={"field": "overlap_s"},
        )
    agent = await get_agent(session, scope, agent_id)
    ends = utcnow() + overlap
    await session.execute(
        update(AgentKey)
        .where(
            AgentKey.agent_id == agent.id,
            (AgentKey.expires_at.is_(None)) | (AgentKey.expires_at > ends),
        )
        .values(expires_at=ends)
    )
    key, plaintext = issue_agent_key(agent.id)
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        scope.principal,
        "agent.rotate_key",
        _target(scope, agent),
        details={"token_prefix": key.token_prefix, "previous_keys_expire_at": ends.isoformat()},
    )
    return RotatedKey(agent, plaintext, ends)


async def online_agents_blocker(session: AsyncSession, scope: Scope) -> str | None:
    """Deleting a tenant with online agents needs ?force=true."""
    statement = (
        select(func.count())
        .select_from(Agent)
        .where(Agent.org_id == scope.org_id, Agent.status == AgentStatus.online.value)
    )
    if scope.project_id is not None:
        statement = statement.where(Agent.project_id == scope.project_id)
    if scope.environment_id is not None:
        statement = statement.where(Agent.environment_id == scope.environment_id)
    online = await session.scalar(statement) or 0
    return f"{online} agent(s) online" if online else None


# Registered here, where the knowledge lives; the app imports this module with its routes.
if online_agents_blocker not in DELETION_BLOCKERS:
    DELETION_BLOCKERS.append(online_agents_blocker)


async def mark_silent_offline(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """The liveness sweep: online agents silent for MISSED_INTERVALS heartbeat intervals go
    offline (audited). Idempotent: only agents still online and still silent move; the
    most silent come first and rows another sweep holds are skipped."""
    candidates = (
        await session.execute(
            select(Agent, Environment.heartbeat_interval_s)
            .join(Environment, Environment.id == Agent.environment_id)
            .where(Agent.status == AgentStatus.online.value)
            .order_by(Agent.last_heartbeat_at)
            .limit(limit)
            .with_for_update(of=Agent, skip_locked=True)
        )
    ).all()
    moved = 0
    for agent, interval in candidates:
        deadline = timedelta(seconds=interval * MISSED_INTERVALS)
        if agent.last_heartbeat_at is None or now - agent.last_heartbeat_at < deadline:
            continue
        agent.status = next_status(AgentStatus.online, LivenessEvent.lapse).value
        moved += 1
        await audit.record(
            session,
            SYSTEM,
            "agent.offline",
            AuditTarget.in_environment("agent", agent),
            details={
                "last_heartbeat_at": agent.last_heartbeat_at.isoformat(),
                "missed_intervals": MISSED_INTERVALS,
            },
        )
    return moved
