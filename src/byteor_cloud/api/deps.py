"""Request dependencies: the database transaction, pagination and media-type guards.

The transaction dependency uses FastAPI's function scope so the commit happens after the
endpoint returns and *before* the response is sent: a client never sees a 2xx for a
change that then failed to commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from byteor_cloud.config import Settings
from byteor_cloud.core.errors import UnsupportedMediaType
from byteor_cloud.core.pagination import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT, PageRequest
from byteor_cloud.db.session import Database

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).transaction() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).transaction(readonly=True) as session:
        yield session


async def _autocommit_reader(request: Request) -> AsyncIterator[AsyncConnection]:
    async with get_database(request).autocommit_reader() as connection:
        yield connection


# A write transaction (BEGIN IMMEDIATE on SQLite) committed when the endpoint returns.
DbSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
# A read-only transaction, rolled back at the end; never takes the SQLite write lock.
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
# A Core connection outside any transaction, for single-statement reads on hot paths.
ReadConnection = Annotated[AsyncConnection, Depends(_autocommit_reader, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page"),
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


PageParams = Annotated[PageRequest, Depends(page_request)]


def require_json_body(request: Request) -> None:
    """Refuse (415) a request body that is not JSON on routes that take JSON."""
    if request.method not in _BODY_METHODS:
        return
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if has_body and not (media_type == "application/json" or media_type.endswith("+json")):
        raise UnsupportedMediaType(
            "request body must be application/json",
            details={"content_type": media_type or None},
        )
