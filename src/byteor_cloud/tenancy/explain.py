"""Explaining an authorization decision: the bindings that made it, in words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.ids import is_id
from byteor_cloud.core.permissions import LEVEL_OF, Level, Permission
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.db.models.identity import User
from byteor_cloud.db.models.tenancy import Environment, Project
from byteor_cloud.tenancy.authz import NotVisible, bindings_for


async def explain(
    session: AsyncSession,
    caller: Principal,
    *,
    permission: Permission,
    org_id: str,
    project_id: str | None,
    environment_id: str | None,
    user_id: str | None,
) -> dict[str, Any]:
    """For the caller's own orgs only: about another user needs ViewOrg there."""
    _, caller_sees = await bindings_for(session, caller, org_id, None)
    if not caller_sees:
        raise NotVisible("not found", code="not_found")
    await _check_path(session, org_id, project_id, environment_id)
    subject = caller
    if user_id is not None and user_id != caller.user_id:
        user = await session.get(User, user_id) if is_id(user_id) else None
        if user is None:
            raise NotVisible("not found", code="not_found")
        subject = Principal(CredentialKind.personal_access_token, "explain", user.id, user.email)
    bindings, sees = await bindings_for(session, subject, org_id, project_id)
    allowed = sees and bindings.allows(permission)
    described: list[dict[str, str | None]] = []
    if bindings.org_role is not None:
        described.append({"level": "org", "id": org_id, "role": bindings.org_role.value})
    if bindings.project_role is not None:
        described.append(
            {"level": "project", "id": project_id, "role": bindings.project_role.value}
        )
    return {
        "allowed": allowed,
        "decision": "allow" if allowed else ("deny" if sees else "not_member"),
        "permission": permission,
        "user_id": subject.user_id,
        "bindings": described,
        "reason": _reason(permission, allowed, sees, described),
    }


async def _check_path(
    session: AsyncSession, org_id: str, project_id: str | None, environment_id: str | None
) -> None:
    if project_id is not None:
        project = await session.get(Project, project_id) if is_id(project_id) else None
        if project is None or project.org_id != org_id:
            raise NotVisible("not found", code="not_found")
    if environment_id is not None:
        environment = (
            await session.scalar(select(Environment).where(Environment.id == environment_id))
            if is_id(environment_id)
            else None
        )
        if environment is None or environment.project_id != project_id:
            raise NotVisible("not found", code="not_found")


def _reason(
    permission: Permission, allowed: bool, sees: bool, bindings: list[dict[str, str | None]]
) -> str:
    if not sees:
        return "not a member of this organization or project"
    level = LEVEL_OF[permission]
    deciding = [b for b in bindings if b["level"] == "project"] if level is not Level.org else []
    deciding = deciding or [b for b in bindings if b["level"] == "org"] or bindings
    roles = ", ".join(f"{b['role']} at {b['level']} level" for b in deciding)
    verb = "grants" if allowed else "does not grant"
    return f"{roles} {verb} {permission.value}"
