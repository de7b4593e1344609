"""The liveness sweep: agents silent for 3 heartbeat intervals go offline (audited)."""

from __future__ import annotations

from datetime import timedelta

from byteor_cloud.agents import service as agents
from byteor_cloud.core.clock import utcnow
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob

SWEEP_PERIOD = timedelta(seconds=10)
BATCH = 500


class LivenessSweep(JobPayload):
    job_type = "agent_liveness_sweep"
    max_attempts = 3


async def sweep(context: JobContext, _payload: LivenessSweep) -> None:
    async with context.database.transaction() as session:
        await agents.mark_silent_offline(session, now=utcnow(), limit=BATCH)


def register(registry: JobRegistry) -> None:
    registry.register(JobType(LivenessSweep, sweep))
    registry.every(PeriodicJob("agent_liveness_sweep", "agent_liveness_sweep", SWEEP_PERIOD))
