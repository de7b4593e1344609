"""Rate limiting at the HTTP edge, on both databases and both backends: the headers on every
limited response, 429 + Retry-After in the envelope, the metric, and no database work for a
rejection."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy import event, text

from byteor_cloud.api.app import create_app
from byteor_cloud.api.client_address import client_address
from byteor_cloud.api.deps import ReadSession
from byteor_cloud.api.ratelimit import close_rate_limiting, enforce, install_rate_limiting
from byteor_cloud.config import Settings
from byteor_cloud.core.errors import NotFound
from byteor_cloud.db.session import Database
from byteor_cloud.ratelimit import RouteClass
from byteor_cloud.ratelimit.redis import DEFAULT_PREFIX
from helpers.databases import TEST_SECRET_KEY, TestDatabase

PEOPLE_LIMIT = 5
SIGN_IN_LIMIT = 3
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/x"
BASE = "/api/v1/_probe/ratelimit"  # extra routers mount under /api/v1

probe = APIRouter(prefix="/_probe/ratelimit")


async def per_caller(request: Request) -> None:
    await enforce(request, RouteClass.people, request.headers.get("x-caller", "nobody"))


async def per_address(request: Request) -> None:
    address = client_address(request, request.app.state.settings.trusted_proxies)
    await enforce(request, RouteClass.sign_in, address)


@probe.get("/ok", dependencies=[Depends(per_caller)])
async def ok() -> dict[str, bool]:
    return {"ok": True}


@probe.get("/missing", dependencies=[Depends(per_caller)])
async def missing() -> None:
    raise NotFound("no such thing")


@probe.get("/rows", dependencies=[Depends(per_caller)])
async def rows(session: ReadSession) -> dict[str, int]:
    return {"value": (await session.execute(text("SELECT 1"))).scalar_one()}


@probe.post("/sign-in", dependencies=[Depends(per_address)])
async def sign_in() -> dict[str, bool]:
    return {"signed_in": False}


@dataclass
class Probe:
    app: FastAPI
    client: httpx.AsyncClient
    # Unique to the test: callers and addresses derive from it, so tests sharing the Redis
    # test database never share a key.
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def caller(self, name: str) -> dict[str, str]:
        return {"x-caller": f"{self.token}-{name}"}

    def address(self, n: int) -> str:
        return str(ipaddress.ip_address(f"2001:db8::{self.token[:4]}:{self.token[4:8]}:{n}"))

    def metric(self, name: str, route_class: str = "people") -> float:
        value = self.app.state.metrics_registry.get_sample_value(name, {"route_class": route_class})
        return float(value or 0)

    async def delete_redis_keys(self, redis_url: str) -> None:
        client = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"*{self.token}*")]
            keys += [f"{DEFAULT_PREFIX}sign_in:{self.address(n)}" for n in (1, 2)]
            await client.delete(*keys)
        finally:
            await client.aclose()


@asynccontextmanager
async def open_probe(
    settings: Settings, database: Database, *, redis_up: bool = True
) -> AsyncIterator[Probe]:
    app = create_app(settings, database=database, extra_routers=[probe])
    install_rate_limiting(app, settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    opened = Probe(app, httpx.AsyncClient(transport=transport, base_url="http://testserver"))
    try:
        async with opened.client:
            yield opened
    finally:
        await close_rate_limiting(app)
        if settings.redis_url and redis_up:
            await opened.delete_redis_keys(settings.redis_url)


@pytest.fixture(params=["memory", "redis"])
def limiter_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rate_limit_people_per_min": PEOPLE_LIMIT,
        "rate_limit_sign_in_per_min": SIGN_IN_LIMIT,
        "trusted_proxies": "127.0.0.0/8",  # the test client's address
    }
    if request.param == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    return values


@pytest.fixture
async def limited(
    test_db: TestDatabase, database: Database, limiter_settings: dict[str, Any]
) -> AsyncIterator[Probe]:
    async with open_probe(test_db.settings(**limiter_settings), database) as opened:
        yield opened


def assert_rate_limit_headers(response: httpx.Response, remaining: int) -> None:
    assert response.headers["x-ratelimit-limit"] == str(PEOPLE_LIMIT)
    assert response.headers["x-ratelimit-remaining"] == str(remaining)
    assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 60


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["request_id"] == response.headers["x-request-id"]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-reset"] == response.headers["retry-after"]


async def test_a_burst_of_twice_the_quota_gets_the_quota_and_429s(limited: Probe) -> None:
    alice = limited.caller("alice")

    responses = await asyncio.gather(
        *(limited.client.get(f"{BASE}/ok", headers=alice) for _ in range(2 * PEOPLE_LIMIT))
    )
    other = await limited.client.get(f"{BASE}/ok", headers=limited.caller("bob"))

    succeeded = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(succeeded) == PEOPLE_LIMIT
    assert len(refused) == PEOPLE_LIMIT
    for response in refused:
        assert_rate_limited(response)
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in succeeded) == list(
        range(PEOPLE_LIMIT)
    )
    assert other.status_code == 200
    assert_rate_limit_headers(other, remaining=PEOPLE_LIMIT - 1)


async def test_limited_responses_carry_the_headers_on_success_and_on_error(
    limited: Probe,
) -> None:
    alice = limited.caller("alice")

    first = await limited.client.get(f"{BASE}/ok", headers=alice)
    failed = await limited.client.get(f"{BASE}/missing", headers=alice)
    unlimited = await limited.client.get("/healthz")

    assert first.status_code == 200
    assert_rate_limit_headers(first, remaining=PEOPLE_LIMIT - 1)
    assert first.headers["x-ratelimit-reset"] == "60"  # the window of the hit just made
    assert failed.status_code == 404
    assert failed.json()["error"]["code"] == "not_found"
    assert_rate_limit_headers(failed, remaining=PEOPLE_LIMIT - 2)
    assert not any(name.startswith("x-ratelimit") for name in unlimited.headers)


async def test_rejections_are_counted_in_metrics(limited: Probe) -> None:
    alice = limited.caller("alice")
    for _ in range(PEOPLE_LIMIT + 2):
        await limited.client.get(f"{BASE}/ok", headers=alice)

    exposition = (await limited.client.get("/metrics")).text

    assert limited.metric("byteor_rate_limited_requests_total") == 2
    assert 'byteor_rate_limited_requests_total{route_class="people"} 2.0' in exposition
    assert limited.metric("byteor_rate_limit_backend_failures_total") == 0


async def test_a_rejection_runs_no_sql(limited: Probe, database: Database) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        alice = limited.caller("alice")
        for _ in range(PEOPLE_LIMIT):
            allowed = await limited.client.get(f"{BASE}/rows", headers=alice)
            assert allowed.json() == {"value": 1}
        before = len(statements)

        refused = await limited.client.get(f"{BASE}/rows", headers=alice)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)

    assert before >= PEOPLE_LIMIT  # the allowed requests did query
    assert_rate_limited(refused)
    assert len(statements) == before


async def test_sign_in_is_limited_per_client_address_behind_a_trusted_proxy(
    limited: Probe,
) -> None:
    first, second = limited.address(1), limited.address(2)

    async def sign_in(forwarded_for: str) -> httpx.Response:
        headers = {"x-forwarded-for": forwarded_for}
        return await limited.client.post(f"{BASE}/sign-in", headers=headers)

    allowed = [await sign_in(first) for _ in range(SIGN_IN_LIMIT)]
    refused = await sign_in(first)
    spoofed = await sign_in(f"{second}, {first}")  # a client-written hop is not believed
    other = await sign_in(second)

    assert [r.status_code for r in allowed] == [200] * SIGN_IN_LIMIT
    assert refused.status_code == 429
    assert spoofed.status_code == 429
    assert other.status_code == 200
    assert other.headers["x-ratelimit-limit"] == str(SIGN_IN_LIMIT)
    assert limited.metric("byteor_rate_limited_requests_total", "sign_in") == 2


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_rejection_needs_no_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    values: dict[str, Any] = {"rate_limit_people_per_min": 2}
    if backend == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=UNREACHABLE_DATABASE,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
        **values,
    )
    database = Database(UNREACHABLE_DATABASE)
    try:
        async with open_probe(settings, database) as opened:
            caller = opened.caller("alice")
            allowed = [await opened.client.get(f"{BASE}/rows", headers=caller) for _ in range(2)]
            refused = await opened.client.get(f"{BASE}/rows", headers=caller)
    finally:
        await database.dispose()

    assert all(response.status_code >= 500 for response in allowed)  # they needed the database
    assert_rate_limited(refused)


async def test_an_unreachable_redis_lets_requests_through_and_counts_them(
    test_db: TestDatabase, database: Database, closed_redis_url: str
) -> None:
    settings = test_db.settings(rate_limit_people_per_min=2, redis_url=closed_redis_url)
    async with open_probe(settings, database, redis_up=False) as opened:
        caller = opened.caller("alice")
        responses = [await opened.client.get(f"{BASE}/ok", headers=caller) for _ in range(4)]
        failures = opened.metric("byteor_rate_limit_backend_failures_total")

    assert [r.status_code for r in responses] == [200] * 4
    assert all(r.headers["x-ratelimit-remaining"] == "2" for r in responses)
    assert failures == 4
