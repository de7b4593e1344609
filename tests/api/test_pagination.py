"""Keyset pagination: every row exactly once across pages, even while rows are inserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from byteor_cloud.api.app import create_app
from byteor_cloud.api.deps import PageParams, ReadSession
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.pagination import paginate
from byteor_cloud.db.session import Database
from byteor_cloud.db.types import UTCDateTime
from helpers.databases import TestDatabase


class ProbeBase(DeclarativeBase):
    metadata = MetaData()


class ProbeRow(ProbeBase):
    """A test-only table: the pagination machinery is generic over any model."""

    __tablename__ = "pagination_probe"
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    label: Mapped[str] = mapped_column(String(40))


probe = APIRouter(prefix="/_probe")


@probe.get("/rows")
async def list_rows(session: ReadSession, page: PageParams) -> PageOut[str]:
    result = await paginate(session, select(ProbeRow), sort_key=[ProbeRow.id], page=page)
    return page_out(result, lambda row: row.id)


@pytest.fixture
async def probe_app(test_db: TestDatabase, database: Database) -> AsyncIterator[FastAPI]:
    async with database.engine.begin() as connection:
        await connection.run_sync(ProbeBase.metadata.create_all)
    yield create_app(test_db.settings(), database=database, extra_routers=[probe])
    async with database.engine.begin() as connection:
        await connection.run_sync(ProbeBase.metadata.drop_all)


async def insert_rows(database: Database, count: int, label: str) -> list[str]:
    ids = []
    for _ in range(count):
        async with database.transaction() as session:
            row = ProbeRow(label=label)
            session.add(row)
            await session.flush()
            ids.append(row.id)
    return ids


async def test_every_row_exactly_once_while_rows_are_inserted(
    probe_app: FastAPI, database: Database
) -> None:
    async with database.transaction() as session:
        session.add_all(ProbeRow(label="before") for _ in range(250))
    async with database.transaction(readonly=True) as session:
        before = set((await session.scalars(select(ProbeRow.id))).all())

    transport = httpx.ASGITransport(app=probe_app)
    seen: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        writer = asyncio.create_task(insert_rows(database, 60, "during"))
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/api/v1/_probe/rows", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= 7
            seen.extend(body["items"])
            cursor = body["next_cursor"]
            pages += 1
            await asyncio.sleep(0)  # let the writer interleave with the reader
            if cursor is None:
                break
        inserted_during = set(await writer)

    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert before <= set(seen), "a row that existed before the first page was skipped"
    assert set(seen) <= before | inserted_during
    assert seen == sorted(seen), "order is not stable"
    assert pages >= 250 // 7


async def test_default_limit_and_bounds(probe_app: FastAPI, database: Database) -> None:
    async with database.transaction() as session:
        session.add_all(ProbeRow(label="x") for _ in range(60))
    transport = httpx.ASGITransport(app=probe_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = (await client.get("/api/v1/_probe/rows")).json()
        assert len(first["items"]) == 50
        assert first["next_cursor"]
        second = (
            await client.get("/api/v1/_probe/rows", params={"cursor": first["next_cursor"]})
        ).json()
        assert len(second["items"]) == 10
        assert second["next_cursor"] is None
        too_big = await client.get("/api/v1/_probe/rows", params={"limit": 201})
        assert too_big.status_code == 422
        assert too_big.json()["error"]["details"]["fields"][0]["field"] == "query.limit"
        forged = await client.get("/api/v1/_probe/rows", params={"cursor": "Zm9v"})
        assert forged.status_code == 400
        assert forged.json()["error"]["code"] == "invalid_cursor"
