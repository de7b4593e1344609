"""Job throughput: no-op jobs through enqueue → claim → run → complete with 4 worker slots,
beside a raw-SQL loop doing the same lease-claim and complete transactions, same run.

    .venv/bin/python bench/jobs.py [--jobs 2000] [--backend sqlite|postgresql|both]

Prints jobs/s for both and the ratio (goal ≥ 0.3× on each database).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from byteor_cloud.config import Settings
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.ids import new_id
from byteor_cloud.db import migrate
from byteor_cloud.db.session import Database
from byteor_cloud.jobs import queue
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType
from byteor_cloud.storage import LocalBlobStore
from byteor_cloud.worker.metrics import WorkerMetrics
from byteor_cloud.worker.runner import Worker, WorkerOptions

SLOTS = 4
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Noop(JobPayload):
    job_type = "bench_noop"


async def noop(_context: JobContext, _payload: Noop) -> None:
    return None


async def through_the_queue(database: Database, settings: Settings, jobs: int) -> float:
    registry = JobRegistry()
    registry.register(JobType(Noop, noop))
    worker = Worker(
        database=database,
        store=LocalBlobStore(Path(tempfile.mkdtemp()) / "objects"),
        settings=settings,
        registry=registry,
        metrics=WorkerMetrics(CollectorRegistry()),
        options=WorkerOptions(concurrency=SLOTS, poll_interval_s=0.01, stats_interval_s=3600),
    )
    started = time.perf_counter()
    for start in range(0, jobs, 100):
        async with database.transaction() as session:
            for _ in range(min(100, jobs - start)):
                await queue.enqueue(session, Noop())
    task = asyncio.create_task(worker.run())
    # Watch the worker's own counter, so measuring adds no database load.
    succeeded = worker.metrics.attempts.labels("bench_noop", "succeeded")
    while succeeded._value.get() < jobs:  # noqa: ASYNC110 - polling a counter is the point
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    worker.stop()
    await task
    return jobs / elapsed


CLAIM_SQL = {
    "postgresql": (
        "UPDATE raw_jobs SET state = 'running', lease_token = :token, attempts = attempts + 1 "
        "WHERE id = (SELECT id FROM raw_jobs WHERE state = 'queued' ORDER BY id LIMIT 1 "
        "FOR UPDATE SKIP LOCKED) RETURNING id"
    ),
    "sqlite": (
        "UPDATE raw_jobs SET state = 'running', lease_token = :token, attempts = attempts + 1 "
        "WHERE id = (SELECT id FROM raw_jobs WHERE state = 'queued' ORDER BY id LIMIT 1) "
        "RETURNING id"
    ),
}


async def raw_sql_loop(database: Database, jobs: int) -> float:
    """The same transactions written by hand: insert, claim one under a lease, complete."""
    dialect = "sqlite" if database.is_sqlite else "postgresql"
    async with database.engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS raw_jobs"))
        await connection.execute(
            text(
                "CREATE TABLE raw_jobs (id VARCHAR(26) PRIMARY KEY, state VARCHAR(16), "
                "lease_token VARCHAR(26), attempts INTEGER, created_at VARCHAR(40))"
            )
        )
    started = time.perf_counter()
    for start in range(0, jobs, 100):
        async with database.transaction() as session:
            for _ in range(min(100, jobs - start)):
                await session.execute(
                    text("INSERT INTO raw_jobs VALUES (:id, 'queued', NULL, 0, :at)"),
                    {"id": new_id(), "at": utcnow().isoformat()},
                )

    async def slot() -> None:
        while True:
            async with database.transaction() as session:
                claimed = (
                    await session.execute(text(CLAIM_SQL[dialect]), {"token": new_id()})
                ).scalar_one_or_none()
            if claimed is None:
                return
            async with database.transaction() as session:
                await session.execute(
                    text("UPDATE raw_jobs SET state = 'succeeded' WHERE id = :id"),
                    {"id": claimed},
                )

    await asyncio.gather(*(slot() for _ in range(SLOTS)))
    elapsed = time.perf_counter() - started
    async with database.engine.begin() as connection:
        await connection.execute(text("DROP TABLE raw_jobs"))
    return jobs / elapsed


async def run(backend: str, jobs: int) -> None:
    if backend == "sqlite":
        url, schema = f"sqlite:///{tempfile.mkdtemp()}/bench.db", "public"
    else:
        url, schema = PG_URL, f"bench_{uuid.uuid4().hex[:8]}"
    migrate.upgrade(url, schema=schema)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, database_schema=schema, secret_key="bench"
    )
    database = Database(url, schema=schema)
    try:
        baseline = await raw_sql_loop(database, jobs)
        ours = await through_the_queue(database, settings, jobs)
    finally:
        await database.dispose()
        if backend == "postgresql":
            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
    print(
        f"{backend:10s} queue {ours:8.0f} jobs/s   raw SQL {baseline:8.0f} jobs/s   "
        f"ratio {ours / baseline:.2f}x (goal >= 0.30x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        asyncio.run(run(backend, args.jobs))


if __name__ == "__main__":
    main()
