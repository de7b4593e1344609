"""`/api/v1/orgs`: organizations, their members and their API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from byteor_cloud.api.auth import CurrentPrincipal, scoped
from byteor_cloud.api.concurrency import expected_revision, set_etag
from byteor_cloud.api.deps import DbSession, PageParams, SettingsDep
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut
from byteor_cloud.api.v1.schemas_tenancy import (
    ApiKeyIn,
    ApiKeyOut,
    MemberIn,
    MemberOut,
    NameIn,
    NewApiKeyOut,
    OrgOut,
    RoleIn,
)
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.signing.keys import signing_box
from byteor_cloud.tenancy import members, service

router = APIRouter(prefix="/orgs", tags=["organizations"])

ViewOrg = Annotated[Scope, Depends(scoped(Permission.view_org))]
ManageOrg = Annotated[Scope, Depends(scoped(Permission.manage_org_memberships))]
Force = Annotated[bool, Query(description="Delete even with online agents or active work")]


@router.get("", summary="Organizations you belong to")
async def list_orgs(
    session: DbSession, principal: CurrentPrincipal, page: PageParams
) -> PageOut[OrgOut]:
    return page_out(await service.list_orgs(session, principal, page=page), OrgOut.model_validate)


@router.post("", status_code=201, summary="Create an organization (you become its org_admin)")
async def create_org(
    body: NameIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    response: Response,
) -> OrgOut:
    org = await service.create_org(
        session,
        principal,
        name=body.name,
        allow_creation=settings.allow_org_creation,
        secret_box=signing_box(settings.master_key()),
    )
    set_etag(response, org.revision)
    return OrgOut.model_validate(org)


@router.get("/{org_id}", summary="An organization")
async def get_org(session: DbSession, scope: ViewOrg, response: Response) -> OrgOut:
    org = await service.get_org(session, scope)
    set_etag(response, org.revision)
    return OrgOut.model_validate(org)


@router.put("/{org_id}", summary="Rename an organization (If-Match required)")
async def update_org(
    body: NameIn,
    session: DbSession,
    scope: ManageOrg,
    response: Response,
    revision: Annotated[int, Depends(expected_revision)],
) -> OrgOut:
    org = await service.update_org(session, scope, revision=revision, name=body.name)
    set_etag(response, org.revision)
    return OrgOut.model_validate(org)


@router.delete("/{org_id}", status_code=204, summary="Delete an organization and all below it")
async def delete_org(session: DbSession, scope: ManageOrg, force: Force = False) -> None:
    await service.delete_org(session, scope, force=force)


@router.get("/{org_id}/members", summary="Members of the organization")
async def list_members(session: DbSession, scope: ViewOrg, page: PageParams) -> PageOut[MemberOut]:
    result = await members.list_org_members(session, scope, page=page)
    return page_out(result, MemberOut.model_validate)


@router.post("/{org_id}/members", status_code=201, summary="Add an existing user by email")
async def add_member(body: MemberIn, session: DbSession, scope: ManageOrg) -> MemberOut:
    member = await members.add_org_member(session, scope, email=body.email, role=body.role)
    return MemberOut.model_validate(member)


@router.put("/{org_id}/members/{user_id}", summary="Change a member's org role")
async def update_member(
    user_id: str, body: RoleIn, session: DbSession, scope: ManageOrg
) -> MemberOut:
    member = await members.update_org_member(session, scope, user_id=user_id, role=body.role)
    return MemberOut.model_validate(member)


@router.delete("/{org_id}/members/{user_id}", status_code=204, summary="Remove a member")
async def remove_member(user_id: str, session: DbSession, scope: ManageOrg) -> None:
    await members.remove_org_member(session, scope, user_id=user_id)


@router.get("/{org_id}/api-keys", summary="The organization's API keys")
async def list_api_keys(
    session: DbSession, scope: ManageOrg, page: PageParams
) -> PageOut[ApiKeyOut]:
    result = await members.list_api_keys(session, scope, page=page)
    return page_out(result, ApiKeyOut.model_validate)


@router.post("/{org_id}/api-keys", status_code=201, summary="Create an API key (shown once)")
async def create_api_key(body: ApiKeyIn, session: DbSession, scope: ManageOrg) -> NewApiKeyOut:
    created = await members.create_api_key(
        session,
        scope,
        name=body.name,
        role=body.role,
        project_id=body.project_id,
        expires_at=body.expires_at,
    )
    return NewApiKeyOut.model_validate(
        {**ApiKeyOut.model_validate(created.record).model_dump(), "key": created.plaintext}
    )


@router.delete("/{org_id}/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_api_key(key_id: str, session: DbSession, scope: ManageOrg) -> None:
    await members.revoke_api_key(session, scope, key_id=key_id)
