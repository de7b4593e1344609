"""Request and response shapes of the tenancy, membership and credential routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from byteor_cloud.api.schemas import ResponseModel, StrictModel
from byteor_cloud.core.permissions import Role
from byteor_cloud.tenancy.rules import PolicyOverrides, Posture, RuntimeSettings

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
LongName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]


class NameIn(StrictModel):
    name: Name


class OrgOut(ResponseModel):
    id: str
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime


class ProjectOut(ResponseModel):
    id: str
    org_id: str
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime


class EnvironmentIn(StrictModel):
    name: Name
    posture: Posture = Posture.dev
    policy: PolicyOverrides | None = Field(
        None, description="Fields to override; the rest take the posture's defaults (§8)"
    )
    max_inflight_deployments: int = Field(1, ge=1, le=100)
    artifact_retention_days: int = Field(30, ge=1, le=3650)
    heartbeat_interval_s: int = Field(30, ge=5, le=3600)

    def runtime(self) -> RuntimeSettings:
        return RuntimeSettings(
            max_inflight_deployments=self.max_inflight_deployments,
            artifact_retention_days=self.artifact_retention_days,
            heartbeat_interval_s=self.heartbeat_interval_s,
        )


class EnvironmentOut(ResponseModel):
    id: str
    org_id: str
    project_id: str
    name: str
    posture: Posture
    policy: dict[str, Any]
    max_inflight_deployments: int
    artifact_retention_days: int
    heartbeat_interval_s: int
    revision: int
    created_at: datetime
    updated_at: datetime


class MemberIn(StrictModel):
    email: Email
    role: Role


class RoleIn(StrictModel):
    role: Role


class MemberOut(ResponseModel):
    user_id: str
    email: str
    role: Role
    created_at: datetime


class TokenIn(StrictModel):
    name: LongName
    expires_at: datetime | None = None


class TokenOut(ResponseModel):
    id: str
    name: str
    token_prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown once: store it now")


class ApiKeyIn(StrictModel):
    name: LongName
    role: Role
    project_id: str | None = None
    expires_at: datetime | None = None


class ApiKeyOut(ResponseModel):
    id: str
    org_id: str
    project_id: str | None
    name: str
    role: Role
    token_prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewApiKeyOut(ApiKeyOut):
    key: str = Field(description="Shown once: store it now")


class MeOut(ResponseModel):
    user_id: str | None
    email: str | None
    is_instance_admin: bool
    credential: str
    credential_kind: str
