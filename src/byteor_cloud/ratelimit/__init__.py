"""Sliding-window rate limits per credential and route class (PRODUCT.md §5).

Algorithm: a true sliding log. Each key keeps the times of the hits it was allowed in the
last `window_s` seconds; a hit is allowed while fewer than `limit` are held, and a refused
hit is not recorded (a client that keeps knocking while refused is let in again as soon as
its oldest hit leaves the window). It is exact — no interval of `window_s` seconds ever
admits more than `limit` hits — and so is the time until a slot frees. It costs one entry
per allowed hit, bounded by the limit (at most 600 with the default policies).

`RateDecision.reset_after_s` is the time until the oldest counted hit leaves the window,
i.e. until `remaining` grows by one. The edge sends it as `X-RateLimit-Reset` in whole
seconds (rounded up, delta seconds rather than an epoch, like `Retry-After`); on a 429 it
equals `Retry-After`.

Backends: `MemoryRateLimiter` (one process; every API process keeps its own window) and
`RedisRateLimiter` (`BYTEOR_CLOUD_REDIS_URL`; all processes share one window, one atomic
Lua script per hit, timed by the Redis server's clock). When Redis cannot be reached the
Redis backend fails open: the request is let through uncounted, a warning is logged once
per outage and the edge counts it in `byteor_rate_limit_backend_failures_total` — a
rate-limit store outage must not become an outage of the whole API.
"""

from byteor_cloud.ratelimit.base import RateDecision, RateLimiter
from byteor_cloud.ratelimit.factory import build_rate_limiter
from byteor_cloud.ratelimit.memory import MemoryRateLimiter
from byteor_cloud.ratelimit.policies import RateLimitPolicy, RouteClass, build_policies
from byteor_cloud.ratelimit.redis import RedisRateLimiter

__all__ = [
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimitPolicy",
    "RateLimiter",
    "RedisRateLimiter",
    "RouteClass",
    "build_policies",
    "build_rate_limiter",
]
