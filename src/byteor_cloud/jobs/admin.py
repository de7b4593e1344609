"""Instance-administrator views of the queue: list jobs, retry dead letters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import InvalidState, NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.pagination import paginate
from byteor_cloud.jobs.rules import IllegalTransition, JobEvent, JobState, next_state


async def list_jobs(
    session: AsyncSession,
    *,
    page: PageRequest,
    state: JobState | None = None,
    job_type: str | None = None,
) -> Page[Job]:
    """Jobs, newest first, optionally of one state and/or type."""
    statement = select(Job)
    if state is not None:
        statement = statement.where(Job.state == state.value)
    if job_type is not None:
        statement = statement.where(Job.type == job_type)
    return await paginate(session, statement, sort_key=[Job.id], page=page, descending=True)


async def get_job(session: AsyncSession, job_id: str) -> Job:
    job = await session.get(Job, job_id) if is_id(job_id) else None
    if job is None:
        raise NotFound("job not found", code="job_not_found")
    return job


async def retry_job(session: AsyncSession, *, job_id: str) -> Job:
    """Give a dead-lettered job a fresh retry budget and make it due now."""
    job = await get_job(session, job_id)
    try:
        job.state = next_state(JobState(job.state), JobEvent.admin_retry).value
    except IllegalTransition:
        raise InvalidState(
            f"only dead-lettered jobs can be retried (this one is {job.state})",
            code="job_not_retryable",
            details={"state": job.state},
        ) from None
    job.attempts = 0
    job.run_at = utcnow()
    job.finished_at = None
    await session.flush()
    return job
