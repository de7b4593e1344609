"""The approval expiry sweep: lapsed requests and credentials become `expired`."""

from __future__ import annotations

from datetime import timedelta

from byteor_cloud.approvals import service as approvals
from byteor_cloud.core.clock import utcnow
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob

SWEEP_PERIOD = timedelta(seconds=60)
BATCH = 200


class ApprovalExpirySweep(JobPayload):
    job_type = "approval_expiry_sweep"
    max_attempts = 3


async def sweep(context: JobContext, _payload: ApprovalExpirySweep) -> None:
    async with context.database.transaction() as session:
        await approvals.expire_due(session, now=utcnow(), limit=BATCH)


def register(registry: JobRegistry) -> None:
    registry.register(JobType(ApprovalExpirySweep, sweep))
    registry.every(PeriodicJob("approval_expiry_sweep", "approval_expiry_sweep", SWEEP_PERIOD))
