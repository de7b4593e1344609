"""Tenancy jobs: purging a deleted tenant's blobs after its rows are gone."""

from __future__ import annotations

from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType


def blob_prefix(org_id: str, project_id: str | None = None, env_id: str | None = None) -> str:
    """Where a tenant's blobs live; every context stores under its tenant's prefix."""
    prefix = f"orgs/{org_id}/"
    if project_id is not None:
        prefix += f"projects/{project_id}/"
        if env_id is not None:
            prefix += f"environments/{env_id}/"
    return prefix


class PurgeBlobs(JobPayload):
    job_type = "purge_blobs"
    max_attempts = 10
    prefix: str


async def purge_blobs(context: JobContext, payload: PurgeBlobs) -> None:
    # Idempotent: deleting what is already gone deletes nothing.
    removed = await context.store.delete_prefix(payload.prefix)
    context.log.info("purged blobs", extra={"prefix": payload.prefix, "removed": removed})


def register(registry: JobRegistry) -> None:
    registry.register(JobType(PurgeBlobs, purge_blobs))
