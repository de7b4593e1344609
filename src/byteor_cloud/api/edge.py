"""The outermost ASGI layer: request ids, body-size caps, metrics, access log, last-resort 500.

It wraps the whole FastAPI app so that every response — including ones Starlette makes
itself and crashes that escape every handler — carries a request id, is counted by route
template, and uses the error envelope.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from byteor_cloud.api.errors import envelope
from byteor_cloud.api.metrics import HttpMetrics
from byteor_cloud.api.ratelimit import rate_limit_headers
from byteor_cloud.logs import request_id_var

log = logging.getLogger("byteor_cloud.access")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
UNMATCHED_ROUTE = "<unmatched>"


@dataclass(frozen=True)
class BodyLimit:
    """A body cap for paths matching `pattern` (the first match wins)."""

    pattern: re.Pattern[str]
    max_bytes: int


class _BodyTooLarge(Exception):
    pass


# Our request ids: 32 hex characters, a random per-process prefix and a counter. Unique
# across processes and restarts (64 random bits), and a fraction of uuid4's cost; they
# are labels, not secrets, so they need not be unpredictable.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker must not repeat ids


def _next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            # Accept a caller's id (so a proxy's id follows the request) only if it is
            # safe to echo into logs and headers.
            if _SAFE_REQUEST_ID.match(candidate):
                return str(candidate)
    return _next_request_id()


def route_template(scope: Scope, original: Scope, routes: Sequence[BaseRoute]) -> str:
    """The matched route's path template: bounded label values for metrics and logs."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    # FastAPI records only its own API routes in the scope; plain Starlette routes
    # (OpenAPI document, docs page, static mount) are matched here instead.
    for candidate in routes:
        match, _ = candidate.matches(original)
        if match is Match.FULL:
            candidate_path = str(getattr(candidate, "path", UNMATCHED_ROUTE))
            return candidate_path + "/{path}" if isinstance(candidate, Mount) else candidate_path
    return UNMATCHED_ROUTE


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class EdgeMiddleware:
    """See module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        default_max_body: int,
        body_limits: Sequence[BodyLimit] = (),
        routes: Callable[[], Sequence[BaseRoute]] = tuple,
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        self.default_max_body = default_max_body
        self.body_limits = tuple(body_limits)

    def _limit_for(self, path: str) -> int:
        for limit in self.body_limits:
            if limit.pattern.match(path):
                return limit.max_bytes
        return self.default_max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        max_body = self._limit_for(scope["path"])
        # Routing rewrites path and root_path as it descends into mounts; keep the original
        # to find the template of routes that do not record themselves in the scope.
        original_scope = dict(scope)
        received = 0
        overflowed = False
        response_started = False
        status = 500

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    overflowed = True
                    raise _BodyTooLarge
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal response_started, status
            if overflowed and not response_started:
                # The app reacted to the aborted read (often as a 400 or 500); the
                # client must see the real reason instead, whatever the app sent.
                return
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                # X-RateLimit-* of a rate-limited request (api/ratelimit.py `enforce` keeps
                # its decision in the request state): added here so they ride on every
                # response, errors and the 429 included, not only on a route's success.
                headers.extend(rate_limit_headers(scope.get("state")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            declared = _declared_length(scope)
            if declared is not None and declared > max_body:
                status = await self._too_large(send, request_id, max_body)
                return
            try:
                await self.app(scope, limited_receive, tagged_send)
            except _BodyTooLarge:
                pass
            except Exception:
                if not response_started:
                    log.exception("unhandled error escaped the app")
                    status = await self._send_error(
                        send,
                        request_id,
                        500,
                        "internal_error",
                        "internal error; quote the request id",
                    )
                # Otherwise the error handler already answered and logged it.
            if overflowed and not response_started:
                status = await self._too_large(send, request_id, max_body)
        finally:
            template = (
                route_template(scope, original_scope, self.routes())
                if status != 404
                else UNMATCHED_ROUTE
            )
            elapsed = time.perf_counter() - started_at
            self.metrics.observe(scope["method"], template, status, elapsed)
            if log.isEnabledFor(logging.INFO):  # skip building the record when off
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)

    async def _too_large(self, send: Send, request_id: str, max_body: int) -> int:
        return await self._send_error(
            send,
            request_id,
            413,
            "payload_too_large",
            f"request body exceeds {max_body} bytes",
            {"max_bytes": max_body},
        )

    async def _send_error(
        self,
        send: Send,
        request_id: str,
        status: int,
        code: str,
        message: str,
        details: dict[str, object] | None = None,
    ) -> int:
        body = json.dumps(envelope(code, message, details)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return status
