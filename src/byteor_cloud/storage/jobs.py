"""Object-store housekeeping: clear temp files and uploads left by crashed writers."""

from __future__ import annotations

from datetime import timedelta

from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob

# Older than any write in progress could be: a write streams at most 64 MiB.
INCOMPLETE_WRITE_AGE = timedelta(hours=1)


class StorageSweep(JobPayload):
    job_type = "storage_sweep"
    max_attempts = 3


async def sweep_incomplete_writes(context: JobContext, _payload: StorageSweep) -> None:
    removed = await context.store.sweep_incomplete_writes(older_than=INCOMPLETE_WRITE_AGE)
    context.log.info("storage sweep", extra={"removed": removed})


def register(registry: JobRegistry) -> None:
    registry.register(JobType(StorageSweep, sweep_incomplete_writes))
    registry.every(PeriodicJob("storage_sweep", "storage_sweep", timedelta(hours=1)))
