"""`/api/v1/me`: the caller, and their personal access tokens."""

from __future__ import annotations

from fastapi import APIRouter

from byteor_cloud.api.auth import CurrentPrincipal
from byteor_cloud.api.deps import DbSession, PageParams
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut
from byteor_cloud.api.v1.schemas_tenancy import MeOut, NewTokenOut, TokenIn, TokenOut
from byteor_cloud.core.errors import PermissionDenied
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.identity import service as identity

router = APIRouter(prefix="/me", tags=["me"])


def _person(principal: Principal) -> str:
    # Tokens belong to people: an API key (or agent) cannot mint personal tokens.
    if principal.user_id is None or principal.credential_kind not in (
        CredentialKind.session,
        CredentialKind.personal_access_token,
    ):
        raise PermissionDenied(
            "personal tokens are managed by their person", code="personal_credential_required"
        )
    return principal.user_id


@router.get("", summary="Who you are")
async def me(session: DbSession, principal: CurrentPrincipal) -> MeOut:
    email = None
    if principal.user_id is not None:
        user = await identity.get_user(session, principal.user_id)
        email = user.email
    return MeOut(
        user_id=principal.user_id,
        email=email,
        is_instance_admin=principal.is_instance_admin,
        credential=principal.credential,
        credential_kind=principal.credential_kind.value,
    )


@router.get("/tokens", summary="Your personal access tokens")
async def list_tokens(
    session: DbSession, principal: CurrentPrincipal, page: PageParams
) -> PageOut[TokenOut]:
    result = await identity.list_personal_access_tokens(
        session, user_id=_person(principal), page=page
    )
    return page_out(result, TokenOut.model_validate)


@router.post("/tokens", status_code=201, summary="Create a personal access token (shown once)")
async def create_token(
    body: TokenIn, session: DbSession, principal: CurrentPrincipal
) -> NewTokenOut:
    created = await identity.create_personal_access_token(
        session,
        principal,
        user_id=_person(principal),
        name=body.name,
        expires_at=body.expires_at,
    )
    return NewTokenOut.model_validate(
        {**TokenOut.model_validate(created.record).model_dump(), "token": created.plaintext}
    )


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a personal access token")
async def revoke_token(token_id: str, session: DbSession, principal: CurrentPrincipal) -> None:
    await identity.revoke_personal_access_token(
        session, principal, user_id=_person(principal), token_id=token_id
    )
