"""`/api/v1/orgs/{org_id}/signing-keys`: the org's signing keys (PRODUCT.md §9).

Reading shows the signing-keys document with each key's metadata; private material is
never part of any response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from byteor_cloud.api.auth import scoped
from byteor_cloud.api.deps import DbSession, SettingsDep
from byteor_cloud.api.schemas import ResponseModel, StrictModel
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.signing import service
from byteor_cloud.signing.keys import signing_box
from byteor_cloud.signing.rules import KeyStatus

router = APIRouter(prefix="/orgs/{org_id}/signing-keys", tags=["signing keys"])

ViewOrg = Annotated[Scope, Depends(scoped(Permission.view_org))]
ManageOrg = Annotated[Scope, Depends(scoped(Permission.manage_org_memberships))]


class SigningKeyOut(ResponseModel):
    """A document entry (`kid`, `alg`, `public_key`, `status`, `not_after`) plus metadata."""

    kid: str
    alg: str
    public_key: str = Field(description="The raw 32-byte Ed25519 key, base64url unpadded")
    status: KeyStatus
    not_after: datetime | None = Field(description="A retiring key verifies until then")
    created_at: datetime
    activate_at: datetime | None = Field(
        description="When a next key becomes (or an active key became) active"
    )
    retired_at: datetime | None


class SigningKeysOut(BaseModel):
    """The signing-keys document: the org's non-retired keys, by kid."""

    keys: list[SigningKeyOut]


class RotateIn(StrictModel):
    activate_now: bool = Field(
        False,
        description="Sign with the new key at once instead of after the activation delay "
        "(agents that have not refreshed their keys will refuse what it signs meanwhile)",
    )


@router.get("", summary="The organization's signing keys (the signing-keys document)")
async def list_signing_keys(session: DbSession, scope: ViewOrg) -> SigningKeysOut:
    keys = await service.list_keys(session, scope)
    return SigningKeysOut(keys=[SigningKeyOut.model_validate(key) for key in keys])


@router.post("", status_code=201, summary="Rotate: publish a new key that becomes active")
async def rotate_signing_key(
    body: RotateIn, session: DbSession, scope: ManageOrg, settings: SettingsDep
) -> SigningKeyOut:
    key = await service.rotate(
        session, scope, box=signing_box(settings.master_key()), activate_now=body.activate_now
    )
    return SigningKeyOut.model_validate(key)


@router.post("/{kid}/retire", summary="Retire a next or retiring key (never the active one)")
async def retire_signing_key(kid: str, session: DbSession, scope: ManageOrg) -> SigningKeyOut:
    return SigningKeyOut.model_validate(await service.retire(session, scope, kid=kid))
