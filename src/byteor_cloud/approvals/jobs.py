"""The approval expiry sweep: lapsed requests and credentials become `expired`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from byteor_cloud.approvals import service as approvals
from byteor_cloud.approvals.rules import ApprovalStatus
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.principal import SYSTEM
from byteor_cloud.db.models.deployments import Approval
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob

SWEEP_PERIOD = timedelta(seconds=60)
BATCH = 200


class ApprovalExpirySweep(JobPayload):
    job_type = "approval_expiry_sweep"
    max_attempts = 3


async def sweep(context: JobContext, _payload: ApprovalExpirySweep) -> None:
    """Idempotent: only approvals still pending/approved and past `expires_at` move."""
    now = utcnow()
    async with context.database.transaction() as session:
        due = (
            await session.scalars(
                select(Approval)
                .where(
                    Approval.status.in_(
                        [ApprovalStatus.pending.value, ApprovalStatus.approved.value]
                    ),
                    Approval.expires_at <= now,
                )
                .order_by(Approval.expires_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for approval in due:
            await approvals.expire(session, SYSTEM, approval)


def register(registry: JobRegistry) -> None:
    registry.register(JobType(ApprovalExpirySweep, sweep))
    registry.every(PeriodicJob("approval_expiry_sweep", "approval_expiry_sweep", SWEEP_PERIOD))
