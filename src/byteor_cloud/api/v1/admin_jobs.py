"""`/api/v1/admin/jobs`: the instance administrator's view of the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from byteor_cloud.api.auth import require_instance_admin
from byteor_cloud.api.deps import DbSession, PageParams, ReadSession
from byteor_cloud.api.pagination import page_out
from byteor_cloud.api.schemas import PageOut, ResponseModel
from byteor_cloud.jobs import admin
from byteor_cloud.jobs.rules import JobState

router = APIRouter(
    prefix="/admin/jobs", tags=["admin"], dependencies=[Depends(require_instance_admin)]
)


class JobOut(ResponseModel):
    id: str
    type: str
    state: JobState
    payload: dict[str, Any]
    dedupe_key: str | None
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_duration_ms: int | None
    last_error: str | None


@router.get("", summary="List jobs, newest first")
async def list_jobs(
    session: ReadSession,
    page: PageParams,
    state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
    type: Annotated[str | None, Query(max_length=64, description="Only jobs of this type")] = None,
) -> PageOut[JobOut]:
    result = await admin.list_jobs(session, page=page, state=state, job_type=type)
    return page_out(result, JobOut.model_validate)


@router.post("/{job_id}/retry", summary="Retry a dead-lettered job with a fresh budget")
async def retry_job(session: DbSession, job_id: str) -> JobOut:
    return JobOut.model_validate(await admin.retry_job(session, job_id=job_id))
