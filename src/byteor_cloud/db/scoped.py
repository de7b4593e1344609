"""Scope-filtered reads of environment-owned rows: every lookup by id is also filtered by
the caller's org and environment, so an id from another tenant is simply not found."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.errors import NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.scope import Scope

Row = TypeVar("Row")


def in_environment(model: type[Row], scope: Scope) -> Select[Row]:
    """`SELECT model` restricted to the scope's org and environment."""
    table: Any = model
    return select(model).where(
        table.org_id == scope.org_id, table.environment_id == scope.environment_id
    )


async def get_in_environment(
    session: AsyncSession,
    model: type[Row],
    scope: Scope,
    row_id: str,
    *,
    what: str,
    lock: bool = False,
) -> Row:
    """The row with `row_id` in the scope's environment (optionally FOR UPDATE), or
    NotFound naming `what`."""
    if not is_id(row_id):
        raise NotFound(f"{what} not found")
    table: Any = model
    statement = in_environment(model, scope).where(table.id == row_id)
    if lock:
        statement = statement.with_for_update()
    row = await session.scalar(statement)
    if row is None:
        raise NotFound(f"{what} not found")
    return row
