"""Fixtures every test folder shares: a migrated database per test on SQLite and on
PostgreSQL, the app and its client, and real server processes.

With CI=true a missing PostgreSQL fails the run; elsewhere its tests are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from byteor_cloud.api.app import create_app
from byteor_cloud.db.session import Database
from helpers.databases import (
    PostgresSchema,
    SqliteTemplate,
    TestDatabase,
    in_ci,
    postgres_available,
)
from helpers.processes import RunningProcess, start_server

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    if in_ci():
        reason = postgres_available()
        if reason is not None:
            raise pytest.UsageError(f"CI=true but PostgreSQL is unavailable: {reason}")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _worker_id(config: pytest.Config) -> str:
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    return str(worker)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_schema(request: pytest.FixtureRequest) -> Iterator[PostgresSchema]:
    reason = postgres_available()
    if reason is not None:
        if in_ci():
            pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    schema = PostgresSchema(_worker_id(request.config))
    yield schema
    schema.drop()


@pytest.fixture(params=BACKENDS)
def test_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    """A migrated, isolated database for this test, once on each backend."""
    if request.param == "sqlite":
        template: SqliteTemplate = request.getfixturevalue("sqlite_template")
        yield template.fresh(tmp_path / "data")
        return
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    try:
        yield schema.fresh(tmp_path / "data")
    finally:
        schema.truncate()


@pytest.fixture
async def database(test_db: TestDatabase) -> AsyncIterator[Database]:
    db = Database(test_db.url, schema=test_db.schema)
    yield db
    await db.dispose()


@pytest.fixture
def app(test_db: TestDatabase, database: Database) -> FastAPI:
    return create_app(test_db.settings(), database=database)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def live_server(test_db: TestDatabase, tmp_path: Path) -> Iterator[RunningProcess]:
    """The real `byteor-cloud serve` process on a free port, on this test's database."""
    server = start_server(test_db.env(), tmp_path)
    try:
        yield server
    finally:
        server.stop()
