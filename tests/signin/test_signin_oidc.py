"""OIDC sign-in end to end against a real provider process: authorization code + PKCE,
state and nonce, users matched by issuer + subject, linking only verified emails."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sqlalchemy import select

from byteor_cloud.db.models.identity import BrowserSession, User, UserIdentity
from byteor_cloud.db.session import Database

from .conftest import (
    OIDC_CLIENT_ID,
    UI_BASE,
    OidcFlow,
    make_person,
    security_events,
    session_cookie_header,
)


async def _identities(database: Database) -> list[tuple[str, str, str]]:
    async with database.transaction(readonly=True) as session:
        rows = await session.execute(
            select(UserIdentity.issuer, UserIdentity.subject, User.email).join(
                User, User.id == UserIdentity.user_id
            )
        )
        return [tuple(row) for row in rows.all()]


async def test_oidc_sign_in_creates_the_user_and_a_session_that_works_for_the_api(
    oidc_flow: OidcFlow, oidc_provider: str, database: Database
) -> None:
    await oidc_flow.set_claims("sub-ada", email="Ada@Example.com", email_verified=True, name="Ada")
    authorization_url = await oidc_flow.start(next_path="/orgs")
    query = parse_qs(urlsplit(authorization_url).query)
    assert query["client_id"] == [OIDC_CLIENT_ID]
    assert query["redirect_uri"] == [f"{UI_BASE}/auth/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= query.keys()
    assert set(query["scope"][0].split()) >= {"openid", "email"}

    callback = await oidc_flow.authorize(authorization_url, "sub-ada")
    response = await oidc_flow.app.get(callback)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/orgs"
    assert "httponly" in session_cookie_header(response).lower()

    me = await oidc_flow.app.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert (me.json()["email"], me.json()["credential_kind"]) == ("ada@example.com", "session")
    assert await _identities(database) == [(oidc_provider, "sub-ada", "ada@example.com")]
    [event] = await security_events(database, "identity.sign_in")
    assert event.details["method"] == "oidc"
    assert event.details["user_id"] == me.json()["user_id"]
    assert event.details["created"] is True


async def test_a_second_sign_in_with_the_same_subject_finds_the_same_user(
    oidc_flow: OidcFlow, database: Database
) -> None:
    await oidc_flow.set_claims("sub-grace", email="grace@example.com", email_verified=True)
    await oidc_flow.sign_in("sub-grace")
    first = (await oidc_flow.app.get("/api/v1/me")).json()["user_id"]
    first_cookie = oidc_flow.app.cookies["byteor_session"]

    # The provider now reports another email: the subject, not the email, is the match.
    await oidc_flow.set_claims("sub-grace", email="grace.h@example.com", email_verified=True)
    again = await oidc_flow.sign_in("sub-grace")
    assert again.status_code == 303
    assert (await oidc_flow.app.get("/api/v1/me")).json()["user_id"] == first
    async with database.transaction(readonly=True) as session:
        assert len((await session.scalars(select(User))).all()) == 1
        sessions = (await session.scalars(select(BrowserSession))).all()
    # Signing in again from the same browser ended the session it held.
    assert len(sessions) == 2
    assert [s.revoked_at is not None for s in sorted(sessions, key=lambda s: s.id)] == [
        True,
        False,
    ]
    oidc_flow.app.cookies.set("byteor_session", first_cookie)
    assert (await oidc_flow.app.get("/api/v1/me")).status_code == 401


async def test_a_tampered_state_is_refused(oidc_flow: OidcFlow, database: Database) -> None:
    await oidc_flow.set_claims("sub-mallory", email="mallory@example.com", email_verified=True)
    callback = await oidc_flow.authorize(await oidc_flow.start(), "sub-mallory")
    parts = urlsplit(callback)
    params = {key: values[0] for key, values in parse_qs(parts.query).items()}
    tampered = f"{UI_BASE}/auth/callback?{urlencode({**params, 'state': params['state'] + 'x'})}"
    response = await oidc_flow.app.get(tampered)
    assert response.status_code == 400
    assert "did not succeed" in response.text
    assert "byteor_session" not in oidc_flow.app.cookies
    # The flow was single use: the genuine callback afterwards is refused as well.
    assert (await oidc_flow.app.get(callback)).status_code == 400
    assert (await oidc_flow.app.get("/api/v1/me")).status_code == 401
    failures = await security_events(database, "auth.sign_in_failed")
    assert [e.details["reason"] for e in failures] == ["state_mismatch", "state_mismatch"]
    assert params["code"] not in str([e.details for e in failures])


async def test_a_replayed_code_is_refused(oidc_flow: OidcFlow, database: Database) -> None:
    await oidc_flow.set_claims("sub-eve", email="eve@example.com", email_verified=True)
    callback = await oidc_flow.authorize(await oidc_flow.start(), "sub-eve")
    assert (await oidc_flow.app.get(callback)).status_code == 303
    code = parse_qs(urlsplit(callback).query)["code"][0]

    # Replaying the whole callback: the flow cookie is gone.
    oidc_flow.app.cookies.clear()
    assert (await oidc_flow.app.get(callback)).status_code == 400
    # Replaying the code inside a fresh, genuine flow: the provider refuses it.
    fresh = await oidc_flow.authorize(await oidc_flow.start(), "sub-eve")
    state = parse_qs(urlsplit(fresh).query)["state"][0]
    replay = await oidc_flow.app.get(f"/auth/callback?{urlencode({'code': code, 'state': state})}")
    assert replay.status_code == 400
    assert "byteor_session" not in oidc_flow.app.cookies
    failures = await security_events(database, "auth.sign_in_failed")
    assert [e.details["reason"] for e in failures] == ["state_mismatch", "token_exchange_failed"]


async def test_a_verified_email_links_the_existing_user(
    oidc_flow: OidcFlow, oidc_provider: str, database: Database
) -> None:
    local = await make_person(database, "linus@example.com")
    await oidc_flow.set_claims("sub-linus", email="linus@example.com", email_verified=True)
    assert (await oidc_flow.sign_in("sub-linus")).status_code == 303
    assert (await oidc_flow.app.get("/api/v1/me")).json()["user_id"] == local.user_id
    assert await _identities(database) == [(oidc_provider, "sub-linus", "linus@example.com")]
    [event] = await security_events(database, "identity.sign_in")
    assert (event.details["linked"], event.details["created"]) == (True, False)


async def test_an_unverified_email_neither_links_nor_creates_a_user(
    oidc_flow: OidcFlow, database: Database
) -> None:
    local = await make_person(database, "victim@example.com")
    await oidc_flow.set_claims("sub-squatter", email="victim@example.com", email_verified=False)
    refused = await oidc_flow.sign_in("sub-squatter")
    assert refused.status_code == 403
    assert "has not confirmed your email address" in refused.text
    # The mock's default claims carry an email but no email_verified at all.
    fresh = await oidc_flow.sign_in("newcomer@example.com")
    assert fresh.status_code == 403
    assert "byteor_session" not in oidc_flow.app.cookies
    assert await _identities(database) == []
    async with database.transaction(readonly=True) as session:
        assert (await session.scalars(select(User.id))).all() == [local.user_id]
    failures = await security_events(database, "auth.sign_in_failed")
    assert [(e.details["reason"], e.details.get("user_id")) for e in failures] == [
        ("email_not_verified", local.user_id),
        ("email_not_verified", None),
    ]


async def test_the_sign_in_page_offers_the_identity_provider(
    oidc_client: httpx.AsyncClient,
) -> None:
    page = await oidc_client.get("/auth/login", params={"next": "/orgs"})
    assert "Sign in with your identity provider" in page.text
    assert 'href="/auth/oidc/start?next=%2Forgs"' in page.text
    assert 'name="password"' in page.text  # local accounts still sign in with a password
