"""Idempotency housekeeping: delete records past their 24 h retention, every hour."""

from __future__ import annotations

from datetime import timedelta

from byteor_cloud.core.clock import utcnow
from byteor_cloud.idempotency import store
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob


class IdempotencyCleanup(JobPayload):
    job_type = "idempotency_cleanup"
    max_attempts = 3


async def delete_expired_records(context: JobContext, _payload: IdempotencyCleanup) -> None:
    # Idempotent: a second run finds nothing left to delete. Expired records are already
    # ignored by requests, so a late or skipped run only costs space.
    async with context.database.transaction() as session:
        removed = await store.delete_expired(session, now=utcnow())
    context.log.info("idempotency cleanup", extra={"removed": removed})


def register(registry: JobRegistry) -> None:
    registry.register(JobType(IdempotencyCleanup, delete_expired_records))
    registry.every(
        PeriodicJob("idempotency_cleanup", IdempotencyCleanup.job_type, timedelta(hours=1))
    )
