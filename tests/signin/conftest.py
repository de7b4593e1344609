"""Sign-in fixtures: a person with a password, helpers that drive the sign-in forms, and a
real OIDC provider (PyPI's `oidc-provider-mock`) running as a process on loopback."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from byteor_cloud.api.app import create_app
from byteor_cloud.db.models.audit import SecurityEvent
from byteor_cloud.db.session import Database
from byteor_cloud.identity import service as identity
from byteor_cloud.identity.passwords import hash_password
from helpers.databases import TestDatabase
from helpers.processes import base_env, free_port

PASSWORD = "correct horse battery staple"
UI_BASE = "http://testserver"
OIDC_CLIENT_ID = "byteor-cloud-test"
OIDC_CLIENT_SECRET = "test-client-secret"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
PROVIDER_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str
    password: str


@functools.cache
def _password_hash(password: str) -> str:
    # argon2 is slow on purpose; hash each test password once per run, not once per test.
    return hash_password(password)


async def make_person(database: Database, email: str, password: str = PASSWORD) -> Person:
    """A user who can sign in with `password` (and has no other credential)."""
    async with database.transaction() as session:
        user, _ = await identity.ensure_user(session, email=email)
        user.password_hash = _password_hash(password)
    return Person(user.id, user.email, password)


@pytest.fixture
async def person(database: Database) -> Person:
    return await make_person(database, "ada@example.com")


def csrf_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF_FIELD.search(html)
    assert match is not None, "no csrf_token field on the page"
    return match.group(1)


async def login_form_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/auth/login")
    assert page.status_code == 200
    return csrf_in(page.text)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, *, next_path: str | None = None
) -> httpx.Response:
    """Open the sign-in page and submit its password form, as a browser would."""
    form = {"csrf_token": await login_form_token(client), "email": email, "password": password}
    if next_path is not None:
        form["next"] = next_path
    return await client.post("/auth/login", data=form)


async def page_csrf_token(client: httpx.AsyncClient) -> str:
    """The signed-in session's CSRF token, from the sign-out form in the page header."""
    page = await client.get("/")
    assert page.status_code == 200
    return csrf_in(page.text)


async def security_events(database: Database, kind: str) -> list[SecurityEvent]:
    async with database.transaction(readonly=True) as session:
        rows = await session.scalars(
            select(SecurityEvent).where(SecurityEvent.kind == kind).order_by(SecurityEvent.id)
        )
        return list(rows.all())


def session_cookie_header(response: httpx.Response) -> str:
    headers = [
        h for h in response.headers.get_list("set-cookie") if h.startswith("byteor_session=")
    ]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


# The OIDC provider ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The issuer URL of a real OIDC provider process (`python -m oidc_provider_mock`)."""
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("oidc-provider")) / "provider.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oidc_provider_mock",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=base_env({"NO_COLOR": "1"}),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PROVIDER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"OIDC provider exited:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"OIDC provider not ready:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield issuer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def oidc_app(test_db: TestDatabase, database: Database, oidc_provider: str) -> FastAPI:
    settings = test_db.settings(
        oidc_issuer=oidc_provider,
        oidc_client_id=OIDC_CLIENT_ID,
        oidc_client_secret=OIDC_CLIENT_SECRET,
        ui_public_base_url=UI_BASE,
    )
    return create_app(settings, database=database)


@pytest.fixture
async def oidc_client(oidc_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=oidc_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=UI_BASE) as client:
        yield client


@dataclass
class OidcFlow:
    """Drives the authorization-code flow by hand: our app ↔ browser ↔ the provider."""

    app: httpx.AsyncClient
    provider: str

    async def set_claims(self, subject: str, **claims: Any) -> None:
        """What the provider will say about `subject` (the mock's user API)."""
        async with httpx.AsyncClient() as client:
            response = await client.put(f"{self.provider}/users/{subject}", json=claims)
        assert response.status_code == 204, response.text

    async def start(self, next_path: str | None = None) -> str:
        """`GET /auth/oidc/start`; the provider's authorization URL it redirects to."""
        params = {"next": next_path} if next_path else {}
        response = await self.app.get("/auth/oidc/start", params=params)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith(f"{self.provider}/oauth2/authorize?")
        return location

    async def authorize(self, authorization_url: str, subject: str) -> str:
        """Submit the provider's authorize page as `subject`; the callback URL it returns."""
        async with httpx.AsyncClient() as client:
            page = await client.get(authorization_url)
            assert page.status_code == 200, page.text
            assert 'name="sub"' in page.text
            decision = await client.post(authorization_url, data={"sub": subject})
        assert decision.status_code == 302, decision.text
        callback: str = decision.headers["location"]
        assert callback.startswith(f"{UI_BASE}/auth/callback?")
        return callback

    async def sign_in(self, subject: str, next_path: str | None = None) -> httpx.Response:
        callback = await self.authorize(await self.start(next_path), subject)
        return await self.app.get(callback)


@pytest.fixture
def oidc_flow(oidc_client: httpx.AsyncClient, oidc_provider: str) -> OidcFlow:
    return OidcFlow(oidc_client, oidc_provider)
