"""CSRF: forms and cookie-authenticated API calls carry the session's token (or, before
sign-in, the pre-session pair); bearer-token calls need none."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from byteor_cloud.api.signin import safe_next
from byteor_cloud.db.session import Database
from helpers.identity import make_user

from .conftest import PASSWORD, Person, login_form_token, page_csrf_token, sign_in


def _post_headers(**extra: str) -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4()), **extra}


async def test_a_sign_in_form_without_its_csrf_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, person: Person
) -> None:
    form = {"email": person.email, "password": PASSWORD}
    missing = await client.post("/auth/login", data=form)
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "csrf_failed"

    # A token from another browser's sign-in page does not match this browser's cookie.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        foreign = await login_form_token(other)
    await login_form_token(client)
    forged = await client.post("/auth/login", data={**form, "csrf_token": foreign})
    assert forged.status_code == 403
    assert "byteor_session" not in client.cookies


async def test_the_sign_out_form_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, person: Person
) -> None:
    await sign_in(client, person.email, PASSWORD)
    refused = await client.post("/auth/logout", data={"csrf_token": "not-the-token"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert (await client.get("/api/v1/me")).status_code == 200  # still signed in


async def test_cookie_authenticated_api_writes_need_the_csrf_header(
    client: httpx.AsyncClient, person: Person
) -> None:
    await sign_in(client, person.email, PASSWORD)
    body = {"name": "Acme"}
    refused = await client.post("/api/v1/orgs", json=body, headers=_post_headers())
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = await client.post(
        "/api/v1/orgs", json=body, headers=_post_headers(**{"X-CSRF-Token": "forged"})
    )
    assert wrong.status_code == 403

    token = await page_csrf_token(client)
    created = await client.post(
        "/api/v1/orgs", json=body, headers=_post_headers(**{"X-CSRF-Token": token})
    )
    assert created.status_code == 201, created.text
    # Reads need no token.
    listed = await client.get("/api/v1/orgs")
    assert [org["name"] for org in listed.json()["items"]] == ["Acme"]


async def test_bearer_token_api_writes_need_no_csrf_token(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, "robot@example.com")
    created = await client.post(
        "/api/v1/orgs", json={"name": "Bots"}, headers=_post_headers(**user.headers)
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, "/"),
        ("", "/"),
        ("/orgs/1?tab=members#top", "/orgs/1?tab=members#top"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("orgs", "/"),
        ("/auth/logout", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_only_paths_on_this_origin_are_redirect_targets(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
