"""Worker-test fixtures: effect tables, a job registry with the test job types, helpers to
run in-process workers and wait for the queue to settle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from byteor_cloud.db.session import Database
from byteor_cloud.jobs.registry import JobRegistry
from byteor_cloud.storage import LocalBlobStore
from byteor_cloud.worker.metrics import WorkerMetrics
from byteor_cloud.worker.runner import Worker, WorkerOptions
from byteor_cloud.worker.service import running
from helpers import job_handlers
from helpers.databases import TestDatabase

WorkerFactory = Callable[..., AbstractAsyncContextManager[Worker]]


@pytest.fixture
async def effects(database: Database) -> AsyncIterator[Database]:
    await job_handlers.create_effect_tables(database)
    yield database
    await job_handlers.drop_effect_tables(database)


@pytest.fixture
def registry() -> JobRegistry:
    """Only the test job types: built-in periodic jobs would add rows the tests count."""
    registry = JobRegistry()
    job_handlers.register(registry)
    return registry


@pytest.fixture
def start_worker(
    test_db: TestDatabase, database: Database, registry: JobRegistry, tmp_path: Path
) -> WorkerFactory:
    """Start in-process workers: `async with start_worker(concurrency=2) as worker: …`."""

    def factory(**options: float) -> AbstractAsyncContextManager[Worker]:
        worker = Worker(
            database=database,
            store=LocalBlobStore(tmp_path / "objects"),
            settings=test_db.settings(),
            registry=registry,
            metrics=WorkerMetrics(CollectorRegistry()),
            options=WorkerOptions(**{"poll_interval_s": 0.05, **options}),  # type: ignore[arg-type]
        )
        return running(worker)

    return factory
