"""Rate limiting at the edge: route dependencies call `enforce`, the edge adds the headers.

`install_rate_limiting(app, settings)` builds the limiter, the policies and the metrics once
per app. A route dependency calls `await enforce(request, RouteClass.x, subject)` before any
database work; a refusal raises `RateLimited` (429 + `Retry-After`), costs no database
work, and is counted in `byteor_rate_limited_requests_total{route_class}` (not audited).
The decision is kept on the request state, and `EdgeMiddleware` adds `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (whole seconds until a slot frees, rounded
up; equal to `Retry-After` on a 429) to whatever response the request ends with.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter

from byteor_cloud.config import Settings
from byteor_cloud.core.errors import RateLimited
from byteor_cloud.ratelimit import (
    RateDecision,
    RateLimiter,
    RateLimitPolicy,
    RouteClass,
    build_policies,
    build_rate_limiter,
)

# The key of the decision in the request state (`scope["state"]`), read by the edge.
DECISION_STATE_KEY = "rate_limit_decision"


@dataclass(frozen=True)
class RateLimitMetrics:
    rejected: Counter
    backend_failures: Counter


@dataclass(frozen=True)
class RateLimiting:
    """What `install_rate_limiting` puts on `app.state.rate_limiting`."""

    limiter: RateLimiter
    policies: Mapping[RouteClass, RateLimitPolicy]
    metrics: RateLimitMetrics


# Prometheus refuses a second collector of one name on a registry: one set per registry.
_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, RateLimitMetrics] = (
    weakref.WeakKeyDictionary()
)


def _metrics_for(registry: CollectorRegistry) -> RateLimitMetrics:
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = RateLimitMetrics(
            rejected=Counter(
                "byteor_rate_limited_requests",
                "Requests refused with 429 by a rate limit, by route class",
                ["route_class"],
                registry=registry,
            ),
            backend_failures=Counter(
                "byteor_rate_limit_backend_failures",
                "Requests let through uncounted because the rate-limit store was unreachable",
                ["route_class"],
                registry=registry,
            ),
        )
        _METRICS[registry] = metrics
    return metrics


def install_rate_limiting(app: FastAPI, settings: Settings) -> RateLimiting:
    """Build the limiter, policies and metrics onto `app.state` (once; later calls reuse)."""
    existing = getattr(app.state, "rate_limiting", None)
    if isinstance(existing, RateLimiting):
        return existing
    installed = RateLimiting(
        limiter=build_rate_limiter(settings),
        policies=build_policies(settings),
        metrics=_metrics_for(app.state.metrics_registry),
    )
    app.state.rate_limiting = installed
    app.state.rate_limiter = installed.limiter
    app.state.rate_limit_policies = installed.policies
    return installed


async def close_rate_limiting(app: FastAPI) -> None:
    """Close the app's limiter (its Redis connections); nothing to do if none was installed."""
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.aclose()


async def enforce(request: Request, route_class: RouteClass, subject: str) -> None:
    """Count this request against `route_class` for `subject`; raise `RateLimited` if over.

    `subject` is a stable, non-secret id (credential id, agent id, environment id, client
    address): it becomes part of a storage key.
    """
    state = request.app.state
    policy: RateLimitPolicy = state.rate_limit_policies[route_class]
    limiter: RateLimiter = state.rate_limiter
    decision = await limiter.hit(
        f"{route_class}:{subject}", limit=policy.limit, window_s=policy.window_s
    )
    _remember(request, decision)
    metrics: RateLimitMetrics = state.rate_limiting.metrics
    if decision.failed_open:
        metrics.backend_failures.labels(route_class.value).inc()
    if not decision.allowed:
        metrics.rejected.labels(route_class.value).inc()
        raise RateLimited(
            f"too many requests; retry in {decision.retry_after_s} s",
            retry_after_s=decision.retry_after_s,
            details={
                "route_class": route_class.value,
                "limit": policy.limit,
                "window_s": policy.window_s,
                "retry_after_s": decision.retry_after_s,
            },
        )


def _remember(request: Request, decision: RateDecision) -> None:
    # A request limited twice (say per person and per upload) reports the tighter limit:
    # a refusal first, then the fewest remaining.
    previous = getattr(request.state, DECISION_STATE_KEY, None)
    if not isinstance(previous, RateDecision) or (decision.allowed, decision.remaining) <= (
        previous.allowed,
        previous.remaining,
    ):
        setattr(request.state, DECISION_STATE_KEY, decision)


def rate_limit_headers(state: Mapping[str, Any] | None) -> list[tuple[bytes, bytes]]:
    """The `X-RateLimit-*` response headers for a request state (none if not limited)."""
    decision = (state or {}).get(DECISION_STATE_KEY)
    if not isinstance(decision, RateDecision):
        return []
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_header_s).encode()),
    ]
