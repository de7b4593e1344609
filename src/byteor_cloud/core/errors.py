"""Domain error types: raised by services, mapped to HTTP in exactly one table at the edge.

Every error carries a stable snake_case `code` (part of the API contract), a human
`message` and optional `details`. Messages and details must never contain secrets.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every expected failure; never a 500."""

    default_code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}


class InvalidInput(DomainError):
    """Input is well-formed but semantically invalid (422)."""

    default_code = "invalid_input"


class MalformedRequest(DomainError):
    """The request cannot be read at all: bad JSON, bad cursor, bad header (400)."""

    default_code = "malformed_request"


class Unauthenticated(DomainError):
    """Missing, invalid, expired or revoked credential (401)."""

    default_code = "unauthenticated"


class PermissionDenied(DomainError):
    """A member without the permission (403)."""

    default_code = "permission_denied"


class NotFound(DomainError):
    """Missing, or not visible to the caller: existence is never leaked (404)."""

    default_code = "not_found"


class Conflict(DomainError):
    """Duplicate, cap reached, idempotency-key reuse (409)."""

    default_code = "conflict"


class InvalidState(Conflict):
    """An illegal state transition (409)."""

    default_code = "invalid_state"


class PreconditionRequired(DomainError):
    """A PUT without If-Match (428)."""

    default_code = "precondition_required"


class PreconditionFailed(DomainError):
    """A stale If-Match (412)."""

    default_code = "precondition_failed"


class PayloadTooLarge(DomainError):
    """A body or upload over its cap (413)."""

    default_code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """A body in a media type the route does not take (415)."""

    default_code = "unsupported_media_type"


class RateLimited(DomainError):
    """Too many requests in the window (429)."""

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(DomainError):
    """The database, object store or another dependency is down (503)."""

    default_code = "dependency_unavailable"
