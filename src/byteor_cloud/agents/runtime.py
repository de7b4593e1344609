"""The agent-facing routes' service: authenticate a runtime key, take heartbeats, serve the
desired state. Nothing is cached in memory, so a deleted agent or an expired key fails on
its very next request; instead each call is as few statements as possible: one Core SELECT
reads the key, its agent, the environment's heartbeat interval and the org's published
signing keys together, and a heartbeat adds one UPDATE of the agent's row (plus the audit
record when its status changes). `agents.hot` serves the two commonest requests (a steady
heartbeat, an unchanged desired-state poll) with the same statements on the driver."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, Update, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from byteor_cloud.agents.rules import AgentScope, AgentStatus, LivenessEvent, next_status
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import PermissionDenied, Unauthenticated
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.db.models.agents import Agent, AgentKey
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.db.session import Database
from byteor_cloud.identity import tokens
from byteor_cloud.signing.rules import PUBLISHED, KeyStatus
from byteor_cloud.signing.service import entry_of


@dataclass(frozen=True)
class AgentContext:
    """The authenticated agent, as read by `authenticate_agent`'s one statement."""

    agent_id: str
    org_id: str
    project_id: str
    environment_id: str
    name: str
    status: str
    heartbeat_interval_s: int
    # The org's signing-keys document (`signing.service.signing_keys_document`), read in
    # the same statement as the key.
    signing_keys: dict[str, Any]
    # What the agent should run (`deployments.rollout.assign` keeps it on the agent's row).
    assignment: dict[str, Any] | None = None

    @property
    def principal(self) -> Principal:
        return Principal(CredentialKind.agent_key, self.agent_id, None, self.name)


def credential_query(*columns: ColumnElement[Any] | InstrumentedAttribute[Any]) -> Select[Any]:
    """`columns` of a runtime key joined with its agent, the agent's environment and its
    org's published signing keys: one row per published key (one row with NULL key columns
    when the org has none), each repeating the credential columns. The routes and the hot
    path (`agents.hot`) select from this one join."""
    return (
        select(*columns)
        .select_from(AgentKey)
        .join(Agent, Agent.id == AgentKey.agent_id)
        .join(Environment, Environment.id == Agent.environment_id)
        .outerjoin(
            SigningKey,
            and_(
                SigningKey.org_id == Agent.org_id,
                # "Not retired" is PUBLISHED (asserted below), written as one comparison: an
                # IN list is re-rendered for every execution, and this runs on every poll.
                SigningKey.status != KeyStatus.retired.value,
            ),
        )
    )


# Built once.
_CREDENTIAL = (
    credential_query(
        AgentKey.expires_at,
        AgentKey.scopes,
        Agent.id.label("agent_id"),
        Agent.org_id,
        Agent.project_id,
        Agent.environment_id,
        Agent.name,
        Agent.status,
        Agent.assignment,
        Environment.heartbeat_interval_s,
        SigningKey.id.label("kid"),
        SigningKey.alg,
        SigningKey.public_key,
        SigningKey.status.label("key_status"),
        SigningKey.not_after,
    )
    .where(AgentKey.token_hash == bindparam("token_hash"))
    .order_by(SigningKey.id)
)


assert frozenset(KeyStatus) - {KeyStatus.retired} == PUBLISHED


async def authenticate_agent(
    db: AsyncConnection | AsyncSession,
    token: str | None,
    *,
    agent_id: str,
    scope: AgentScope,
) -> AgentContext:
    """401 for a missing/bad/expired key or a deleted agent; 403 for another agent's path or
    a key without the scope. One statement on `db` (a read connection or the request's
    write transaction)."""
    if not token or tokens.kind_of(token) is not tokens.TokenKind.agent_key:
        raise Unauthenticated("agent runtime key required", code="invalid_credential")
    rows = (await db.execute(_CREDENTIAL, {"token_hash": tokens.digest(token)})).all()
    if not rows:
        raise Unauthenticated("invalid or revoked agent key", code="invalid_credential")
    first = rows[0]
    if first.expires_at is not None and first.expires_at <= utcnow():
        raise Unauthenticated("invalid or revoked agent key", code="invalid_credential")
    if first.agent_id != agent_id:
        raise PermissionDenied("this key belongs to another agent", code="wrong_agent")
    if scope.value not in first.scopes:
        raise PermissionDenied(
            f"the key lacks the {scope.value} scope",
            code="missing_scope",
            details={"scope": scope.value},
        )
    keys = keys_document(
        (row.kid, row.alg, row.public_key, row.key_status, row.not_after) for row in rows
    )
    return AgentContext(
        agent_id=first.agent_id,
        org_id=first.org_id,
        project_id=first.project_id,
        environment_id=first.environment_id,
        name=first.name,
        status=first.status,
        heartbeat_interval_s=first.heartbeat_interval_s,
        signing_keys=keys,
        assignment=first.assignment,
    )


def keys_document(
    rows: Iterable[tuple[str | None, str, str, str, datetime | None]],
) -> dict[str, Any]:
    """The signing-keys document from the outer join's `(kid, alg, public_key, status,
    not_after)` columns (one row of NULLs when the org has no published key)."""
    return {
        "keys": [
            entry_of(kid=kid, alg=alg, public_key=public_key, status=status, not_after=not_after)
            for kid, alg, public_key, status, not_after in rows
            if kid is not None
        ]
    }


def _target(context: AgentContext) -> AuditTarget:
    return AuditTarget(
        context.org_id,
        "agent",
        context.agent_id,
        project_id=context.project_id,
        environment_id=context.environment_id,
    )


# What a beat may report, by the agent column it lands in (the beat's `status` is the
# agent's `health`; the agent's own `status` is its liveness).
BEAT_COLUMNS = {
    "agent_version": "agent_version",
    "status": "health",
    "running": "running",
    "tuning": "tuning",
    "metrics": "metrics",
}


def _beat_values(beat: dict[str, Any], status: AgentStatus) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status.value, "last_heartbeat_at": utcnow()}
    for field, column in BEAT_COLUMNS.items():
        if field in beat:
            values[column] = beat[field]
    return values


async def take_heartbeat(
    database: Database, token: str | None, *, agent_id: str, beat: dict[str, Any]
) -> AgentContext:
    """Authenticate and record a beat. The steady beat is one autocommit UPDATE (the agent
    gateway takes most of them; it hands on those it cannot take without waiting, such as
    while SQLite's write lock is held). A status change (audited), or a race with the sweep
    or a deletion, redoes it all in one transaction."""
    async with database.autocommit_reader() as connection:
        context = await authenticate_agent(
            connection, token, agent_id=agent_id, scope=AgentScope.heartbeat
        )
        done = await record_steady_heartbeat(connection, context, beat)
    if not done:
        async with database.transaction() as session:
            context = await authenticate_agent(
                session, token, agent_id=agent_id, scope=AgentScope.heartbeat
            )
            await record_heartbeat(session, context, beat)
    return context


async def record_steady_heartbeat(
    connection: AsyncConnection, context: AgentContext, beat: dict[str, Any]
) -> bool:
    """The common beat, of an agent already online: one autocommit UPDATE, conditional on
    the agent still existing and still being online. False when it did not apply (the
    agent is not online, was deleted, or the sweep just marked it offline): the caller then
    takes `record_heartbeat`'s transactional path, which audits the transition."""
    if AgentStatus(context.status) is not AgentStatus.online:
        return False
    values = steady_values(beat)
    result = await connection.execute(
        steady_update(frozenset(values)), {**values, "agent_id": context.agent_id}
    )
    return bool(getattr(result, "rowcount", 0))


def steady_values(beat: dict[str, Any]) -> dict[str, Any]:
    """The column values a beat writes on an online agent's row."""
    return _beat_values(beat, next_status(AgentStatus.online, LivenessEvent.heartbeat))


_AGENTS = cast(Table, Agent.__table__)


@functools.cache
def steady_update(fields: frozenset[str]) -> Update:
    """One Core UPDATE per set of reported fields (at most 2^5 of them), built once: the
    steady beat binds values instead of constructing and hashing a new statement."""
    return (
        update(_AGENTS)
        .where(
            _AGENTS.c.id == bindparam("agent_id"),
            _AGENTS.c.status == AgentStatus.online.value,
        )
        .values({name: bindparam(name, type_=_AGENTS.c[name].type) for name in sorted(fields)})
    )


async def record_heartbeat(
    session: AsyncSession, context: AgentContext, beat: dict[str, Any]
) -> None:
    """Update the agent's one row with the beat (one UPDATE; no row is written per beat);
    a pending/offline agent comes online (audited). `context` must have been read in
    `session`'s transaction."""
    before = AgentStatus(context.status)
    after = next_status(before, LivenessEvent.heartbeat)
    result = await session.execute(
        update(Agent)
        .where(Agent.id == context.agent_id)
        .values(_beat_values(beat, after))
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) == 0:
        # Deleted since the key was read (PostgreSQL, read committed): as if never found.
        raise Unauthenticated("invalid or revoked agent key", code="invalid_credential")
    if after is not before:
        await audit.record(
            session,
            context.principal,
            "agent.online",
            _target(context),
            details={"from": before.value},
        )


def desired_state(context: AgentContext) -> dict[str, Any]:
    """What the agent should run and the keys it should trust (replay orders: a later issue)."""
    return desired_state_of(context.assignment, context.signing_keys)


def desired_state_of(
    assignment: dict[str, Any] | None, signing_keys: dict[str, Any]
) -> dict[str, Any]:
    return {
        "assignment": assignment,
        "replay_orders": [],
        "signing_keys_etag": document_etag(signing_keys),
    }


def document_etag(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def state_etag(state: dict[str, Any]) -> str:
    return '"' + document_etag(state) + '"'
