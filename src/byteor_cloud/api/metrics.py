"""Prometheus metrics of the HTTP edge, on a registry owned by one app instance."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

_MAX_CACHED_CHILDREN = 4096
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Requests by route template and status, and request latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "byteor_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "byteor_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        self.auth_outcomes = Counter(
            "byteor_auth_outcomes",
            "Authentication and authorization outcomes (authenticated, failed, not_member, denied)",
            ["outcome"],
            registry=registry,
        )

        # Labelled children by label values. Routes are templates and statuses few, so
        # this stays small; it saves the registry's locked lookup on every request.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            if len(self._children) < _MAX_CACHED_CHILDREN:  # odd methods could grow it
                self._children[method, route, status] = children
        children[0].inc()
        children[1].observe(seconds)
