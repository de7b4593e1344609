"""Drafts, versions and config bundles under a project / environment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from byteor_cloud.api.auth import scoped
from byteor_cloud.api.concurrency import expected_revision, set_etag
from byteor_cloud.api.deps import DbSession, PageParams
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut, ResponseModel, StrictModel
from byteor_cloud.api.v1.schemas_tenancy import Name
from byteor_cloud.authoring import bundles, drafts, versions
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.authoring import Version
from byteor_cloud.storage import BlobNotFound, BlobStore

router = APIRouter(prefix="/orgs/{org_id}/projects/{project_id}", tags=["authoring"])

ViewProject = Annotated[Scope, Depends(scoped(Permission.view_project))]
OperateProject = Annotated[Scope, Depends(scoped(Permission.operate_project))]
ViewEnvironment = Annotated[Scope, Depends(scoped(Permission.view_environment))]
OperateEnvironment = Annotated[Scope, Depends(scoped(Permission.operate_environment))]
Revision = Annotated[int, Depends(expected_revision)]
Target = Literal["single_ring", "lane_graph"]
E = "/environments/{environment_id}"
MAX_SPEC_BYTES = 64 * 1024 * 1024


class DraftIn(StrictModel):
    name: Name
    target: Target
    plan: dict[str, Any] = Field(description="A PipelinePlanV2 document; may be invalid")


class DraftOut(ResponseModel):
    id: str
    project_id: str
    name: str
    target: Target
    plan: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime
    updated_by: str | None


class CompileReportOut(ResponseModel):
    spec_kv: str | None
    spec_hash: str | None
    capabilities: list[str]
    diagnostics: list[dict[str, Any]]


class VersionOut(ResponseModel):
    id: str
    project_id: str
    number: int
    name: str
    status: Literal["ingesting", "ready", "failed"]
    spec_hash: str
    target: Target
    capabilities: list[str]
    compile_report: dict[str, Any]
    source_draft_id: str | None
    source_revision: int | None
    description: str | None
    labels: dict[str, Any]
    created_by: str | None
    created_at: datetime
    ready_at: datetime | None


class EmptyIn(StrictModel):
    pass


class BundleIn(StrictModel):
    version_id: str = Field(max_length=26)
    runtime_config: dict[str, str] = Field(default_factory=dict)
    secret_refs: dict[str, str] = Field(default_factory=dict)


class BundleOut(ResponseModel):
    id: str
    environment_id: str
    version_id: str
    runtime_config: dict[str, str]
    secret_refs: dict[str, str]
    bundle_hash: str
    created_by: str | None
    created_at: datetime


# Drafts --------------------------------------------------------------------------------


@router.get("/drafts", summary="Drafts of the project")
async def list_drafts(
    session: DbSession, scope: ViewProject, page: PageParams
) -> PageOut[DraftOut]:
    return page_out(await drafts.list_drafts(session, scope, page=page), DraftOut.model_validate)


@router.post("/drafts", status_code=201, summary="Create a draft (an invalid plan is fine)")
async def create_draft(
    body: DraftIn, session: DbSession, scope: OperateProject, response: Response
) -> DraftOut:
    draft = await drafts.create_draft(
        session, scope, name=body.name, target=body.target, plan=body.plan
    )
    set_etag(response, draft.revision)
    return DraftOut.model_validate(draft)


@router.get("/drafts/{draft_id}", summary="A draft")
async def get_draft(
    draft_id: str, session: DbSession, scope: ViewProject, response: Response
) -> DraftOut:
    draft = await drafts.get_draft(session, scope, draft_id)
    set_etag(response, draft.revision)
    return DraftOut.model_validate(draft)


@router.put("/drafts/{draft_id}", summary="Replace a draft (If-Match required)")
async def update_draft(
    draft_id: str,
    body: DraftIn,
    session: DbSession,
    scope: OperateProject,
    revision: Revision,
    response: Response,
) -> DraftOut:
    draft = await drafts.update_draft(
        session,
        scope,
        draft_id,
        revision=revision,
        name=body.name,
        target=body.target,
        plan=body.plan,
    )
    set_etag(response, draft.revision)
    return DraftOut.model_validate(draft)


@router.delete("/drafts/{draft_id}", status_code=204, summary="Delete a draft")
async def delete_draft(draft_id: str, session: DbSession, scope: OperateProject) -> None:
    await drafts.delete_draft(session, scope, draft_id)


@router.post("/drafts/{draft_id}/preview", summary="Compile the draft; nothing is stored")
async def preview_draft(
    draft_id: str, body: EmptyIn, session: DbSession, scope: ViewProject
) -> CompileReportOut:
    draft = await drafts.get_draft(session, scope, draft_id)
    return CompileReportOut.model_validate(drafts.compile_draft(draft).as_dict())


# Versions ------------------------------------------------------------------------------


@router.post(
    "/drafts/{draft_id}/versions",
    status_code=202,
    summary="Create a version from the draft (202 ingesting; 200 when the hash exists; 422)",
    responses={200: {"model": VersionOut, "description": "The existing version"}},
)
async def create_version(
    draft_id: str, body: EmptyIn, session: DbSession, scope: OperateProject, response: Response
) -> VersionOut:
    result = await versions.create_version(session, scope, draft_id)
    if not result.created:
        response.status_code = 200
    return VersionOut.model_validate(result.version)


@router.get("/versions", summary="Versions, newest first (`spec_hash` finds one by hash)")
async def list_versions(
    session: DbSession,
    scope: ViewProject,
    page: PageParams,
    spec_hash: Annotated[str | None, Query(max_length=71)] = None,
) -> PageOut[VersionOut]:
    result = await versions.list_versions(session, scope, page=page, spec_hash=spec_hash)
    return page_out(result, VersionOut.model_validate)


@router.get("/versions/{version_id}", summary="A version")
async def get_version(version_id: str, session: DbSession, scope: ViewProject) -> VersionOut:
    return VersionOut.model_validate(await versions.get_version(session, scope, version_id))


async def _stored(request: Request, key: str | None) -> bytes | None:
    if key is None:
        return None
    store: BlobStore = request.app.state.store
    try:
        return await store.read_bytes(key, max_bytes=MAX_SPEC_BYTES)
    except BlobNotFound:
        return None


@router.get(
    "/versions/{version_id}/spec.kv",
    summary="The exact bytes that were hashed",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_spec_kv(
    version_id: str, request: Request, session: DbSession, scope: ViewProject
) -> Response:
    version = await versions.get_version(session, scope, version_id)
    body = await _stored(request, version.spec_kv_key) or version.spec_kv.encode()
    return Response(
        body, media_type="text/plain; charset=utf-8", headers={"X-Spec-Hash": version.spec_hash}
    )


@router.get(
    "/versions/{version_id}/graph.svg",
    summary="The topology picture",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def get_graph_svg(
    version_id: str, request: Request, session: DbSession, scope: ViewProject
) -> Response:
    version = await versions.get_version(session, scope, version_id)
    body = await _stored(request, version.graph_svg_key) or versions.render_svg(version).encode()
    return Response(body, media_type="image/svg+xml")


@router.get("/versions/{version_id}/diff", summary="Diff against another version")
async def get_diff(
    version_id: str,
    session: DbSession,
    scope: ViewProject,
    against: Annotated[str, Query(max_length=26, description="The other version's id")],
) -> dict[str, Any]:
    new: Version = await versions.get_version(session, scope, version_id)
    old: Version = await versions.get_version(session, scope, against)
    return versions.render_diff(old, new).as_dict()


# Config bundles ------------------------------------------------------------------------


@router.get(E + "/config-bundles", summary="Config bundles of the environment")
async def list_bundles(
    session: DbSession, scope: ViewEnvironment, page: PageParams
) -> PageOut[BundleOut]:
    return page_out(await bundles.list_bundles(session, scope, page=page), BundleOut.model_validate)


@router.post(E + "/config-bundles", status_code=201, summary="Create a config bundle")
async def create_bundle(body: BundleIn, session: DbSession, scope: OperateEnvironment) -> BundleOut:
    bundle = await bundles.create_bundle(
        session,
        scope,
        version_id=body.version_id,
        runtime_config=body.runtime_config,
        secret_refs=body.secret_refs,
    )
    return BundleOut.model_validate(bundle)


@router.get(E + "/config-bundles/{bundle_id}", summary="A config bundle")
async def get_bundle(bundle_id: str, session: DbSession, scope: ViewEnvironment) -> BundleOut:
    return BundleOut.model_validate(await bundles.get_bundle(session, scope, bundle_id))
