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
from starlette.datastructures import State

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
# The key under which a layer that counted a request before its route (the agent gateway)
# leaves that decision, so that the route's own limit applies it instead of counting again.
COUNTED_STATE_KEY = "rate_limit_counted"


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
    judge(request, route_class, await count(request, route_class, subject))


async def count(request: Request, route_class: RouteClass, subject: str) -> RateDecision:
    """`enforce`'s first half: count the hit and remember the decision for the headers."""
    return await count_in(
        request.app.state, request.scope.setdefault("state", {}), route_class, subject
    )


async def count_in(
    app_state: State, request_state: dict[str, Any], route_class: RouteClass, subject: str
) -> RateDecision:
    """`count` for ASGI code that has no `Request`: the app's state, the request's
    `scope["state"]`."""
    policy: RateLimitPolicy = app_state.rate_limit_policies[route_class]
    limiter: RateLimiter = app_state.rate_limiter
    decision = await limiter.hit(
        f"{route_class}:{subject}", limit=policy.limit, window_s=policy.window_s
    )
    _remember(request_state, decision)
    if decision.failed_open:
        metrics: RateLimitMetrics = app_state.rate_limiting.metrics
        metrics.backend_failures.labels(route_class.value).inc()
    return decision


def counted_before(request: Request) -> RateDecision | None:
    """The decision an outer layer already counted for this request (see COUNTED_STATE_KEY)."""
    decision = request.scope.get("state", {}).get(COUNTED_STATE_KEY)
    return decision if isinstance(decision, RateDecision) else None


def judge(request: Request, route_class: RouteClass, decision: RateDecision) -> None:
    """`enforce`'s second half: raise `RateLimited` (and count the refusal) if refused."""
    if decision.allowed:
        return
    state = request.app.state
    policy: RateLimitPolicy = state.rate_limit_policies[route_class]
    metrics: RateLimitMetrics = state.rate_limiting.metrics
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


def _remember(request_state: dict[str, Any], decision: RateDecision) -> None:
    # A request limited twice (say per person and per upload) reports the tighter limit:
    # a refusal first, then the fewest remaining.
    previous = request_state.get(DECISION_STATE_KEY)
    if not isinstance(previous, RateDecision) or (decision.allowed, decision.remaining) <= (
        previous.allowed,
        previous.remaining,
    ):
        request_state[DECISION_STATE_KEY] = decision


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
