"""Every table's model, imported here so `metadata` is complete for Alembic and db check."""

from byteor_cloud.db.base import Base
from byteor_cloud.db.models.agents import Agent, AgentKey, EnrollmentToken
from byteor_cloud.db.models.audit import AuditChainHead, AuditRecord, SecurityEvent
from byteor_cloud.db.models.authoring import ConfigBundle, Draft, Version
from byteor_cloud.db.models.deployments import Approval, Deployment, DeploymentTarget
from byteor_cloud.db.models.idempotency import IdempotencyRecord
from byteor_cloud.db.models.identity import (
    BrowserSession,
    PersonalAccessToken,
    User,
    UserIdentity,
)
from byteor_cloud.db.models.jobs import Job, PeriodicSchedule
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.models.tenancy import (
    ApiKey,
    Environment,
    Organization,
    OrgMembership,
    Project,
    ProjectMembership,
)

metadata = Base.metadata

__all__ = [
    "Agent",
    "AgentKey",
    "ApiKey",
    "Approval",
    "AuditChainHead",
    "AuditRecord",
    "Base",
    "BrowserSession",
    "ConfigBundle",
    "Deployment",
    "DeploymentTarget",
    "Draft",
    "EnrollmentToken",
    "Environment",
    "IdempotencyRecord",
    "Job",
    "OrgMembership",
    "Organization",
    "PeriodicSchedule",
    "PersonalAccessToken",
    "Project",
    "ProjectMembership",
    "SecurityEvent",
    "SigningKey",
    "User",
    "UserIdentity",
    "Version",
    "metadata",
]
