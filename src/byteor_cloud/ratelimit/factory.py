"""Build the configured rate-limit backend from the settings."""

from __future__ import annotations

from byteor_cloud.config import Settings
from byteor_cloud.ratelimit.base import RateLimiter
from byteor_cloud.ratelimit.memory import MemoryRateLimiter
from byteor_cloud.ratelimit.redis import RedisRateLimiter


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis (shared by all API processes) when `redis_url` is set, else in-process."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url)
    return MemoryRateLimiter()
