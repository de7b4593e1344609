"""Fixtures for the rate-limit tests: both backends behind one harness, and the real Redis
(database 15, a random key prefix per test, its keys deleted afterwards).

With CI=true a missing Redis fails the run; elsewhere its tests are skipped.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from redis.asyncio import Redis

from byteor_cloud.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from helpers.databases import in_ci

REDIS_SERVER_URL = os.environ.get("BYTEOR_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_TEST_DB = 15
BACKENDS = ("memory", "redis")


def redis_available(url: str) -> str | None:
    """None when Redis answers a PING, else the reason it does not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test database of the real Redis, or a skip (a failure with CI=true)."""
    url = f"{REDIS_SERVER_URL.rstrip('/')}/{REDIS_TEST_DB}"
    reason = redis_available(url)
    if reason is not None:
        if in_ci():
            pytest.fail(f"Redis unavailable in CI: {reason}")
        pytest.skip(f"Redis unavailable: {reason}")
    return url


async def delete_keys(url: str, pattern: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=pattern, count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"byteor-test:{uuid.uuid4().hex}:"
    yield prefix
    await delete_keys(redis_url, prefix + "*")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_target(backend: str, request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """(url, key prefix) of the Redis backend; None for the memory backend."""
    if backend != "redis":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def make_limiter(
    redis_target: tuple[str, str] | None,
) -> AsyncIterator[Callable[..., RateLimiter]]:
    """Build limiters of this test's backend (`clock=None` for the real clock), closed
    afterwards. Redis limiters of one test share one key prefix, so one window per key, as
    separate processes would; memory limiters each keep their own."""
    created: list[RateLimiter] = []

    def make(clock: Callable[[], float] | None = None) -> RateLimiter:
        limiter: RateLimiter
        if redis_target is None:
            limiter = MemoryRateLimiter(clock=clock or time.monotonic)
        else:
            url, prefix = redis_target
            limiter = RedisRateLimiter(url, prefix=prefix, clock=clock)
        created.append(limiter)
        return limiter

    yield make
    for limiter in created:
        await limiter.aclose()


@pytest.fixture
def closed_redis_url() -> str:
    """A Redis URL on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
