"""Memberships (org and project roles) and organization API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import Conflict, InvalidInput, NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.permissions import PROJECT_ROLES, Role
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.identity import User
from byteor_cloud.db.models.tenancy import ApiKey, OrgMembership, Project, ProjectMembership
from byteor_cloud.db.pagination import paginate
from byteor_cloud.identity import tokens
from byteor_cloud.identity.service import find_user_by_email, token_expiry


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    role: Role
    created_at: datetime


async def _user_by_email(session: AsyncSession, email: str) -> User:
    user = await find_user_by_email(session, email)
    if user is None:
        raise NotFound("no user with this email", code="user_not_found", details={"field": "email"})
    return user


def _member(membership: OrgMembership | ProjectMembership, user: User) -> Member:
    return Member(user.id, user.email, Role(membership.role), membership.created_at)


# Org members ---------------------------------------------------------------------------


async def list_org_members(
    session: AsyncSession, scope: Scope, *, page: PageRequest
) -> Page[Member]:
    statement = select(OrgMembership).where(OrgMembership.org_id == scope.org_id)
    result = await paginate(session, statement, sort_key=[OrgMembership.id], page=page)
    users = {
        u.id: u
        for u in await session.scalars(
            select(User).where(User.id.in_([m.user_id for m in result.items]))
        )
    }
    return Page([_member(m, users[m.user_id]) for m in result.items], result.next_cursor)


async def add_org_member(session: AsyncSession, scope: Scope, *, email: str, role: Role) -> Member:
    user = await _user_by_email(session, email)
    membership = OrgMembership(org_id=scope.org_id, user_id=user.id, role=role.value)
    session.add(membership)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("already a member of this organization", code="already_member") from None
    await audit.record(
        session,
        scope.principal,
        "org.member.add",
        AuditTarget(scope.org_id, "user", user.id),
        details={"email": user.email, "role": role.value},
    )
    return _member(membership, user)


async def _org_membership(session: AsyncSession, scope: Scope, user_id: str) -> OrgMembership:
    membership = (
        await session.scalar(
            select(OrgMembership).where(
                OrgMembership.org_id == scope.org_id, OrgMembership.user_id == user_id
            )
        )
        if is_id(user_id)
        else None
    )
    if membership is None:
        raise NotFound("not a member of this organization", code="member_not_found")
    return membership


async def _guard_last_admin(session: AsyncSession, scope: Scope, membership: OrgMembership) -> None:
    if membership.role != Role.org_admin:
        return
    admins = await session.scalar(
        select(func.count())
        .select_from(OrgMembership)
        .where(OrgMembership.org_id == scope.org_id, OrgMembership.role == Role.org_admin.value)
    )
    if (admins or 0) <= 1:
        raise Conflict("an organization keeps at least one org_admin", code="last_org_admin")


async def update_org_member(
    session: AsyncSession, scope: Scope, *, user_id: str, role: Role
) -> Member:
    membership = await _org_membership(session, scope, user_id)
    if role is not Role.org_admin:
        await _guard_last_admin(session, scope, membership)
    before = membership.role
    membership.role = role.value
    await session.flush()
    user = await session.get_one(User, user_id)
    await audit.record(
        session,
        scope.principal,
        "org.member.update",
        AuditTarget(scope.org_id, "user", user_id),
        details={"role": {"from": before, "to": role.value}},
    )
    return _member(membership, user)


async def remove_org_member(session: AsyncSession, scope: Scope, *, user_id: str) -> None:
    membership = await _org_membership(session, scope, user_id)
    await _guard_last_admin(session, scope, membership)
    await session.delete(membership)
    await audit.record(
        session,
        scope.principal,
        "org.member.remove",
        AuditTarget(scope.org_id, "user", user_id),
        details={"role": membership.role},
    )
    await session.flush()


# Project members -----------------------------------------------------------------------


def _project_role(role: Role) -> Role:
    if role not in PROJECT_ROLES:
        raise InvalidInput(
            "org_admin is an organization role, not a project role",
            code="invalid_role",
            details={"field": "role"},
        )
    return role


async def list_project_members(
    session: AsyncSession, scope: Scope, *, page: PageRequest
) -> Page[Member]:
    statement = select(ProjectMembership).where(
        ProjectMembership.org_id == scope.org_id,
        ProjectMembership.project_id == scope.project_id,
    )
    result = await paginate(session, statement, sort_key=[ProjectMembership.id], page=page)
    users = {
        u.id: u
        for u in await session.scalars(
            select(User).where(User.id.in_([m.user_id for m in result.items]))
        )
    }
    return Page([_member(m, users[m.user_id]) for m in result.items], result.next_cursor)


async def add_project_member(
    session: AsyncSession, scope: Scope, *, email: str, role: Role
) -> Member:
    assert scope.project_id is not None
    user = await _user_by_email(session, email)
    membership = ProjectMembership(
        org_id=scope.org_id,
        project_id=scope.project_id,
        user_id=user.id,
        role=_project_role(role).value,
    )
    session.add(membership)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("already a member of this project", code="already_member") from None
    await audit.record(
        session,
        scope.principal,
        "project.member.add",
        AuditTarget(scope.org_id, "user", user.id, project_id=scope.project_id),
        details={"email": user.email, "role": role.value},
    )
    return _member(membership, user)


async def _project_membership(
    session: AsyncSession, scope: Scope, user_id: str
) -> ProjectMembership:
    membership = (
        await session.scalar(
            select(ProjectMembership).where(
                ProjectMembership.project_id == scope.project_id,
                ProjectMembership.user_id == user_id,
            )
        )
        if is_id(user_id)
        else None
    )
    if membership is None:
        raise NotFound("not a member of this project", code="member_not_found")
    return membership


async def update_project_member(
    session: AsyncSession, scope: Scope, *, user_id: str, role: Role
) -> Member:
    membership = await _project_membership(session, scope, user_id)
    before = membership.role
    membership.role = _project_role(role).value
    await session.flush()
    user = await session.get_one(User, user_id)
    await audit.record(
        session,
        scope.principal,
        "project.member.update",
        AuditTarget(scope.org_id, "user", user_id, project_id=scope.project_id),
        details={"role": {"from": before, "to": role.value}},
    )
    return _member(membership, user)


async def remove_project_member(session: AsyncSession, scope: Scope, *, user_id: str) -> None:
    membership = await _project_membership(session, scope, user_id)
    await session.delete(membership)
    await audit.record(
        session,
        scope.principal,
        "project.member.remove",
        AuditTarget(scope.org_id, "user", user_id, project_id=scope.project_id),
        details={"role": membership.role},
    )
    await session.flush()


# Org API keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    record: ApiKey
    plaintext: str


async def create_api_key(
    session: AsyncSession,
    scope: Scope,
    *,
    name: str,
    role: Role,
    project_id: str | None,
    expires_at: datetime | None,
) -> NewApiKey:
    """A key acting with `role` (at the org, or at one project) for its creator."""
    if scope.principal.user_id is None:
        raise InvalidInput("API keys are created by people", code="api_key_needs_user")
    if project_id is not None:
        _project_role(role)
        project = await session.get(Project, project_id) if is_id(project_id) else None
        if project is None or project.org_id != scope.org_id:
            raise InvalidInput(
                "project_id is not a project of this organization",
                code="invalid_project",
                details={"field": "project_id"},
            )
    issued = tokens.issue(tokens.TokenKind.org_api_key)
    key = ApiKey(
        org_id=scope.org_id,
        project_id=project_id,
        name=name,
        role=role.value,
        created_by=scope.principal.user_id,
        token_prefix=issued.display_prefix,
        token_hash=issued.digest,
        expires_at=token_expiry(expires_at),
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        scope.principal,
        "api_key.create",
        AuditTarget(scope.org_id, "api_key", key.id, project_id=project_id),
        details={"name": name, "role": role.value, "token_prefix": issued.display_prefix},
    )
    return NewApiKey(key, issued.plaintext)


async def list_api_keys(session: AsyncSession, scope: Scope, *, page: PageRequest) -> Page[ApiKey]:
    statement = select(ApiKey).where(ApiKey.org_id == scope.org_id)
    return await paginate(session, statement, sort_key=[ApiKey.id], page=page, descending=True)


async def revoke_api_key(session: AsyncSession, scope: Scope, *, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id) if is_id(key_id) else None
    if key is None or key.org_id != scope.org_id:
        raise NotFound("API key not found", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await audit.record(
            session,
            scope.principal,
            "api_key.revoke",
            AuditTarget(scope.org_id, "api_key", key.id, project_id=key.project_id),
            details={"name": key.name},
        )
        await session.flush()
    return key
