"""The spec_ingest job: store spec.kv, render the picture and the diff, mark ready."""

from __future__ import annotations

import json

from sqlalchemy import select

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.principal import SYSTEM
from byteor_cloud.db.models.authoring import Version
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PermanentJobError
from byteor_cloud.spec import spec_hash_of_text
from byteor_cloud.tenancy.jobs import blob_prefix


class SpecIngest(JobPayload):
    job_type = "spec_ingest"
    version_id: str


def version_prefix(version: Version) -> str:
    return f"{blob_prefix(version.org_id, version.project_id)}versions/{version.id}/"


async def ingest(context: JobContext, payload: SpecIngest) -> None:
    """Idempotent: blobs are overwritten with the same bytes; a ready version is left."""
    from byteor_cloud.authoring.versions import render_diff, render_svg

    async with context.database.transaction(readonly=True) as session:
        version = await session.get(Version, payload.version_id)
        if version is None or version.status == "ready":
            return
        previous = await session.scalar(
            select(Version)
            .where(Version.project_id == version.project_id, Version.number < version.number)
            .order_by(Version.number.desc())
            .limit(1)
        )
    spec_bytes = version.spec_kv.encode()
    if spec_hash_of_text(spec_bytes) != version.spec_hash:
        raise PermanentJobError("stored spec.kv does not match its hash")
    prefix = version_prefix(version)
    await context.store.put_bytes(prefix + "spec.kv", spec_bytes, content_type="text/plain")
    await context.store.put_bytes(
        prefix + "graph.svg", render_svg(version).encode(), content_type="image/svg+xml"
    )
    diff_key = None
    if previous is not None:
        diff_key = prefix + "diff-previous.json"
        document = json.dumps(render_diff(previous, version).as_dict()).encode()
        await context.store.put_bytes(diff_key, document, content_type="application/json")
    async with context.database.transaction() as session:
        current = await session.get_one(Version, version.id)
        if current.status == "ready":
            return
        current.spec_kv_key = prefix + "spec.kv"
        current.graph_svg_key = prefix + "graph.svg"
        current.diff_key = diff_key
        current.status = "ready"
        current.ready_at = utcnow()
        await audit.record(
            session,
            SYSTEM,
            "version.ready",
            AuditTarget(current.org_id, "version", current.id, project_id=current.project_id),
            details={"number": current.number, "spec_hash": current.spec_hash},
        )


def register(registry: JobRegistry) -> None:
    registry.register(JobType(SpecIngest, ingest))
