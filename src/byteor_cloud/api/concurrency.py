"""Optimistic concurrency at the edge: `revision` ↔ ETag, and If-Match required on PUT."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

from byteor_cloud.core.errors import PreconditionFailed, PreconditionRequired


def etag(revision: int) -> str:
    return f'"{revision}"'


def set_etag(response: Response, revision: int) -> None:
    response.headers["ETag"] = etag(revision)


def expected_revision(
    if_match: Annotated[
        str | None, Header(description='The ETag you read, e.g. "3" (required on PUT)')
    ] = None,
) -> int:
    """The revision a PUT was based on: 428 without If-Match, 412 when unusable."""
    if if_match is None:
        raise PreconditionRequired(
            "If-Match is required; send the ETag you read", code="if_match_required"
        )
    value = if_match.strip()
    value = value.removeprefix("W/")
    if len(value) < 3 or not (value.startswith('"') and value.endswith('"')):
        raise PreconditionFailed("If-Match must be an ETag we issued", code="stale_revision")
    digits = value[1:-1]
    if not digits.isdigit() or len(digits) > 12:
        raise PreconditionFailed("If-Match must be an ETag we issued", code="stale_revision")
    return int(digits)
