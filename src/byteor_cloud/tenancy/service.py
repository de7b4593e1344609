"""Organizations, projects and environments: create, read, update, delete, all audited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.core.errors import Conflict, InvalidInput, PermissionDenied, PreconditionFailed
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.permissions import Role
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.tenancy import (
    Environment,
    Organization,
    OrgMembership,
    Project,
    ProjectMembership,
)
from byteor_cloud.db.pagination import paginate
from byteor_cloud.jobs.queue import enqueue
from byteor_cloud.signing import service as signing
from byteor_cloud.tenancy.jobs import PurgeBlobs, blob_prefix
from byteor_cloud.tenancy.rules import (
    EnvironmentPolicy,
    PolicyConflict,
    PolicyOverrides,
    Posture,
    RuntimeSettings,
    effective_policy,
)

# Checks that veto a delete without ?force=true (online agents, active deployments …);
# each later context registers its own. Each returns a reason or None.
DeletionBlocker = Callable[[AsyncSession, Scope], Awaitable[str | None]]
DELETION_BLOCKERS: list[DeletionBlocker] = []


def check_revision(current: int, expected: int) -> None:
    if current != expected:
        raise PreconditionFailed(
            "the resource changed since you read it",
            code="stale_revision",
            details={"current_revision": current},
        )


async def _unique(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a {what} with this name already exists", code="duplicate_name") from None


async def _blockers(session: AsyncSession, scope: Scope, force: bool) -> None:
    if force:
        return
    reasons = [r for check in DELETION_BLOCKERS if (r := await check(session, scope))]
    if reasons:
        raise Conflict(
            "deletion needs ?force=true: " + "; ".join(reasons),
            code="deletion_needs_force",
            details={"reasons": reasons},
        )


# Organizations -------------------------------------------------------------------------


async def create_org(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    allow_creation: bool,
    secret_box: SecretBox,
) -> Organization:
    """A new org; its creator becomes its org_admin, its audit chain starts and it gets an
    active signing key (sealed with `secret_box`)."""
    if (
        principal.credential_kind
        not in (
            CredentialKind.session,
            CredentialKind.personal_access_token,
        )
        or principal.user_id is None
    ):
        raise PermissionDenied(
            "organizations are created by signed-in people", code="org_creation_needs_user"
        )
    if not allow_creation and not principal.is_instance_admin:
        raise PermissionDenied(
            "organization creation is disabled on this instance", code="org_creation_disabled"
        )
    now = utcnow()
    org = Organization(name=name, created_by=principal.user_id, updated_at=now)
    session.add(org)
    await session.flush()
    session.add(OrgMembership(org_id=org.id, user_id=principal.user_id, role=Role.org_admin))
    await audit.start_chain(session, org.id)
    await audit.record(
        session,
        principal,
        "org.create",
        AuditTarget(org.id, "organization", org.id),
        details={"name": name},
    )
    await signing.issue_initial_key(session, principal, org_id=org.id, box=secret_box)
    return org


async def list_orgs(
    session: AsyncSession, principal: Principal, *, page: PageRequest
) -> Page[Organization]:
    """The orgs the principal belongs to (through an org or a project binding)."""
    statement = select(Organization)
    if principal.credential_kind is CredentialKind.org_api_key:
        statement = statement.where(Organization.id == principal.api_key_org_id)
    else:
        statement = statement.where(
            or_(
                Organization.id.in_(
                    select(OrgMembership.org_id).where(OrgMembership.user_id == principal.user_id)
                ),
                Organization.id.in_(
                    select(ProjectMembership.org_id).where(
                        ProjectMembership.user_id == principal.user_id
                    )
                ),
            )
        )
    return await paginate(session, statement, sort_key=[Organization.id], page=page)


async def get_org(session: AsyncSession, scope: Scope) -> Organization:
    return await session.get_one(Organization, scope.org_id)


async def update_org(
    session: AsyncSession, scope: Scope, *, revision: int, name: str
) -> Organization:
    org = await get_org(session, scope)
    check_revision(org.revision, revision)
    before = org.name
    org.name = name
    org.revision += 1
    org.updated_at = utcnow()
    await audit.record(
        session,
        scope.principal,
        "org.update",
        AuditTarget(org.id, "organization", org.id),
        details={"name": {"from": before, "to": name}},
    )
    return org


async def delete_org(session: AsyncSession, scope: Scope, *, force: bool) -> None:
    """Delete the org and everything below it (audit records too); blobs via a job."""
    await _blockers(session, scope, force)
    org = await get_org(session, scope)
    await enqueue(session, PurgeBlobs(prefix=blob_prefix(org.id)))
    # The org's audit chain leaves with it; the instance log keeps the fact.
    await audit.security_event(
        session,
        "org.delete",
        principal=scope.principal,
        details={"org_id": org.id, "name": org.name, "forced": force},
    )
    await session.delete(org)
    await session.flush()


# Projects ------------------------------------------------------------------------------


def _visible_projects(scope: Scope) -> Any:
    statement = select(Project).where(Project.org_id == scope.org_id)
    principal = scope.principal
    if scope.org_role is not None:
        return statement
    if principal.credential_kind is CredentialKind.org_api_key:
        return statement.where(Project.id == principal.api_key_project_id)
    return statement.where(
        Project.id.in_(
            select(ProjectMembership.project_id).where(
                ProjectMembership.org_id == scope.org_id,
                ProjectMembership.user_id == principal.user_id,
            )
        )
    )


async def create_project(session: AsyncSession, scope: Scope, *, name: str) -> Project:
    project = Project(
        org_id=scope.org_id, name=name, created_by=scope.principal.user_id, updated_at=utcnow()
    )
    session.add(project)
    await _unique(session, "project")
    await audit.record(
        session,
        scope.principal,
        "project.create",
        AuditTarget(scope.org_id, "project", project.id, project_id=project.id),
        details={"name": name},
    )
    return project


async def list_projects(session: AsyncSession, scope: Scope, *, page: PageRequest) -> Page[Project]:
    return await paginate(session, _visible_projects(scope), sort_key=[Project.id], page=page)


async def get_project(session: AsyncSession, scope: Scope) -> Project:
    project = await session.get_one(Project, scope.project_id)
    assert project.org_id == scope.org_id  # authorize() resolved it inside this org
    return project


async def update_project(
    session: AsyncSession, scope: Scope, *, revision: int, name: str
) -> Project:
    project = await get_project(session, scope)
    check_revision(project.revision, revision)
    before = project.name
    project.name = name
    project.revision += 1
    project.updated_at = utcnow()
    await _unique(session, "project")
    await audit.record(
        session,
        scope.principal,
        "project.update",
        AuditTarget(scope.org_id, "project", project.id, project_id=project.id),
        details={"name": {"from": before, "to": name}},
    )
    return project


async def delete_project(session: AsyncSession, scope: Scope, *, force: bool) -> None:
    await _blockers(session, scope, force)
    project = await get_project(session, scope)
    await enqueue(session, PurgeBlobs(prefix=blob_prefix(scope.org_id, project.id)))
    await audit.record(
        session,
        scope.principal,
        "project.delete",
        AuditTarget(scope.org_id, "project", project.id, project_id=project.id),
        details={"name": project.name, "forced": force},
    )
    await session.delete(project)
    await session.flush()


# Environments --------------------------------------------------------------------------


def _env_target(scope: Scope, environment: Environment) -> AuditTarget:
    return AuditTarget(
        scope.org_id,
        "environment",
        environment.id,
        project_id=environment.project_id,
        environment_id=environment.id,
    )


async def create_environment(
    session: AsyncSession,
    scope: Scope,
    *,
    name: str,
    posture: Posture,
    policy: PolicyOverrides | None,
    runtime: RuntimeSettings,
) -> Environment:
    assert scope.project_id is not None
    effective = _policy(posture, policy)
    environment = Environment(
        org_id=scope.org_id,
        project_id=scope.project_id,
        name=name,
        posture=posture.value,
        policy=effective.model_dump(mode="json"),
        created_by=scope.principal.user_id,
        updated_at=utcnow(),
        **runtime.model_dump(),
    )
    session.add(environment)
    await _unique(session, "environment")
    await audit.record(
        session,
        scope.principal,
        "environment.create",
        _env_target(scope, environment),
        details={
            "name": name,
            "posture": posture.value,
            "policy": environment.policy,
            **runtime.model_dump(),
        },
    )
    return environment


def _policy(posture: Posture, overrides: PolicyOverrides | None) -> EnvironmentPolicy:
    try:
        return effective_policy(posture, overrides)
    except PolicyConflict as exc:
        raise InvalidInput(
            str(exc), code="invalid_policy", details={"field": f"policy.{exc.field}"}
        ) from None


async def list_environments(
    session: AsyncSession, scope: Scope, *, page: PageRequest
) -> Page[Environment]:
    statement = select(Environment).where(
        Environment.org_id == scope.org_id, Environment.project_id == scope.project_id
    )
    return await paginate(session, statement, sort_key=[Environment.id], page=page)


async def get_environment(session: AsyncSession, scope: Scope) -> Environment:
    environment = await session.get_one(Environment, scope.environment_id)
    assert environment.project_id == scope.project_id
    return environment


async def update_environment(
    session: AsyncSession,
    scope: Scope,
    *,
    revision: int,
    name: str,
    posture: Posture,
    policy: PolicyOverrides | None,
    runtime: RuntimeSettings,
) -> Environment:
    """Replace name, posture, policy and runtime settings (PUT semantics: omitted policy
    fields take the posture's defaults)."""
    environment = await get_environment(session, scope)
    check_revision(environment.revision, revision)
    wanted: dict[str, Any] = {
        "name": name,
        "posture": posture.value,
        "policy": _policy(posture, policy).model_dump(mode="json"),
        **runtime.model_dump(),
    }
    changes = {
        key: {"from": getattr(environment, key), "to": value}
        for key, value in wanted.items()
        if getattr(environment, key) != value
    }
    for key, value in wanted.items():
        setattr(environment, key, value)
    environment.revision += 1
    environment.updated_at = utcnow()
    await _unique(session, "environment")
    await audit.record(
        session,
        scope.principal,
        "environment.update",
        _env_target(scope, environment),
        details=changes,
    )
    return environment


async def delete_environment(session: AsyncSession, scope: Scope, *, force: bool) -> None:
    await _blockers(session, scope, force)
    environment = await get_environment(session, scope)
    await enqueue(
        session,
        PurgeBlobs(prefix=blob_prefix(scope.org_id, environment.project_id, environment.id)),
    )
    await audit.record(
        session,
        scope.principal,
        "environment.delete",
        _env_target(scope, environment),
        details={"name": environment.name, "forced": force},
    )
    await session.delete(environment)
    await session.flush()
