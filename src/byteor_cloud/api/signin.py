"""Browser sign-in (local password and OIDC), sessions and CSRF: installed on the API app.

Routes (all on the UI origin, outside the API schema):

- `GET /auth/login` the sign-in page; `POST /auth/login` the password form;
- `GET /auth/oidc/start` → the identity provider → `GET /auth/callback`;
- `POST /auth/logout` revokes the session.

Cookies: the session cookie (`SESSION_COOKIE`, HttpOnly, SameSite=Lax, Path=/, Secure when
the UI origin is https) holds a random token whose hash is the session row; the sign-in
page's pre-session cookie pairs with the form's CSRF token before a session exists; the
flow cookie carries an OIDC sign-in in progress, sealed with the master key. Both of the
latter are scoped to `/auth` and short-lived.

CSRF: every unsafe request authenticated by the session cookie — a UI form or an API
call — carries the session's token in the `csrf_token` form field or the `X-CSRF-Token`
header, or is refused with 403 `csrf_failed`. Bearer-token calls are not affected (a
browser never attaches a bearer token on its own).

Redirects after sign-in only go to relative paths on this origin (`?next=/…`).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from byteor_cloud.api.auth import SESSION_COOKIE
from byteor_cloud.api.client_address import client_address
from byteor_cloud.api.deps import DbSession
from byteor_cloud.api.ratelimit import enforce
from byteor_cloud.config import Settings
from byteor_cloud.core.errors import NotFound, PermissionDenied, Unauthenticated
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.db.session import Database
from byteor_cloud.identity import sessions, signin
from byteor_cloud.identity.csrf import PRESESSION_LIFETIME, CsrfSigner
from byteor_cloud.identity.oidc import FLOW_LIFETIME, FlowSealer, OidcClient, OidcError
from byteor_cloud.identity.service import principal_for_user
from byteor_cloud.ratelimit import RouteClass
from byteor_cloud.ui.browser import (
    BROWSER_STATE_KEY,
    CSRF_FIELD,
    PRESESSION_TOKEN_STATE_KEY,
    BrowserUser,
    is_form,
    read_form,
    signed_in,
)
from byteor_cloud.ui.routes import templates

log = logging.getLogger(__name__)

PRESESSION_COOKIE = "byteor_presession"
OIDC_FLOW_COOKIE = "byteor_oidc_flow"
CSRF_HEADER = "X-CSRF-Token"
AUTH_PATH = "/auth"
LOGIN_PATH = "/auth/login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Paths that never render pages: no session lookup for them in the page middleware.
_NOT_PAGES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics")
_MAX_NEXT_CHARS = 2048

BAD_CREDENTIALS = "Incorrect email or password."
OIDC_FAILED = "Sign-in with your identity provider did not succeed. Please try again."
OIDC_UNVERIFIED = (
    "Your identity provider has not confirmed your email address, so it cannot be used "
    "to sign in here. Ask your administrator for help."
)
OIDC_UNAVAILABLE = "The identity provider cannot be reached right now. Please try again later."


@dataclass(frozen=True)
class SignInConfig:
    """What `install_sign_in` puts on `app.state.sign_in`."""

    settings: Settings
    csrf: CsrfSigner
    flows: FlowSealer
    oidc: OidcClient | None
    secure_cookies: bool


def _config(connection: HTTPConnection) -> SignInConfig:
    config: SignInConfig = connection.app.state.sign_in
    return config


def _address(request: Request) -> str:
    return client_address(request, _config(request).settings.trusted_proxies)


def safe_next(value: str | None) -> str:
    """`value` if it is a path on this origin, else `/`: never an open redirect.

    Browsers read `\\` as `/` and drop tabs and newlines, so `/\\evil` and `/\t/evil` would
    become `//evil` (another host): anything with those characters is refused outright.
    """
    if not value or len(value) > _MAX_NEXT_CHARS or not value.startswith("/"):
        return "/"
    if value.startswith("//") or any(c == "\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(f"{AUTH_PATH}/"):
        return "/"
    return value


# Cookies ------------------------------------------------------------------------------


def _set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int, path: str
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=_config(request).secure_cookies,
        httponly=True,
        samesite="lax",
    )


def _clear_cookie(response: Response, request: Request, name: str, *, path: str) -> None:
    response.delete_cookie(
        name, path=path, secure=_config(request).secure_cookies, httponly=True, samesite="lax"
    )


def _no_store(response: Response) -> Response:
    # Sign-in pages hold CSRF tokens and are never framed (no clickjacking of the forms).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def _signed_in_response(request: Request, result: signin.SignedIn, next_path: str) -> Response:
    response = RedirectResponse(next_path, status_code=303)
    _set_cookie(
        response,
        request,
        SESSION_COOKIE,
        result.session.token,
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
        path="/",
    )
    _clear_cookie(response, request, PRESESSION_COOKIE, path=AUTH_PATH)
    return _no_store(response)


# CSRF ---------------------------------------------------------------------------------


async def presented_csrf_token(request: Request) -> str | None:
    """The CSRF token a request carries: the header, or the field of a form body."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if is_form(request):
        return (await read_form(request)).get(CSRF_FIELD)
    return None


def _csrf_failed() -> PermissionDenied:
    return PermissionDenied("missing or invalid CSRF token", code="csrf_failed")


async def _check_session_csrf(request: Request, active: sessions.ActiveSession) -> None:
    token = await presented_csrf_token(request)
    if not _config(request).csrf.check_session(active.record.csrf_secret, token):
        raise _csrf_failed()


async def authenticate_cookie(request: Request, session: AsyncSession) -> Principal | None:
    """The `app.state.cookie_authenticator`: the session cookie's principal (None without
    a cookie), enforcing CSRF on unsafe methods."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    active = await sessions.find_active_session(session, token)
    if active is None:
        raise Unauthenticated("invalid, expired or revoked session", code="invalid_credential")
    if request.method not in SAFE_METHODS:
        await _check_session_csrf(request, active)
    return principal_for_user(active.user, CredentialKind.session, active.record.id)


async def _presession_csrf(request: Request) -> None:
    """The sign-in form's double-submit check: the field must match the cookie."""
    token = await presented_csrf_token(request)
    if not _config(request).csrf.check_presession(request.cookies.get(PRESESSION_COOKIE), token):
        raise _csrf_failed()


async def _limit_sign_in(request: Request) -> None:
    await enforce(request, RouteClass.sign_in, _address(request))


# Pages --------------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    email: str = "",
    next_path: str = "/",
) -> Response:
    config = _config(request)
    presession = request.cookies.get(PRESESSION_COOKIE)
    fresh = config.csrf.presession_fresh(presession)
    value = presession if presession and fresh else config.csrf.new_presession()
    setattr(request.state, PRESESSION_TOKEN_STATE_KEY, config.csrf.presession_token(value))
    response = templates.TemplateResponse(
        request,
        "auth/login.html",
        {
            "title": "Sign in",
            "oidc_enabled": config.oidc is not None,
            "oidc_start_url": f"{AUTH_PATH}/oidc/start?{urlencode({'next': next_path})}",
            "error": error,
            "email": email,
            "next_path": next_path,
        },
        status_code=status_code,
    )
    if value != presession:
        _set_cookie(
            response,
            request,
            PRESESSION_COOKIE,
            value,
            max_age=int(PRESESSION_LIFETIME.total_seconds()),
            path=AUTH_PATH,
        )
    return _no_store(response)


router = APIRouter(prefix=AUTH_PATH, include_in_schema=False)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    next_path = safe_next(next)
    if signed_in(request) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path=next_path)


@router.post("/login", dependencies=[Depends(_limit_sign_in), Depends(_presession_csrf)])
async def login_submit(request: Request, session: DbSession) -> Response:
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    email = form.get("email", "").strip()
    result = await signin.password_sign_in(
        session,
        email=email,
        password=form.get("password", ""),
        client_address=_address(request),
        replacing=request.cookies.get(SESSION_COOKIE),
    )
    if isinstance(result, signin.Refused):
        return _login_page(
            request, status_code=401, error=BAD_CREDENTIALS, email=email[:320], next_path=next_path
        )
    return _signed_in_response(request, result, next_path)


def _oidc(request: Request) -> OidcClient:
    client = _config(request).oidc
    if client is None:
        raise NotFound("OIDC sign-in is not configured", code="oidc_not_configured")
    return client


@router.get("/oidc/start")
async def oidc_start(request: Request, next: str | None = None) -> Response:
    client = _oidc(request)
    next_path = safe_next(next)
    flow = _config(request).flows.new_flow(next_path)
    try:
        url = await client.authorization_url(flow)
    except OidcError as exc:
        log.warning("OIDC sign-in could not start: %s (%s)", exc, exc.reason)
        return _login_page(request, status_code=503, error=OIDC_UNAVAILABLE, next_path=next_path)
    response = RedirectResponse(url, status_code=303)
    _set_cookie(
        response,
        request,
        OIDC_FLOW_COOKIE,
        _config(request).flows.seal(flow),
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path=AUTH_PATH,
    )
    return _no_store(response)


def _oidc_failure_page(request: Request, reason: str, next_path: str) -> Response:
    if reason == "email_not_verified":
        return _login_page(request, status_code=403, error=OIDC_UNVERIFIED, next_path=next_path)
    return _login_page(request, status_code=400, error=OIDC_FAILED, next_path=next_path)


async def _finish_oidc(request: Request, session: AsyncSession) -> Response:
    client = _oidc(request)
    flow = _config(request).flows.unseal(request.cookies.get(OIDC_FLOW_COOKIE))
    params = request.query_params
    address = _address(request)
    # Checked when the flow began and sealed since; checked again all the same.
    next_path = safe_next(flow.next_path) if flow else "/"

    async def refuse(reason: str, details: dict[str, str] | None = None) -> Response:
        await signin.record_failure(
            session, method=signin.OIDC, reason=reason, client_address=address, details=details
        )
        return _oidc_failure_page(request, reason, next_path)

    state = params.get("state") or ""
    if flow is None or not hmac.compare_digest(state.encode(), flow.state.encode()):
        return await refuse("state_mismatch")
    if params.get("error"):
        return await refuse("provider_error", {"error": params["error"][:64]})
    code = params.get("code")
    if not code:
        return await refuse("code_missing")
    try:
        identity = await client.finish(flow, code=code)
    except OidcError as exc:
        return await refuse(exc.reason)
    result = await signin.oidc_sign_in(
        session,
        identity=identity,
        client_address=address,
        replacing=request.cookies.get(SESSION_COOKIE),
    )
    if isinstance(result, signin.Refused):  # already logged by the service
        return _oidc_failure_page(request, result.reason, next_path)
    return _signed_in_response(request, result, next_path)


@router.get("/callback", dependencies=[Depends(_limit_sign_in)])
async def oidc_callback(request: Request, session: DbSession) -> Response:
    response = await _finish_oidc(request, session)
    # The flow is single use, whatever the outcome.
    _clear_cookie(response, request, OIDC_FLOW_COOKIE, path=AUTH_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, session: DbSession) -> Response:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    token = request.cookies.get(SESSION_COOKIE)
    active = await sessions.find_active_session(session, token) if token else None
    if active is not None:
        await _check_session_csrf(request, active)
        await signin.sign_out(session, active, client_address=_address(request))
    _clear_cookie(response, request, SESSION_COOKIE, path="/")
    return _no_store(response)


# The page middleware ------------------------------------------------------------------


class BrowserContextMiddleware:
    """Resolves the session cookie of page requests into a `BrowserUser` on the request
    state, so every page (and its header) knows who is signed in and their CSRF token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not str(scope.get("path", "")).startswith(_NOT_PAGES):
            connection = HTTPConnection(scope)
            token = connection.cookies.get(SESSION_COOKIE)
            if token:
                user = await _browser_user(connection, token)
                if user is not None:
                    scope.setdefault("state", {})[BROWSER_STATE_KEY] = user
        await self.app(scope, receive, send)


async def _browser_user(connection: HTTPConnection, token: str) -> BrowserUser | None:
    database: Database = connection.app.state.database
    async with database.transaction(readonly=True) as session:
        active = await sessions.find_active_session(session, token)
    if active is None:
        return None
    return BrowserUser(
        session_id=active.record.id,
        user_id=active.user.id,
        email=active.user.email,
        is_instance_admin=active.user.is_instance_admin,
        csrf_token=_config(connection).csrf.session_token(active.record.csrf_secret),
    )


def _oidc_client(settings: Settings) -> OidcClient | None:
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=f"{settings.effective_ui_base_url}{AUTH_PATH}/callback",
    )


def install_sign_in(app: FastAPI, settings: Settings) -> None:
    """Mount the sign-in routes and register the session-cookie authenticator."""
    master_key = settings.master_key()
    app.state.sign_in = SignInConfig(
        settings=settings,
        csrf=CsrfSigner(master_key),
        flows=FlowSealer(master_key),
        oidc=_oidc_client(settings),
        secure_cookies=settings.effective_ui_base_url.startswith("https://"),
    )
    app.state.cookie_authenticator = authenticate_cookie
    app.add_middleware(BrowserContextMiddleware)
    app.include_router(router)
