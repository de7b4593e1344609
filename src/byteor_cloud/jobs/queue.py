"""Queue operations: enqueue in the caller's transaction; claim, renew, finish with leases.

Claims take row locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers never wait
on each other; on SQLite the claim runs in a write transaction (`BEGIN IMMEDIATE`, see
db/engine.py), so there is one writer at a time and no two workers take the same row.
Every state change after a claim is fenced by the claim's lease token: a worker whose
lease lapsed (and whose job another worker took) cannot complete or fail it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.dialect import insert_for
from byteor_cloud.db.models.jobs import Job, PeriodicSchedule
from byteor_cloud.db.session import Database
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, PeriodicJob, serialise_payload
from byteor_cloud.jobs.rules import JobEvent, JobState, backoff_seconds, next_state

MAX_ERROR_CHARS = 2000


async def enqueue(
    session: AsyncSession,
    payload: JobPayload,
    *,
    dedupe_key: str | None = None,
    delay: timedelta | None = None,
) -> str | None:
    """Add a job to the caller's transaction: it exists only if that transaction commits.

    With `dedupe_key`, nothing is added while a pending job has the same key (returns None).
    """
    now = utcnow()
    job_id = new_id()
    statement = (
        insert_for(session)(Job)
        .values(
            id=job_id,
            type=payload.job_type,
            payload=serialise_payload(payload),
            state=JobState.queued.value,
            dedupe_key=dedupe_key,
            attempts=0,
            max_attempts=payload.max_attempts,
            run_at=now + (delay or timedelta(0)),
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Job.id)
    )
    # RETURNING yields no row when the dedupe key made the insert a no-op.
    inserted: str | None = (await session.execute(statement)).scalar_one_or_none()
    return inserted


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    type: str
    payload: dict[str, Any]
    attempt: int
    lease_token: str
    lease: timedelta
    backoff_base_s: float


async def claim(
    database: Database,
    registry: JobRegistry,
    *,
    limit: int,
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs of the types this process knows, each under a new lease."""
    if limit <= 0 or not registry.names:
        return []
    now = utcnow()
    due = or_(
        and_(Job.state.in_((JobState.queued.value, JobState.retrying.value)), Job.run_at <= now),
        and_(Job.state == JobState.running.value, Job.lease_expires_at < now),
    )
    candidates = (
        select(Job)
        .where(due, Job.type.in_(registry.names))
        .order_by(Job.run_at, Job.id)
        .limit(limit)
    )
    if not database.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    claimed: list[ClaimedJob] = []
    async with database.transaction() as session:
        for job in (await session.scalars(candidates)).all():
            if job.attempts >= job.max_attempts:
                # Its last attempt's lease lapsed (the worker died mid-run): no more tries.
                job.state = next_state(JobState(job.state), JobEvent.exhaust).value
                job.last_error = job.last_error or "lease lapsed on the last attempt"
                job.lease_token = None
                job.lease_expires_at = None
                job.finished_at = now
                continue
            model = registry.get(job.type).payload_model
            lease = model.lease
            job.state = next_state(JobState(job.state), JobEvent.claim).value
            job.attempts += 1
            job.lease_token = new_id()
            job.lease_expires_at = now + lease
            job.started_at = now
            claimed.append(
                ClaimedJob(
                    id=job.id,
                    type=job.type,
                    payload=dict(job.payload),
                    attempt=job.attempts,
                    lease_token=job.lease_token,
                    lease=lease,
                    backoff_base_s=model.backoff_base_s,
                )
            )
    return claimed


def _fenced(job_id: str, lease_token: str) -> Any:
    return and_(
        Job.id == job_id, Job.lease_token == lease_token, Job.state == JobState.running.value
    )


async def renew(database: Database, job: ClaimedJob) -> bool:
    """Extend the lease; False when the lease is no longer ours."""
    async with database.transaction() as session:
        result = await session.execute(
            update(Job)
            .where(_fenced(job.id, job.lease_token))
            .values(lease_expires_at=utcnow() + job.lease)
        )
        return bool(getattr(result, "rowcount", 0))


async def complete(database: Database, job: ClaimedJob, *, duration_ms: int) -> bool:
    """Mark the attempt succeeded; False when the lease was lost meanwhile."""
    async with database.transaction() as session:
        result = await session.execute(
            update(Job)
            .where(_fenced(job.id, job.lease_token))
            .values(
                state=JobState.succeeded.value,
                lease_token=None,
                lease_expires_at=None,
                finished_at=utcnow(),
                last_duration_ms=duration_ms,
            )
        )
        return bool(getattr(result, "rowcount", 0))


async def fail(
    database: Database, job: ClaimedJob, *, error: str, duration_ms: int, permanent: bool = False
) -> JobState | None:
    """Record a failed attempt: `retrying` with backoff, or `dead_letter` when spent."""
    now = utcnow()
    async with database.transaction() as session:
        row = await session.scalar(select(Job).where(_fenced(job.id, job.lease_token)))
        if row is None:
            return None
        spent = permanent or row.attempts >= row.max_attempts
        state = next_state(JobState.running, JobEvent.exhaust if spent else JobEvent.fail)
        row.state = state.value
        row.last_error = error[:MAX_ERROR_CHARS]
        row.lease_token = None
        row.lease_expires_at = None
        row.last_duration_ms = duration_ms
        if spent:
            row.finished_at = now
        else:
            delay = backoff_seconds(row.attempts, base_s=job.backoff_base_s)
            row.run_at = now + timedelta(seconds=delay)
        return state


async def release(database: Database, job: ClaimedJob) -> bool:
    """Hand an unfinished job back on shutdown: claimable at once, the attempt not counted."""
    async with database.transaction() as session:
        result = await session.execute(
            update(Job)
            .where(_fenced(job.id, job.lease_token))
            .values(
                state=next_state(JobState.running, JobEvent.release).value,
                attempts=Job.attempts - 1,
                lease_token=None,
                lease_expires_at=None,
                run_at=utcnow(),
            )
        )
        return bool(getattr(result, "rowcount", 0))


def period_start(moment: datetime, period: timedelta) -> datetime:
    """The start of the period containing `moment`, periods aligned to the Unix epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    periods = (moment - epoch) // period
    return epoch + periods * period


async def enqueue_due_periodic(database: Database, registry: JobRegistry) -> list[str]:
    """Enqueue every periodic job whose current period has not been enqueued yet.

    Any number of workers may call this at once: the conditional update of the job's
    schedule row succeeds for exactly one of them per period, in the same transaction as
    the enqueue.
    """
    enqueued: list[str] = []
    now = utcnow()
    for periodic in registry.periodic:
        start = period_start(now, periodic.period)
        async with database.transaction() as session:
            await session.execute(
                insert_for(session)(PeriodicSchedule)
                .values(name=periodic.name, last_period_start=start - periodic.period)
                .on_conflict_do_nothing()
            )
            won = await session.execute(
                update(PeriodicSchedule)
                .where(
                    PeriodicSchedule.name == periodic.name,
                    PeriodicSchedule.last_period_start < start,
                )
                .values(last_period_start=start)
            )
            if getattr(won, "rowcount", 0) == 1:
                payload = _periodic_payload(registry, periodic)
                job_id = await enqueue(
                    session, payload, dedupe_key=f"periodic:{periodic.name}:{start.isoformat()}"
                )
                if job_id:
                    enqueued.append(job_id)
    return enqueued


def _periodic_payload(registry: JobRegistry, periodic: PeriodicJob) -> JobPayload:
    return registry.get(periodic.job_type).payload_model.model_validate(periodic.payload)


async def counts_by_type_and_state(database: Database) -> dict[tuple[str, str], int]:
    """Job counts for metrics: one grouped query, served from the state/run_at index."""
    async with database.transaction(readonly=True) as session:
        rows = await session.execute(
            select(Job.type, Job.state, func.count()).group_by(Job.type, Job.state)
        )
        return {(type_, state): count for type_, state, count in rows.all()}


async def due_count(database: Database) -> int:
    """Jobs waiting for a worker now (queue depth)."""
    now = utcnow()
    async with database.transaction(readonly=True) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Job)
            .where(
                Job.state.in_((JobState.queued.value, JobState.retrying.value)),
                Job.run_at <= now,
            )
        )
        return int(count or 0)
