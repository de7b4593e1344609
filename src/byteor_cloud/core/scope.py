"""The resolved scope of an action: principal, the tenancy path, and what it may do there."""

from __future__ import annotations

from dataclasses import dataclass

from byteor_cloud.core.permissions import Permission, Role
from byteor_cloud.core.principal import Principal


@dataclass(frozen=True)
class Scope:
    """Produced only by authorization; services trust it and filter every query by it."""

    principal: Principal
    org_id: str
    project_id: str | None = None
    environment_id: str | None = None
    org_role: Role | None = None
    project_role: Role | None = None
    permissions: frozenset[Permission] = frozenset()

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions
