"""Keyset pagination over any scope-filtered SELECT.

The next page starts strictly after the sort key of the previous page's last row, using
a row-value comparison that both databases serve from an index on the sort columns; cost
is flat however large the table grows (no OFFSET), and rows inserted meanwhile are never
returned twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from byteor_cloud.core.errors import MalformedRequest
from byteor_cloud.core.pagination import (
    CursorValue,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
)


def _to_cursor_value(value: Any) -> CursorValue:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise TypeError(f"unsupported sort key type {type(value).__name__}")


def _from_cursor_value(value: CursorValue, column: InstrumentedAttribute[Any]) -> Any:
    python_type = column.type.python_type
    try:
        if python_type is datetime and isinstance(value, str):
            return datetime.fromisoformat(value)
        if isinstance(value, python_type):
            return value
    except ValueError:
        pass
    raise MalformedRequest(
        "cursor is not valid for this list", code="invalid_cursor", details={"field": "cursor"}
    )


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    sort_key: Sequence[InstrumentedAttribute[Any]],
    page: PageRequest,
    descending: bool = False,
) -> Page[Any]:
    """One page of `statement` ordered by `sort_key`, whose last column must be unique."""
    key = tuple_(*sort_key)
    if page.cursor is not None:
        raw = decode_cursor(page.cursor, arity=len(sort_key))
        after = tuple_(*(_from_cursor_value(v, c) for v, c in zip(raw, sort_key, strict=True)))
        statement = statement.where(key < after if descending else key > after)
    order = [c.desc() if descending else c.asc() for c in sort_key]
    result = await session.scalars(statement.order_by(*order).limit(page.limit + 1))
    rows = list(result.all())
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        last = rows[-1]
        next_cursor = encode_cursor([_to_cursor_value(getattr(last, c.key)) for c in sort_key])
    return Page(items=rows, next_cursor=next_cursor)
