"""Cursor pagination values: page requests, opaque cursors and pages (no SQL here).

A cursor is the sort key of the last row of a page, base64url-encoded JSON. It is opaque
to clients and tied to one list: a cursor that does not decode, or has the wrong shape
for the list it is sent to, is a 400 `invalid_cursor`, never a 500 or a silent restart.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from byteor_cloud.core.errors import MalformedRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_CHARS = 1024

T = TypeVar("T")

CursorValue = str | int | float | bool | None


@dataclass(frozen=True)
class PageRequest:
    """What a list call asks for: at most `limit` rows after `cursor`."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise MalformedRequest(
                f"limit must be between 1 and {MAX_LIMIT}",
                code="invalid_limit",
                details={"field": "limit"},
            )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next page (None on the last one)."""

    items: list[T]
    next_cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(values: Sequence[CursorValue]) -> str:
    """Encode a sort key as an opaque cursor."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, arity: int) -> list[CursorValue]:
    """Decode a cursor made by `encode_cursor` for a sort key of `arity` columns."""
    invalid = MalformedRequest(
        "cursor is not valid for this list", code="invalid_cursor", details={"field": "cursor"}
    )
    if len(cursor) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(values, list) or len(values) != arity:
        raise invalid
    if not all(isinstance(v, str | int | float | bool) or v is None for v in values):
        raise invalid
    return values
