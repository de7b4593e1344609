"""The one table mapping domain errors to HTTP, and the error envelope every 4xx/5xx uses.

`{"error": {"code", "message", "details"}, "request_id"}` — no tracebacks, SQL or input
values (which may be secrets) ever appear in it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from byteor_cloud.core import errors
from byteor_cloud.logs import request_id_var

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.MalformedRequest, 400),
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.InvalidState, 409),
    (errors.Conflict, 409),
    (errors.PreconditionFailed, 412),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.InvalidInput, 422),
    (errors.PreconditionRequired, 428),
    (errors.RateLimited, 429),
    (errors.DependencyUnavailable, 503),
)

# Codes for errors Starlette/FastAPI raise themselves (routing, methods, limits).
CODE_BY_STATUS = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "dependency_unavailable",
}


def status_for(error: errors.DomainError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 400


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "request_id": request_id_var.get(),
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


async def _record_failure(request: Request, exc: errors.DomainError) -> None:
    """Write what an authentication or authorization failure leaves behind.

    The request's own transaction has rolled back, so this uses one of its own: a member's
    denial goes into the org's audit chain; a non-member's or an unauthenticated caller's
    failure into the instance security log. A failure to record is logged, never raised.
    """
    from byteor_cloud.audit import service as audit
    from byteor_cloud.tenancy.authz import Denied, NotVisible

    if not isinstance(exc, Denied | NotVisible | errors.Unauthenticated):
        return
    database = getattr(request.app.state, "database", None)
    if database is None:
        return
    principal = getattr(request.state, "principal", None)
    metrics = getattr(request.app.state, "auth_metrics", None)
    try:
        async with database.transaction() as session:
            if isinstance(exc, Denied):
                target = audit.AuditTarget(
                    exc.org_id,
                    "permission",
                    exc.permission.value,
                    project_id=exc.project_id,
                    environment_id=exc.environment_id,
                )
                await audit.record(
                    session,
                    exc.principal,
                    "authz.denied",
                    target,
                    outcome="denied",
                    details={"method": request.method, "path": request.url.path},
                )
            else:
                await audit.security_event(
                    session,
                    "authz.not_member" if isinstance(exc, NotVisible) else "auth.failed",
                    principal=principal,
                    client_address=request.client.host if request.client else None,
                    method=request.method,
                    path=request.url.path,
                    details={"code": exc.code},
                )
        if metrics is not None:
            outcome = (
                "denied"
                if isinstance(exc, Denied)
                else ("not_member" if isinstance(exc, NotVisible) else "failed")
            )
            metrics.labels(outcome).inc()
    except Exception:
        log.exception("could not record an auth failure")


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    await _record_failure(request, exc)
    headers = None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return error_response(status_for(exc), exc.code, exc.message, exc.details, headers)


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(item.get("type") == "json_invalid" for item in exc.errors()):
        # A body that is not JSON at all is malformed (400), not semantically invalid.
        return error_response(400, "malformed_request", "request body is not valid JSON")
    problems = []
    for item in exc.errors()[:50]:
        problem = {
            "field": _field_name(tuple(item.get("loc", ()))),
            "code": str(item.get("type", "invalid")),
            "message": str(item.get("msg", "invalid value")),
        }
        problems.append(problem)
    unknown = [p["field"] for p in problems if p["code"] == "extra_forbidden"]
    if unknown:
        message = "unknown field(s): " + ", ".join(unknown)
    elif problems:
        message = f"{problems[0]['field']}: {problems[0]['message']}"
    else:
        message = "the request is not valid"
    return error_response(422, "validation_failed", message, {"fields": problems})


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers=headers)


async def _unhandled_error(_request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log under the request id; the client gets the id only.
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error; quote the request id")


def install_error_handlers(app: FastAPI) -> None:
    """Register the envelope for every error the app can produce."""
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)
