"""The liveness sweep: agents silent for 3 heartbeat intervals go offline (audited)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from byteor_cloud.agents.rules import MISSED_INTERVALS, AgentStatus, LivenessEvent, next_status
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.principal import SYSTEM
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PeriodicJob

SWEEP_PERIOD = timedelta(seconds=10)
BATCH = 500


class LivenessSweep(JobPayload):
    job_type = "agent_liveness_sweep"
    max_attempts = 3


async def sweep(context: JobContext, _payload: LivenessSweep) -> None:
    """Idempotent: only agents still online and still silent are moved."""
    now = utcnow()
    async with context.database.transaction() as session:
        candidates = (
            await session.execute(
                select(Agent, Environment.heartbeat_interval_s)
                .join(Environment, Environment.id == Agent.environment_id)
                .where(Agent.status == AgentStatus.online.value)
                .order_by(Agent.last_heartbeat_at)
                .limit(BATCH)
                .with_for_update(of=Agent, skip_locked=True)
            )
        ).all()
        for agent, interval in candidates:
            deadline = timedelta(seconds=interval * MISSED_INTERVALS)
            if agent.last_heartbeat_at is None or now - agent.last_heartbeat_at < deadline:
                continue
            agent.status = next_status(AgentStatus.online, LivenessEvent.lapse).value
            await audit.record(
                session,
                SYSTEM,
                "agent.offline",
                AuditTarget.in_environment("agent", agent),
                details={
                    "last_heartbeat_at": agent.last_heartbeat_at.isoformat(),
                    "missed_intervals": MISSED_INTERVALS,
                },
            )


def register(registry: JobRegistry) -> None:
    registry.register(JobType(LivenessSweep, sweep))
    registry.every(PeriodicJob("agent_liveness_sweep", "agent_liveness_sweep", SWEEP_PERIOD))
