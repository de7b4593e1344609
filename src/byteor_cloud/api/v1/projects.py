"""Projects, project members and environments under `/api/v1/orgs/{org_id}/projects`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from byteor_cloud.api.auth import scoped
from byteor_cloud.api.concurrency import expected_revision, set_etag
from byteor_cloud.api.deps import DbSession, PageParams
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut
from byteor_cloud.api.v1.schemas_tenancy import (
    EnvironmentIn,
    EnvironmentOut,
    MemberIn,
    MemberOut,
    NameIn,
    ProjectOut,
    RoleIn,
)
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.tenancy import members, service

router = APIRouter(prefix="/orgs/{org_id}/projects", tags=["projects"])
P = "/{project_id}"
E = P + "/environments/{environment_id}"

ViewOrg = Annotated[Scope, Depends(scoped(Permission.view_org))]
ManageOrg = Annotated[Scope, Depends(scoped(Permission.manage_org_memberships))]
ViewProject = Annotated[Scope, Depends(scoped(Permission.view_project))]
ManageProject = Annotated[Scope, Depends(scoped(Permission.manage_project))]
ViewEnvironment = Annotated[Scope, Depends(scoped(Permission.view_environment))]
ManageEnvironment = Annotated[Scope, Depends(scoped(Permission.manage_environment))]
Revision = Annotated[int, Depends(expected_revision)]
Force = Annotated[bool, Query(description="Delete even with online agents or active work")]


@router.get("", summary="Projects you can see")
async def list_projects(
    session: DbSession, scope: ViewOrg, page: PageParams
) -> PageOut[ProjectOut]:
    result = await service.list_projects(session, scope, page=page)
    return page_out(result, ProjectOut.model_validate)


@router.post("", status_code=201, summary="Create a project (org_admin)")
async def create_project(
    body: NameIn, session: DbSession, scope: ManageOrg, response: Response
) -> ProjectOut:
    project = await service.create_project(session, scope, name=body.name)
    set_etag(response, project.revision)
    return ProjectOut.model_validate(project)


@router.get(P, summary="A project")
async def get_project(session: DbSession, scope: ViewProject, response: Response) -> ProjectOut:
    project = await service.get_project(session, scope)
    set_etag(response, project.revision)
    return ProjectOut.model_validate(project)


@router.put(P, summary="Rename a project (If-Match required)")
async def update_project(
    body: NameIn,
    session: DbSession,
    scope: ManageProject,
    revision: Revision,
    response: Response,
) -> ProjectOut:
    project = await service.update_project(session, scope, revision=revision, name=body.name)
    set_etag(response, project.revision)
    return ProjectOut.model_validate(project)


@router.delete(P, status_code=204, summary="Delete a project and all below it")
async def delete_project(session: DbSession, scope: ManageProject, force: Force = False) -> None:
    await service.delete_project(session, scope, force=force)


@router.get(P + "/members", summary="Project members (project-level bindings)")
async def list_project_members(
    session: DbSession, scope: ViewProject, page: PageParams
) -> PageOut[MemberOut]:
    result = await members.list_project_members(session, scope, page=page)
    return page_out(result, MemberOut.model_validate)


@router.post(P + "/members", status_code=201, summary="Bind an existing user to the project")
async def add_project_member(body: MemberIn, session: DbSession, scope: ManageProject) -> MemberOut:
    member = await members.add_project_member(session, scope, email=body.email, role=body.role)
    return MemberOut.model_validate(member)


@router.put(P + "/members/{user_id}", summary="Change a project binding's role")
async def update_project_member(
    user_id: str, body: RoleIn, session: DbSession, scope: ManageProject
) -> MemberOut:
    member = await members.update_project_member(session, scope, user_id=user_id, role=body.role)
    return MemberOut.model_validate(member)


@router.delete(P + "/members/{user_id}", status_code=204, summary="Remove a project binding")
async def remove_project_member(user_id: str, session: DbSession, scope: ManageProject) -> None:
    await members.remove_project_member(session, scope, user_id=user_id)


@router.get(P + "/environments", summary="Environments of the project")
async def list_environments(
    session: DbSession, scope: ViewProject, page: PageParams
) -> PageOut[EnvironmentOut]:
    result = await service.list_environments(session, scope, page=page)
    return page_out(result, EnvironmentOut.model_validate)


@router.post(P + "/environments", status_code=201, summary="Create an environment")
async def create_environment(
    body: EnvironmentIn, session: DbSession, scope: ManageProject, response: Response
) -> EnvironmentOut:
    environment = await service.create_environment(
        session,
        scope,
        name=body.name,
        posture=body.posture,
        policy=body.policy,
        runtime=body.runtime(),
    )
    set_etag(response, environment.revision)
    return EnvironmentOut.model_validate(environment)


@router.get(E, summary="An environment")
async def get_environment(
    session: DbSession, scope: ViewEnvironment, response: Response
) -> EnvironmentOut:
    environment = await service.get_environment(session, scope)
    set_etag(response, environment.revision)
    return EnvironmentOut.model_validate(environment)


@router.put(E, summary="Update an environment's name, posture and policy (If-Match required)")
async def update_environment(
    body: EnvironmentIn,
    session: DbSession,
    scope: ManageEnvironment,
    revision: Revision,
    response: Response,
) -> EnvironmentOut:
    environment = await service.update_environment(
        session,
        scope,
        revision=revision,
        name=body.name,
        posture=body.posture,
        policy=body.policy,
        runtime=body.runtime(),
    )
    set_etag(response, environment.revision)
    return EnvironmentOut.model_validate(environment)


@router.delete(E, status_code=204, summary="Delete an environment and all below it")
async def delete_environment(
    session: DbSession, scope: ManageEnvironment, force: Force = False
) -> None:
    await service.delete_environment(session, scope, force=force)
