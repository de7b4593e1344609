"""Enrollment tokens (single use, expiring) and enrolling an agent with one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.agents.rules import ALL_SCOPES, AgentStatus
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import InvalidInput, NotFound, Unauthenticated
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.agents import Agent, AgentKey, EnrollmentToken
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.db.pagination import paginate
from byteor_cloud.identity import tokens

DEFAULT_TOKEN_TTL = timedelta(hours=1)
MAX_TOKEN_TTL = timedelta(days=7)
_NAME_CHARS = re.compile(r"[^a-z0-9_-]+")
MAX_NAME_SUFFIX = 1000


@dataclass(frozen=True)
class NewEnrollmentToken:
    record: EnrollmentToken
    plaintext: str


def _env_target(scope: Scope, resource_type: str, resource_id: str) -> AuditTarget:
    return AuditTarget(
        scope.org_id,
        resource_type,
        resource_id,
        project_id=scope.project_id,
        environment_id=scope.environment_id,
    )


async def create_token(
    session: AsyncSession, scope: Scope, *, expires_in_s: int | None
) -> NewEnrollmentToken:
    assert scope.project_id is not None
    assert scope.environment_id is not None
    ttl = DEFAULT_TOKEN_TTL if expires_in_s is None else timedelta(seconds=expires_in_s)
    if not timedelta(seconds=60) <= ttl <= MAX_TOKEN_TTL:
        raise InvalidInput(
            "expires_in_s must be between 60 and 604800",
            code="invalid_expiry",
            details={"field": "expires_in_s"},
        )
    issued = tokens.issue(tokens.TokenKind.enrollment)
    record = EnrollmentToken(
        org_id=scope.org_id,
        project_id=scope.project_id,
        environment_id=scope.environment_id,
        token_prefix=issued.display_prefix,
        token_hash=issued.digest,
        created_by=scope.principal.user_id,
        expires_at=utcnow() + ttl,
    )
    session.add(record)
    await session.flush()
    await audit.record(
        session,
        scope.principal,
        "enrollment_token.create",
        _env_target(scope, "enrollment_token", record.id),
        details={"token_prefix": record.token_prefix, "expires_at": record.expires_at.isoformat()},
    )
    return NewEnrollmentToken(record, issued.plaintext)


async def list_tokens(
    session: AsyncSession, scope: Scope, *, page: PageRequest
) -> Page[EnrollmentToken]:
    statement = select(EnrollmentToken).where(
        EnrollmentToken.org_id == scope.org_id,
        EnrollmentToken.environment_id == scope.environment_id,
    )
    return await paginate(
        session, statement, sort_key=[EnrollmentToken.id], page=page, descending=True
    )


async def revoke_token(session: AsyncSession, scope: Scope, *, token_id: str) -> None:
    record = await session.get(EnrollmentToken, token_id) if is_id(token_id) else None
    if record is None or record.environment_id != scope.environment_id:
        raise NotFound("enrollment token not found", code="enrollment_token_not_found")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await audit.record(
            session,
            scope.principal,
            "enrollment_token.revoke",
            _env_target(scope, "enrollment_token", record.id),
        )


@dataclass(frozen=True)
class Enrolled:
    agent: Agent
    api_key: str
    environment: Environment


async def _spend(session: AsyncSession, token: str, environment_id: str) -> EnrollmentToken:
    """Spend the token atomically: of concurrent uses exactly one UPDATE matches."""
    now = utcnow()
    spent: EnrollmentToken | None = await session.scalar(
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == tokens.digest(token),
            EnrollmentToken.environment_id == environment_id,
            EnrollmentToken.used_at.is_(None),
            EnrollmentToken.revoked_at.is_(None),
            EnrollmentToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EnrollmentToken)
    )
    if spent is None:
        raise Unauthenticated(
            "invalid, expired, revoked or already used enrollment token",
            code="invalid_enrollment_token",
        )
    return spent


async def _unique_name(session: AsyncSession, environment_id: str, wanted: str) -> str:
    taken = set(
        (
            await session.scalars(
                select(Agent.name).where(
                    Agent.environment_id == environment_id, Agent.name.startswith(wanted)
                )
            )
        ).all()
    )
    if wanted not in taken:
        return wanted
    for n in range(2, MAX_NAME_SUFFIX):
        candidate = f"{wanted[:90]}-{n}"
        if candidate not in taken:
            return candidate
    raise InvalidInput("too many agents with this name", code="name_exhausted")


def derive_name(name: str | None, hostname: str | None) -> str:
    base = name or hostname or "agent"
    cleaned = _NAME_CHARS.sub("-", base.lower()).strip("-_")[:80]
    return cleaned or "agent"


def issue_agent_key(agent_id: str, *, scopes: tuple[str, ...] = ALL_SCOPES) -> tuple[AgentKey, str]:
    issued = tokens.issue(tokens.TokenKind.agent_key)
    key = AgentKey(
        agent_id=agent_id,
        token_prefix=issued.display_prefix,
        token_hash=issued.digest,
        scopes=list(scopes),
    )
    return key, issued.plaintext


async def enroll(
    session: AsyncSession,
    *,
    token: str,
    org_id: str,
    project_id: str,
    environment_id: str,
    name: str | None,
    hostname: str | None,
    labels: dict[str, str],
    agent_version: str | None,
) -> Enrolled:
    """Spend the enrollment token and create the agent with its first runtime key."""
    environment = await session.get(Environment, environment_id) if is_id(environment_id) else None
    if environment is None or environment.project_id != project_id or environment.org_id != org_id:
        raise Unauthenticated("invalid enrollment token", code="invalid_enrollment_token")
    spent = await _spend(session, token, environment_id)
    agent = Agent(
        org_id=org_id,
        project_id=project_id,
        environment_id=environment_id,
        name=await _unique_name(session, environment_id, derive_name(name, hostname)),
        hostname=hostname,
        labels=labels,
        agent_version=agent_version,
        status=AgentStatus.pending.value,
    )
    session.add(agent)
    await session.flush()
    spent.used_by_agent_id = agent.id
    key, plaintext = issue_agent_key(agent.id)
    session.add(key)
    await session.flush()
    actor = Principal(CredentialKind.agent_key, agent.id, None, agent.name)
    details: dict[str, Any] = {
        "name": agent.name,
        "hostname": hostname,
        "labels": labels,
        "enrollment_token_id": spent.id,
    }
    await audit.record(
        session,
        actor,
        "agent.enroll",
        AuditTarget(
            org_id, "agent", agent.id, project_id=project_id, environment_id=environment_id
        ),
        details=details,
    )
    return Enrolled(agent, plaintext, environment)
