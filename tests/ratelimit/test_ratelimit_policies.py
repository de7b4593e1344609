"""Route classes and their limits come from the settings; the backend from `redis_url`."""

from __future__ import annotations

from typing import Any

import pytest

from byteor_cloud.config import Settings, SettingsError, load_settings
from byteor_cloud.ratelimit import (
    MemoryRateLimiter,
    RateLimitPolicy,
    RedisRateLimiter,
    RouteClass,
    build_policies,
    build_rate_limiter,
)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_default_policies_are_the_product_defaults() -> None:
    policies = build_policies(settings())

    assert dict(policies) == {
        RouteClass.people: RateLimitPolicy(600, 60.0),
        RouteClass.agents: RateLimitPolicy(240, 60.0),
        RouteClass.artifact_uploads: RateLimitPolicy(30, 60.0),
        RouteClass.enrollment: RateLimitPolicy(10, 60.0),
        RouteClass.sign_in: RateLimitPolicy(20, 60.0),
    }


def test_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEOR_CLOUD_RATE_LIMIT_AGENTS_PER_MIN", "7")
    monkeypatch.setenv("BYTEOR_CLOUD_RATE_LIMIT_SIGN_IN_PER_MIN", "3")

    policies = build_policies(load_settings(_env_file=None))

    assert policies[RouteClass.agents].limit == 7
    assert policies[RouteClass.sign_in].limit == 3
    assert policies[RouteClass.people].limit == 600


def test_a_limit_below_one_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="BYTEOR_CLOUD_RATE_LIMIT_ENROLLMENT_PER_MIN"):
        load_settings(_env_file=None, rate_limit_enrollment_per_min=0)


def test_route_class_names_make_the_key_prefix() -> None:
    assert f"{RouteClass.artifact_uploads}:agent-1" == "artifact_uploads:agent-1"


async def test_the_backend_is_redis_only_when_configured() -> None:
    memory = build_rate_limiter(settings())
    redis = build_rate_limiter(settings(redis_url="redis://127.0.0.1:6379/15"))
    try:
        assert isinstance(memory, MemoryRateLimiter)
        assert isinstance(redis, RedisRateLimiter)
    finally:
        await memory.aclose()
        await redis.aclose()
