"""Deployment jobs: `bundle_build` (the signed deploy bundle, stored by digest, then the
first assignments; the steps are `deployments.builds`) and the rollout-progression sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from byteor_cloud.deployments import builds, rollout
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob

SWEEP_PERIOD = timedelta(seconds=10)
SWEEP_BATCH = 200


class BundleBuild(JobPayload):
    job_type = "bundle_build"
    max_attempts = 5
    deployment_id: str
    purpose: Literal["rollout", "rollback"] = "rollout"


class RolloutSweep(JobPayload):
    job_type = "rollout_progression_sweep"
    max_attempts = 3


async def build(context: JobContext, payload: BundleBuild) -> None:
    """Idempotent: a deployment no longer waiting for this build is left alone; the same
    inputs give the same bytes, stored under their digest. `building` is committed before
    the build, so a refused build can end `failed` with its reason."""
    deployment_id, purpose = payload.deployment_id, payload.purpose
    try:
        async with context.database.transaction() as session:
            if not await builds.begin(session, deployment_id, purpose):
                return
        async with context.database.transaction() as session:
            built, key = await builds.render(session, context.settings, deployment_id, purpose)
        await context.store.put_bytes(key, built.data, content_type="application/gzip")
    except builds.BuildRefused as refused:
        async with context.database.transaction() as session:
            await builds.fail(session, deployment_id, purpose, str(refused))
        return
    except Exception:
        if context.attempt >= BundleBuild.max_attempts:
            async with context.database.transaction() as session:
                await builds.fail(
                    session,
                    deployment_id,
                    purpose,
                    "the bundle could not be built (see the job's error)",
                )
        raise
    async with context.database.transaction() as session:
        await builds.finish(
            session, deployment_id, purpose, digest=built.digest, key=key, size=len(built.data)
        )


async def sweep(context: JobContext, _payload: RolloutSweep) -> None:
    """Each deploying or rolling-back deployment in its own short transaction: unreachable
    agents, bake times, the next batch, completion, failure and auto-rollback."""
    async with context.database.transaction(readonly=True) as session:
        ids = await rollout.progress_all(session, limit=SWEEP_BATCH)
    for deployment_id in ids:
        async with context.database.transaction() as session:
            await rollout.progress_one(session, deployment_id)


def register(registry: JobRegistry) -> None:
    registry.register(JobType(BundleBuild, build))
    registry.register(JobType(RolloutSweep, sweep))
    registry.every(
        PeriodicJob("rollout_progression_sweep", "rollout_progression_sweep", SWEEP_PERIOD)
    )
