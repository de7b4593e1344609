"""The signing-key sweep: every 30 s, promote due `next` keys and retire `retiring` keys
whose grace period is over."""

from __future__ import annotations

from datetime import timedelta

from byteor_cloud.core.clock import utcnow
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob
from byteor_cloud.signing import service

# A `next` key becomes active at most one period after its activate_at; the period is one
# default heartbeat interval, small next to the 90 s activation delay.
SWEEP_PERIOD = timedelta(seconds=30)


class SigningKeySweep(JobPayload):
    job_type = "signing_key_sweep"
    max_attempts = 3


async def sweep_signing_keys(context: JobContext, _payload: SigningKeySweep) -> None:
    # Idempotent: each org is re-read under its lock, so a repeated run finds nothing due.
    # One short transaction per org keeps one org's failure from holding back the others.
    now = utcnow()
    async with context.database.transaction(readonly=True) as session:
        org_ids = await service.orgs_with_due_keys(session, now=now)
    changed, failed = 0, 0
    for org_id in org_ids:
        try:
            async with context.database.transaction() as session:
                changed += await service.apply_due_transitions(session, org_id=org_id, now=now)
        except Exception:
            context.log.exception("signing key sweep failed", extra={"org_id": org_id})
            failed += 1
    context.log.info("signing key sweep", extra={"orgs": len(org_ids), "changed": changed})
    if failed:
        # The attempt fails (and is retried) only after every other org had its turn.
        raise RuntimeError(f"signing key sweep failed for {failed} organization(s)")


def register(registry: JobRegistry) -> None:
    registry.register(JobType(SigningKeySweep, sweep_signing_keys))
    registry.every(PeriodicJob("signing_key_sweep", SigningKeySweep.job_type, SWEEP_PERIOD))
