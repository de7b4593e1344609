"""The Redis backend against the real Redis: one window shared by processes, keys that
expire, and failing open (with a warning, once) when Redis cannot be reached."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from byteor_cloud.ratelimit import RedisRateLimiter

LOGGER = "byteor_cloud.ratelimit.redis"


@pytest.fixture
async def two_processes(redis_url: str, redis_prefix: str) -> AsyncIterator[list[RedisRateLimiter]]:
    """Two limiters with their own connections, as two API processes would have."""
    limiters = [RedisRateLimiter(redis_url, prefix=redis_prefix) for _ in range(2)]
    yield limiters
    for limiter in limiters:
        await limiter.aclose()


async def test_two_processes_share_one_window(two_processes: list[RedisRateLimiter]) -> None:
    first, second = two_processes

    sequential = [
        await limiter.hit("alternating", limit=10, window_s=60)
        for _ in range(8)
        for limiter in (first, second)
    ]
    concurrent = await asyncio.gather(
        *(
            limiter.hit("burst", limit=15, window_s=60)
            for limiter in two_processes
            for _ in range(20)
        )
    )

    assert [d.allowed for d in sequential] == [True] * 10 + [False] * 6
    assert sequential[9].remaining == 0
    assert sum(d.allowed for d in concurrent) == 15


async def test_keys_expire_one_window_after_the_newest_hit(
    redis_url: str, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=redis_prefix)
    client = Redis.from_url(redis_url)
    try:
        await limiter.hit("k", limit=5, window_s=60)

        ttl_ms = await client.pttl(redis_prefix + "k")
        assert 0 < ttl_ms <= 60_001
        assert await client.zcard(redis_prefix + "k") == 1
    finally:
        await client.aclose()
        await limiter.aclose()


async def test_an_unreachable_redis_fails_open_with_one_warning(
    closed_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisRateLimiter(closed_redis_url)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    try:
        decisions = [await limiter.hit("k", limit=1, window_s=60) for _ in range(5)]
    finally:
        await limiter.aclose()

    assert all(d.allowed and d.failed_open for d in decisions)
    assert all(d.remaining == 1 and d.retry_after_s == 0 for d in decisions)
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()


async def test_counting_resumes_when_redis_comes_back(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    relay = TcpRelay(target_port=_port_of(redis_url))
    await relay.start()
    db = redis_url.rsplit("/", 1)[1]
    limiter = RedisRateLimiter(
        f"redis://127.0.0.1:{relay.port}/{db}", prefix=redis_prefix, down_retry_s=0
    )
    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        before = await limiter.hit("k", limit=5, window_s=60)
        await relay.cut()
        during = await limiter.hit("k", limit=5, window_s=60)
        await relay.start()
        after = await limiter.hit("k", limit=5, window_s=60)
    finally:
        await limiter.aclose()
        await relay.cut()

    assert (before.remaining, before.failed_open) == (4, False)
    assert (during.allowed, during.failed_open) == (True, True)
    assert (after.remaining, after.failed_open) == (3, False)  # the window survived the outage
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("unreachable" in m for m in messages)
    assert any("reachable again" in m for m in messages)


async def test_a_flushed_script_cache_is_reloaded(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=redis_prefix)
    client = Redis.from_url(redis_url)
    try:
        await limiter.hit("k", limit=5, window_s=60)
        await client.script_flush()  # what a Redis restart does to cached scripts

        decision = await limiter.hit("k", limit=5, window_s=60)
    finally:
        await client.aclose()
        await limiter.aclose()

    assert (decision.remaining, decision.failed_open) == (3, False)


# -- a relay that can be cut, to stage an outage of the real Redis ----------------------


def _port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


class TcpRelay:
    """Forwards a loopback port to Redis; `cut()` drops it and every open connection."""

    def __init__(self, *, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        for end in (writer, upstream_writer):
            end.transport.abort()
            self._writers.discard(end)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.transport.abort()
