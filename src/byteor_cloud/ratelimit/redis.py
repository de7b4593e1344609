"""The Redis backend: one sliding log per key in a sorted set, shared by every API process.

Each hit is one Lua script, so it is atomic across processes: drop the hits that left the
window, count the rest, add this one if below the limit, and report the oldest. Time is
the Redis server's clock (`TIME`), never the caller's, so processes on hosts with skewed
clocks still share one window (the script reads `TIME` before writing, which needs Redis
5 or later). Keys expire one window after their newest hit.

When Redis cannot be reached (or answers with an error) the limiter fails open: the hit is
allowed, marked `failed_open` (the edge counts it in /metrics), and a warning is logged
once per outage. For `DOWN_RETRY_S` after a failure hits skip Redis altogether, so an
unreachable server costs no connect timeout per request.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from byteor_cloud.ratelimit.base import RateDecision, check_arguments

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "byteor:rl:"
DEFAULT_TIMEOUT_S = 0.5
DOWN_RETRY_S = 2.0

# KEYS[1] the log; ARGV: limit, window (µs), a unique member, and "now" in µs or "" to use
# the server clock. Returns {allowed (0/1), hits held, µs until the oldest leaves}.
_HIT_SCRIPT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local held = redis.call('ZCARD', key)
local allowed = 0
if held < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1)
  held = held + 1
  allowed = 1
end
local reset = 0
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
end
return {allowed, held, reset}
"""


class RedisRateLimiter:
    """See module docstring. `clock` (seconds) replaces the server clock in tests only."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        down_retry_s: float = DOWN_RETRY_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.prefix = prefix
        self._down_retry_s = down_retry_s
        self._clock = clock
        # One quick retry covers a pooled connection that died with a Redis restart; the
        # client's default (ten, with backoff) would stall every request during an outage.
        self._client = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self._client.register_script(_HIT_SCRIPT)
        self._down_until: float | None = None
        self._closed = False

    async def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        check_arguments(limit, window_s)
        if self._down_until is not None and time.monotonic() < self._down_until:
            return RateDecision.unmetered(limit)
        now = "" if self._clock is None else str(round(self._clock() * 1_000_000))
        try:
            allowed, held, reset_us = await self._script(
                keys=[self.prefix + key],
                args=[limit, round(window_s * 1_000_000), secrets.token_hex(8), now],
            )
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return RateDecision.unmetered(limit)
        if self._down_until is not None:
            self._down_until = None
            log.info("rate-limit store reachable again; counting resumed")
        return RateDecision(
            allowed=bool(allowed),
            limit=limit,
            remaining=max(0, limit - int(held)),
            reset_after_s=int(reset_us) / 1_000_000,
        )

    def _mark_down(self, exc: BaseException) -> None:
        if self._down_until is None:
            log.warning(
                "rate-limit store unreachable; letting requests through uncounted",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
        self._down_until = time.monotonic() + self._down_retry_s

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()
