"""Who is calling, and what they may do here: the principal and scope dependencies.

Routes never check roles. They declare the permission they need with `scoped(...)`, which
authenticates, resolves the tenancy path from the URL and checks the permission; failures
are recorded by the error handlers in transactions of their own (api/errors.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.api.deps import DbSession
from byteor_cloud.api.ratelimit import enforce
from byteor_cloud.core.errors import PermissionDenied, Unauthenticated
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.principal import Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.identity import service as identity
from byteor_cloud.identity import tokens
from byteor_cloud.ratelimit import RouteClass
from byteor_cloud.tenancy.authz import authorize

BEARER = "bearer "
# The browser session cookie (set by sign-in, api/signin.py).
SESSION_COOKIE = "byteor_session"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    if not header.lower().startswith(BEARER) or len(header) > 512:
        raise Unauthenticated("malformed Authorization header", code="invalid_credential")
    return header[len(BEARER) :].strip()


async def authenticate(request: Request, session: AsyncSession) -> Principal:
    """The principal behind the request's bearer token or session cookie."""
    token = bearer_token(request)
    if token is not None:
        return await identity.authenticate_bearer(session, token)
    cookie_auth: Callable[[Request, AsyncSession], Awaitable[Principal | None]] | None = getattr(
        request.app.state, "cookie_authenticator", None
    )
    if cookie_auth is not None:
        principal = await cookie_auth(request, session)
        if principal is not None:
            return principal
    raise Unauthenticated("authentication required", code="unauthenticated")


async def rate_limit_people(request: Request) -> None:
    """Count the request against its credential before any database work, so a rejected
    request costs none. The key is the credential's digest: stable, never the secret."""
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    subject = (
        tokens.digest(token)[:32]
        if token
        else f"anonymous:{request.client.host if request.client else '-'}"
    )
    await enforce(request, RouteClass.people, subject)


async def current_principal(
    request: Request, session: DbSession, _limited: Annotated[None, Depends(rate_limit_people)]
) -> Principal:
    principal = await authenticate(request, session)
    request.state.principal = principal
    metrics = getattr(request.app.state, "auth_metrics", None)
    if metrics is not None:
        metrics.labels("authenticated").inc()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def scoped(permission: Permission) -> Callable[..., Awaitable[Scope]]:
    """A dependency resolving org/project/environment ids from the path for `permission`."""

    async def dependency(
        request: Request, session: DbSession, principal: CurrentPrincipal
    ) -> Scope:
        params = request.path_params
        return await authorize(
            session,
            principal,
            permission,
            org_id=params["org_id"],
            project_id=params.get("project_id"),
            environment_id=params.get("environment_id"),
        )

    return dependency


async def require_instance_admin(principal: CurrentPrincipal) -> Principal:
    """The instance administrator (job queue, users); no org rights come with it."""
    if not principal.is_instance_admin:
        raise PermissionDenied("instance administrators only", code="instance_admin_required")
    return principal
