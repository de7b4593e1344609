"""Authorization: principal + tenancy path + permission → Scope, or the right failure.

Non-members get NotVisible (404: existence is never leaked, logged to the instance
security log); members without the permission get Denied (403, audited in the org's
chain). Both are raised before anything else happens, so the edge records them in a
transaction of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.errors import NotFound, PermissionDenied
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.permissions import ROLE_PERMISSIONS, Permission, Role, allows
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.tenancy import (
    Environment,
    Organization,
    OrgMembership,
    Project,
    ProjectMembership,
)


class NotVisible(NotFound):
    """The caller is not a member of what it asked for (404, security-logged)."""


class Denied(PermissionDenied):
    """A member lacking a permission (403, audited in the org's chain)."""

    def __init__(
        self,
        message: str,
        *,
        permission: Permission,
        principal: Principal,
        org_id: str,
        project_id: str | None = None,
        environment_id: str | None = None,
    ) -> None:
        super().__init__(
            message, code="permission_denied", details={"permission": permission.value}
        )
        self.permission = permission
        self.principal = principal
        self.org_id = org_id
        self.project_id = project_id
        self.environment_id = environment_id


@dataclass(frozen=True)
class Bindings:
    org_role: Role | None
    project_role: Role | None
    in_some_project: bool = False

    def allows(self, permission: Permission) -> bool:
        return allows(
            permission,
            org_role=self.org_role,
            project_role=self.project_role,
            in_some_project=self.in_some_project,
        )


async def _user_roles(
    session: AsyncSession, user_id: str, org_id: str, project_id: str | None
) -> tuple[Role | None, Role | None, bool]:
    """(org role, role in `project_id`, whether any project binding exists in the org)."""
    org_role = await session.scalar(
        select(OrgMembership.role).where(
            OrgMembership.org_id == org_id, OrgMembership.user_id == user_id
        )
    )
    rows = (
        await session.execute(
            select(ProjectMembership.project_id, ProjectMembership.role).where(
                ProjectMembership.org_id == org_id, ProjectMembership.user_id == user_id
            )
        )
    ).all()
    project_role = next((Role(role) for pid, role in rows if pid == project_id), None)
    return (Role(org_role) if org_role else None), project_role, bool(rows)


async def bindings_for(
    session: AsyncSession, principal: Principal, org_id: str, project_id: str | None
) -> tuple[Bindings, bool]:
    """The principal's bindings in the org (and project), and whether the org is visible."""
    if principal.credential_kind is CredentialKind.org_api_key:
        if principal.api_key_org_id != org_id or principal.api_key_role is None:
            return Bindings(None, None), False
        if principal.api_key_project_id is None:
            return Bindings(principal.api_key_role, None), True
        project_role = (
            principal.api_key_role if principal.api_key_project_id == project_id else None
        )
        return Bindings(None, project_role, in_some_project=True), True
    if principal.user_id is None or principal.credential_kind is CredentialKind.agent_key:
        return Bindings(None, None), False
    org_role, project_role, any_project = await _user_roles(
        session, principal.user_id, org_id, project_id
    )
    bindings = Bindings(org_role, project_role, in_some_project=any_project)
    return bindings, org_role is not None or any_project


async def authorize(
    session: AsyncSession,
    principal: Principal,
    permission: Permission,
    *,
    org_id: str,
    project_id: str | None = None,
    environment_id: str | None = None,
) -> Scope:
    """Resolve the tenancy path for `principal` and check `permission` on it."""
    hidden = NotVisible("not found", code="not_found")
    if not is_id(org_id) or await session.get(Organization, org_id) is None:
        raise hidden
    bindings, sees_org = await bindings_for(session, principal, org_id, project_id)
    if not sees_org:
        raise hidden
    if project_id is not None:
        project = await session.get(Project, project_id) if is_id(project_id) else None
        if project is None or project.org_id != org_id:
            raise hidden
        if bindings.org_role is None and bindings.project_role is None:
            raise hidden  # a member of other projects only: this one is not visible
    if environment_id is not None:
        environment = (
            await session.get(Environment, environment_id) if is_id(environment_id) else None
        )
        if environment is None or environment.project_id != project_id:
            raise hidden
    if not bindings.allows(permission):
        raise Denied(
            f"missing permission {permission.value}",
            permission=permission,
            principal=principal,
            org_id=org_id,
            project_id=project_id,
            environment_id=environment_id,
        )
    granted = frozenset(p for p in Permission if bindings.allows(p))
    return Scope(
        principal=principal,
        org_id=org_id,
        project_id=project_id,
        environment_id=environment_id,
        org_role=bindings.org_role,
        project_role=bindings.project_role,
        permissions=granted,
    )


__all__ = ["ROLE_PERMISSIONS", "Bindings", "Denied", "NotVisible", "authorize", "bindings_for"]
