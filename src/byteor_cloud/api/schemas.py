"""Shared API models: strict request bodies, list envelopes, the documented error shape."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class StrictModel(BaseModel):
    """Base of every request body: unknown fields are a 422 naming them, so no client can
    set `org_id`, `status`, `created_by` and the like."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ResponseModel(BaseModel):
    """Base of response bodies (built from domain objects by attribute)."""

    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    """A cursor-paginated list."""

    items: list[T]
    next_cursor: str | None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorEnvelope(BaseModel):
    """The one shape of every 4xx/5xx response."""

    error: ErrorBody
    request_id: str | None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "Malformed request"),
        (401, "Missing or invalid credential"),
        (403, "Permission denied"),
        (404, "Not found or not visible"),
        (409, "Conflict"),
        (413, "Request body too large"),
        (415, "Unsupported media type"),
        (422, "Validation failed"),
        (429, "Rate limited"),
        (503, "Dependency unavailable"),
    )
}
