"""Running the queue's due jobs in-process, for tests that need a job's effect now."""

from __future__ import annotations

from fastapi import FastAPI

from byteor_cloud.jobs import queue
from byteor_cloud.jobs.catalog import build_registry
from byteor_cloud.jobs.context import JobContext


async def drain_jobs(app: FastAPI, *, rounds: int = 20) -> int:
    """Claim and run due jobs (real handlers, real leases) until none is left; the count."""
    settings = app.state.settings
    database = app.state.database
    registry = build_registry(settings)
    ran = 0
    for _ in range(rounds):
        claimed = await queue.claim(database, registry, limit=10)
        if not claimed:
            return ran
        for job in claimed:
            context = JobContext(
                database=database,
                settings=settings,
                store=app.state.store,
                job_id=job.id,
                job_type=job.type,
                attempt=job.attempt,
            )
            payload = registry.parse_payload(job.type, job.payload)
            await registry.get(job.type).handler(context, payload)
            assert await queue.complete(database, job, duration_ms=0)
            ran += 1
    raise AssertionError("jobs kept coming")
