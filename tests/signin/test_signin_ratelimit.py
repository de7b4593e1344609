"""Sign-in attempts are limited per client address (20 a minute by default), counting the
address behind trusted proxies only."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from byteor_cloud.api.app import create_app
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase

from .conftest import PASSWORD, Person, csrf_in

LIMIT = 20


@pytest.fixture
def proxied_app(test_db: TestDatabase, database: Database) -> FastAPI:
    # The test client connects from 127.0.0.1: make it a trusted proxy.
    return create_app(test_db.settings(trusted_proxies="127.0.0.1/32"), database=database)


async def test_the_21st_attempt_from_one_address_in_a_minute_gets_429(
    proxied_app: FastAPI, person: Person
) -> None:
    transport = httpx.ASGITransport(app=proxied_app)
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        token = csrf_in((await client.get("/auth/login")).text)
        form = {"email": person.email, "password": "guess", "csrf_token": token}
        # Attempts count before any other check, so even refused forms use up the quota.
        for attempt in range(LIMIT):
            body = form if attempt < 2 else {**form, "csrf_token": ""}
            response = await client.post("/auth/login", data=body, headers=attacker)
            assert response.status_code in (401, 403), response.text
        limited = await client.post(
            "/auth/login", data={**form, "password": PASSWORD}, headers=attacker
        )
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # The OIDC callback is a sign-in attempt too.
        callback = await client.get("/auth/callback?state=x&code=y", headers=attacker)
        assert callback.status_code == 429

        # Another address behind the same trusted proxy is unaffected.
        other = await client.post(
            "/auth/login",
            data={**form, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.20"},
        )
        assert other.status_code == 303
