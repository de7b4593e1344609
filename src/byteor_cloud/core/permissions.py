"""Roles, permissions and the resolution rules of PRODUCT.md §4, as data.

Code checks permissions, never role names. Resolution: `org_admin` holds every permission
below its org; inside a project a project-level binding replaces the org-level role; a
member with only project bindings has ViewOrg and sees only those projects.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    org_admin = "org_admin"
    project_admin = "project_admin"
    operator = "operator"
    viewer = "viewer"


class Permission(StrEnum):
    view_org = "ViewOrg"
    manage_org_memberships = "ManageOrgMemberships"
    view_project = "ViewProject"
    manage_project = "ManageProject"
    operate_project = "OperateProject"
    view_environment = "ViewEnvironment"
    manage_environment = "ManageEnvironment"
    operate_environment = "OperateEnvironment"


class Level(StrEnum):
    org = "org"
    project = "project"
    environment = "environment"


LEVEL_OF: dict[Permission, Level] = {
    Permission.view_org: Level.org,
    Permission.manage_org_memberships: Level.org,
    Permission.view_project: Level.project,
    Permission.manage_project: Level.project,
    Permission.operate_project: Level.project,
    Permission.view_environment: Level.environment,
    Permission.manage_environment: Level.environment,
    Permission.operate_environment: Level.environment,
}

_VIEW = {Permission.view_org, Permission.view_project, Permission.view_environment}
_OPERATE = _VIEW | {Permission.operate_project, Permission.operate_environment}
_ADMIN_PROJECT = _OPERATE | {Permission.manage_project, Permission.manage_environment}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.org_admin: frozenset(Permission),
    Role.project_admin: frozenset(_ADMIN_PROJECT),
    Role.operator: frozenset(_OPERATE),
    Role.viewer: frozenset(_VIEW),
}

# Roles that can be bound at project level (org_admin is an org-wide role only).
PROJECT_ROLES = frozenset({Role.project_admin, Role.operator, Role.viewer})


def effective_role(
    *, org_role: Role | None, project_role: Role | None, level: Level
) -> Role | None:
    """The role that decides a permission at `level` (None: no role applies there)."""
    if level is Level.org:
        return org_role
    if org_role is Role.org_admin:
        return Role.org_admin
    return project_role or org_role


def allows(
    permission: Permission,
    *,
    org_role: Role | None,
    project_role: Role | None,
    in_some_project: bool = False,
) -> bool:
    """Whether the bindings grant `permission` (its level picks which binding counts).

    `in_some_project`: the principal holds a project binding somewhere in the org.
    """
    level = LEVEL_OF[permission]
    if level is Level.org and org_role is None and (project_role or in_some_project):
        # Only project bindings: the org is visible (ViewOrg) and nothing else at org level.
        return permission is Permission.view_org
    role = effective_role(org_role=org_role, project_role=project_role, level=level)
    return role is not None and permission in ROLE_PERMISSIONS[role]
