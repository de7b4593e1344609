"""Running a Worker inside an ASGI app's lifespan (worker mode, and combined mode)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from byteor_cloud.config import Settings
from byteor_cloud.db.session import Database
from byteor_cloud.jobs.catalog import build_registry
from byteor_cloud.jobs.registry import JobRegistry
from byteor_cloud.storage import BlobStore
from byteor_cloud.worker.metrics import WorkerMetrics
from byteor_cloud.worker.runner import Worker, WorkerOptions

log = logging.getLogger("byteor_cloud.worker")


def options_from(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.worker_concurrency,
        poll_interval_s=settings.worker_poll_interval_s,
        shutdown_grace_s=settings.worker_shutdown_grace_s,
    )


def build_worker(
    settings: Settings,
    *,
    database: Database,
    store: BlobStore,
    metrics_registry: CollectorRegistry,
    registry: JobRegistry | None = None,
) -> Worker:
    return Worker(
        database=database,
        store=store,
        settings=settings,
        registry=registry or build_registry(settings),
        metrics=WorkerMetrics(metrics_registry),
        options=options_from(settings),
    )


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run `worker` in the background for the duration of the block, then stop it
    gracefully: running jobs get the grace period, the rest are released."""
    task = asyncio.create_task(worker.run(), name="worker")
    log.info("worker started", extra={"concurrency": worker.options.concurrency})
    try:
        yield worker
    finally:
        worker.stop()
        await task
        log.info("worker stopped")
