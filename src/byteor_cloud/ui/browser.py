"""Who the browser is signed in as, for page rendering: the request-state key, the
template helpers (`csrf_field()`, `csrf_token()`, `signed_in_user()`) and form reading.

The sign-in layer (api/signin.py) resolves the session cookie of every page request
into a `BrowserUser` on the request state before the page runs, and the sign-in page
puts its pre-session token there; templates only read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import pass_context
from markupsafe import Markup
from starlette.requests import HTTPConnection, Request

from byteor_cloud.core.errors import MalformedRequest, UnsupportedMediaType

BROWSER_STATE_KEY = "browser_user"
# The pre-session CSRF token of the sign-in page (no session exists yet).
PRESESSION_TOKEN_STATE_KEY = "presession_csrf_token"  # noqa: S105 - a key name
CSRF_FIELD = "csrf_token"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 100


@dataclass(frozen=True)
class BrowserUser:
    """The signed-in person of a page request."""

    session_id: str
    user_id: str
    email: str
    is_instance_admin: bool
    csrf_token: str


def signed_in(connection: HTTPConnection) -> BrowserUser | None:
    """The signed-in person of this page request, if any."""
    value = connection.scope.get("state", {}).get(BROWSER_STATE_KEY)
    return value if isinstance(value, BrowserUser) else None


def _request(context: Mapping[str, Any]) -> Request | None:
    request = context.get("request")
    return request if isinstance(request, Request) else None


def _token_for(request: Request | None) -> str:
    if request is None:
        return ""
    user = signed_in(request)
    if user is not None:
        return user.csrf_token
    token = request.scope.get("state", {}).get(PRESESSION_TOKEN_STATE_KEY)
    return token if isinstance(token, str) else ""


@pass_context
def csrf_token(context: Mapping[str, Any]) -> str:
    """The CSRF token for this page's forms (or for an `X-CSRF-Token` header)."""
    return _token_for(_request(context))


@pass_context
def csrf_field(context: Mapping[str, Any]) -> Markup:
    """`{{ csrf_field() }}` inside every `<form method="post">`."""
    # Markup.format escapes its arguments.
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, _token_for(_request(context))
    )


@pass_context
def signed_in_user(context: Mapping[str, Any]) -> BrowserUser | None:
    """The signed-in person, for the page header."""
    request = _request(context)
    return signed_in(request) if request is not None else None


TEMPLATE_GLOBALS = {
    "csrf_field": csrf_field,
    "csrf_token": csrf_token,
    "signed_in_user": signed_in_user,
}


def is_form(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == FORM_MEDIA_TYPE


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (first value per name); our forms are all urlencoded.

    Starlette caches the body, so reading it here (say, for the CSRF check) leaves it
    readable by the route.
    """
    if not is_form(request):
        raise UnsupportedMediaType(f"expected a form body ({FORM_MEDIA_TYPE})")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise MalformedRequest("form body too large", code="form_too_large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("form body is not readable", code="malformed_form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form
