"""`POST /api/v1/authz/explain`: may principal P do action A on resource R, and why."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from byteor_cloud.api.auth import CurrentPrincipal
from byteor_cloud.api.deps import DbSession
from byteor_cloud.api.schemas import ResponseModel, StrictModel
from byteor_cloud.core.permissions import Permission
from byteor_cloud.tenancy import explain as explainer

router = APIRouter(prefix="/authz", tags=["authz"])


class ExplainIn(StrictModel):
    permission: Permission = Field(description="The action, as a permission name")
    org_id: str = Field(max_length=26)
    project_id: str | None = Field(None, max_length=26)
    environment_id: str | None = Field(None, max_length=26)
    user_id: str | None = Field(
        None, max_length=26, description="Whom to ask about (default: yourself)"
    )


class ExplainOut(ResponseModel):
    allowed: bool
    decision: str
    permission: Permission
    user_id: str | None
    bindings: list[dict[str, str | None]]
    reason: str


@router.post("/explain", summary="Explain an authorization decision")
async def explain(body: ExplainIn, session: DbSession, principal: CurrentPrincipal) -> ExplainOut:
    result = await explainer.explain(
        session,
        principal,
        permission=body.permission,
        org_id=body.org_id,
        project_id=body.project_id,
        environment_id=body.environment_id,
        user_id=body.user_id,
    )
    return ExplainOut.model_validate(result)
