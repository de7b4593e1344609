"""Local password sign-in: sessions that authenticate the API, one generic failure, sign-out
revoking the session, expiry, and where the browser is sent afterwards."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from byteor_cloud.api.app import create_app
from byteor_cloud.core.clock import utcnow
from byteor_cloud.db.models.identity import BrowserSession
from byteor_cloud.db.session import Database
from byteor_cloud.identity import tokens
from helpers.databases import TestDatabase

from .conftest import (
    PASSWORD,
    Person,
    page_csrf_token,
    security_events,
    session_cookie_header,
    sign_in,
)


async def test_the_right_password_gives_a_session_cookie_that_authenticates_the_api(
    client: httpx.AsyncClient, person: Person, database: Database
) -> None:
    response = await sign_in(client, person.email, PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = session_cookie_header(response).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie  # the UI origin is plain http here

    me = await client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert (me.json()["email"], me.json()["credential_kind"]) == (person.email, "session")

    # Only the token's hash is stored.
    token = client.cookies["byteor_session"]
    async with database.transaction(readonly=True) as session:
        stored = (await session.scalars(select(BrowserSession))).one()
    assert stored.token_hash == tokens.digest(token)
    assert token not in (stored.token_hash, stored.csrf_secret)
    assert timedelta(hours=11) < stored.expires_at - utcnow() <= timedelta(hours=12)

    [event] = await security_events(database, "identity.sign_in")
    assert event.details == {"method": "local", "user_id": person.user_id}
    assert event.actor_id == person.user_id


async def test_the_session_cookie_is_secure_when_the_ui_origin_is_https(
    test_db: TestDatabase, database: Database, person: Person
) -> None:
    app = create_app(
        test_db.settings(ui_public_base_url="https://cloud.example.com"), database=database
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://cloud.example.com") as c:
        response = await sign_in(c, person.email, PASSWORD)
    assert response.status_code == 303
    assert "secure" in session_cookie_header(response).lower()


async def test_a_wrong_password_and_an_unknown_email_get_one_generic_answer(
    client: httpx.AsyncClient, person: Person, database: Database
) -> None:
    wrong_password = await sign_in(client, person.email, "not the password at all")
    unknown_email = await sign_in(client, "nobody@example.com", PASSWORD)
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert "Incorrect email or password." in response.text
        assert "byteor_session=" not in response.headers.get("set-cookie", "")
    assert (await client.get("/api/v1/me")).status_code == 401

    failures = await security_events(database, "auth.sign_in_failed")
    assert [(e.details["method"], e.details["reason"]) for e in failures] == [
        ("local", "invalid_credentials"),
        ("local", "invalid_credentials"),
    ]
    assert failures[0].details.get("user_id") == person.user_id
    assert "user_id" not in failures[1].details
    logged = " ".join(str(e.details) for e in failures)
    for secret in ("not the password at all", PASSWORD, "nobody@example.com"):
        assert secret not in logged


async def test_signing_out_revokes_the_session(
    client: httpx.AsyncClient, person: Person, database: Database
) -> None:
    await sign_in(client, person.email, PASSWORD)
    old_cookie = client.cookies["byteor_session"]
    response = await client.post("/auth/logout", data={"csrf_token": await page_csrf_token(client)})
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login"
    assert 'byteor_session=""' in response.headers["set-cookie"]

    client.cookies.set("byteor_session", old_cookie)
    replay = await client.get("/api/v1/me")
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_credential"
    async with database.transaction(readonly=True) as session:
        stored = (await session.scalars(select(BrowserSession))).one()
    assert stored.revoked_at is not None
    [event] = await security_events(database, "identity.sign_out")
    assert event.details == {"user_id": person.user_id}


async def test_an_expired_session_is_refused(
    client: httpx.AsyncClient, person: Person, database: Database
) -> None:
    await sign_in(client, person.email, PASSWORD)
    assert (await client.get("/api/v1/me")).status_code == 200
    async with database.transaction() as session:
        await session.execute(
            update(BrowserSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    # The page header no longer shows anyone signed in either.
    assert person.email not in (await client.get("/")).text


async def test_the_page_header_shows_who_is_signed_in(
    client: httpx.AsyncClient, person: Person
) -> None:
    signed_out = await client.get("/")
    assert person.email not in signed_out.text
    assert 'href="/auth/login"' in signed_out.text
    await sign_in(client, person.email, PASSWORD)
    page = (await client.get("/")).text
    assert person.email in page
    assert 'action="/auth/logout"' in page
    # A signed-in visit to the sign-in page goes straight on.
    again = await client.get("/auth/login", params={"next": "/somewhere"})
    assert (again.status_code, again.headers["location"]) == (303, "/somewhere")


async def test_only_relative_redirect_targets_are_followed(
    client: httpx.AsyncClient, person: Person
) -> None:
    response = await sign_in(client, person.email, PASSWORD, next_path="/orgs?tab=members")
    assert response.headers["location"] == "/orgs?tab=members"
    client.cookies.clear()
    response = await sign_in(client, person.email, PASSWORD, next_path="https://evil.example/")
    assert response.headers["location"] == "/"


async def test_the_sign_in_page_renders_in_the_page_shell(client: httpx.AsyncClient) -> None:
    page = await client.get("/auth/login", params={"next": "//evil.example"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert '<header class="topbar">' in page.text
    assert 'name="password"' in page.text
    assert 'name="next" value="/"' in page.text
    # No identity provider configured: no provider button, and its route does not exist.
    assert "Sign in with your identity provider" not in page.text
    assert (await client.get("/auth/oidc/start")).status_code == 404
