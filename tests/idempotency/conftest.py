"""Fixtures for the idempotency tests: the app with probe routes that crash, fail with a
503 or stream a large body (each counting its calls), two people, and record helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from byteor_cloud.api.app import create_app
from byteor_cloud.core.errors import DependencyUnavailable
from byteor_cloud.db.models.idempotency import IdempotencyRecord
from byteor_cloud.db.models.tenancy import Organization
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase
from helpers.identity import TestUser, make_user

PROBE = "/api/v1/idempotency-probe"
STREAM_CHUNK = b"x" * (256 * 1024)
STREAM_CHUNKS = 6  # 1.5 MiB: over the 1 MiB a stored response may have


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/idempotency-probe")

    def count(request: Request, name: str) -> None:
        calls: Counter[str] = request.app.state.probe_calls
        calls[name] += 1

    @router.post("/crash")
    async def crash(request: Request) -> None:
        count(request, "crash")
        raise RuntimeError("probe crash")

    @router.post("/unavailable")
    async def unavailable(request: Request) -> None:
        count(request, "unavailable")
        raise DependencyUnavailable("probe dependency is down")

    @router.post("/stream")
    async def stream(request: Request) -> StreamingResponse:
        count(request, "stream")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(STREAM_CHUNKS):
                yield STREAM_CHUNK

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    return router


@pytest.fixture
def app(test_db: TestDatabase, database: Database) -> FastAPI:
    built = create_app(test_db.settings(), database=database, extra_routers=[_probe_router()])
    built.state.probe_calls = Counter()
    return built


@pytest.fixture
async def alice(database: Database) -> TestUser:
    return await make_user(database, "alice@example.com")


@pytest.fixture
async def bob(database: Database) -> TestUser:
    return await make_user(database, "bob@example.com")


def keyed(user: TestUser, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def org_count(database: Database) -> int:
    async with database.transaction(readonly=True) as session:
        return int(await session.scalar(select(func.count()).select_from(Organization)) or 0)


async def records(database: Database) -> list[IdempotencyRecord]:
    async with database.transaction(readonly=True) as session:
        return list((await session.scalars(select(IdempotencyRecord))).all())
