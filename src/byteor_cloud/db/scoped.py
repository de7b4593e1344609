"""Scope-filtered reads of project- and environment-owned rows: every lookup by id is also
filtered by the caller's org and project or environment, so an id from another tenant is
simply not found."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.errors import NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.pagination import paginate

Row = TypeVar("Row")


def in_environment(model: type[Row], scope: Scope) -> Select[Row]:
    """`SELECT model` restricted to the scope's org and environment."""
    table: Any = model
    return select(model).where(
        table.org_id == scope.org_id, table.environment_id == scope.environment_id
    )


def in_project(model: type[Row], scope: Scope) -> Select[Row]:
    """`SELECT model` restricted to the scope's org and project."""
    table: Any = model
    return select(model).where(table.org_id == scope.org_id, table.project_id == scope.project_id)


async def find(session: AsyncSession, statement: Select[Row], row_id: str) -> Row | None:
    """The row of a scoped `statement` with `row_id`, or None (also for a malformed id)."""
    if not is_id(row_id):
        return None
    table: Any = statement.column_descriptions[0]["entity"]
    return await session.scalar(statement.where(table.id == row_id))


async def page_in_environment(
    session: AsyncSession,
    model: type[Row],
    scope: Scope,
    *,
    page: PageRequest,
    status: StrEnum | None = None,
) -> Page[Row]:
    """A page of the scope's rows of `model`, newest first, optionally of one status."""
    table: Any = model
    statement = in_environment(model, scope)
    if status is not None:
        statement = statement.where(table.status == status.value)
    return await paginate(session, statement, sort_key=[table.id], page=page, descending=True)


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
    statement = in_environment(model, scope)
    if lock:
        statement = statement.with_for_update()
    row = await find(session, statement, row_id)
    if row is None:
        raise NotFound(f"{what} not found")
    return row
