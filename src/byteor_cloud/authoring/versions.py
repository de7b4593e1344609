"""Versions: compiled in the request, numbered per project, immutable, ingested by a job."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.authoring.drafts import compile_draft, get_draft
from byteor_cloud.authoring.jobs import SpecIngest
from byteor_cloud.core.errors import InvalidInput, NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.authoring import Version
from byteor_cloud.db.models.tenancy import Project
from byteor_cloud.db.pagination import paginate
from byteor_cloud.jobs.queue import enqueue
from byteor_cloud.spec import CompileReport, diff, svg
from byteor_cloud.spec import decode_spec as decode


class CompileFailed(InvalidInput):
    default_code = "compile_failed"


@dataclass(frozen=True)
class VersionResult:
    version: Version
    created: bool


async def create_version(session: AsyncSession, scope: Scope, draft_id: str) -> VersionResult:
    """Compile the draft's current revision; a known spec hash returns the existing version.

    The project row is locked for the numbering (FOR UPDATE on PostgreSQL, the single
    writer on SQLite), so concurrent creations get gap-free numbers and identical contents
    one version.
    """
    draft = await get_draft(session, scope, draft_id)
    report = compile_draft(draft)
    if not report.ok:
        raise CompileFailed(
            "the plan has errors; no version was created",
            details={"diagnostics": [d.as_dict() for d in report.diagnostics]},
        )
    assert report.spec_hash is not None
    assert report.spec_kv is not None
    await session.scalar(select(Project.id).where(Project.id == draft.project_id).with_for_update())
    existing = await session.scalar(
        select(Version).where(
            Version.project_id == draft.project_id, Version.spec_hash == report.spec_hash
        )
    )
    if existing is not None:
        return VersionResult(existing, created=False)
    number = (
        await session.scalar(
            select(func.coalesce(func.max(Version.number), 0)).where(
                Version.project_id == draft.project_id
            )
        )
        or 0
    ) + 1
    version = _new_version(scope, draft.id, draft.revision, number, report, draft.plan)
    session.add(version)
    await session.flush()
    await enqueue(session, SpecIngest(version_id=version.id))
    await audit.record(
        session,
        scope.principal,
        "version.create",
        AuditTarget(scope.org_id, "version", version.id, project_id=version.project_id),
        details={
            "number": number,
            "spec_hash": version.spec_hash,
            "draft_id": draft.id,
            "draft_revision": draft.revision,
        },
    )
    return VersionResult(version, created=True)


def _new_version(
    scope: Scope,
    draft_id: str,
    revision: int,
    number: int,
    report: CompileReport,
    plan: dict[str, object],
) -> Version:
    assert scope.project_id is not None
    assert report.spec_kv is not None
    labels = plan.get("labels")
    description = plan.get("description")
    return Version(
        org_id=scope.org_id,
        project_id=scope.project_id,
        number=number,
        name=str(plan.get("name") or f"v{number}")[:100],
        status="ingesting",
        spec_hash=report.spec_hash,
        target=str(report.spec.model) if report.spec is not None else "single_ring",
        capabilities=list(report.capabilities),
        compile_report={"diagnostics": [d.as_dict() for d in report.diagnostics]},
        spec_kv=report.spec_kv,
        source_draft_id=draft_id,
        source_revision=revision,
        description=description if isinstance(description, str) else None,
        labels=labels if isinstance(labels, dict) else {},
        created_by=scope.principal.user_id,
    )


async def list_versions(
    session: AsyncSession, scope: Scope, *, page: PageRequest, spec_hash: str | None = None
) -> Page[Version]:
    statement = select(Version).where(
        Version.org_id == scope.org_id, Version.project_id == scope.project_id
    )
    if spec_hash is not None:
        statement = statement.where(Version.spec_hash == spec_hash)
    return await paginate(session, statement, sort_key=[Version.number], page=page, descending=True)


async def get_version(session: AsyncSession, scope: Scope, version_id: str) -> Version:
    version = await session.get(Version, version_id) if is_id(version_id) else None
    if version is None or version.project_id != scope.project_id:
        raise NotFound("version not found", code="version_not_found")
    return version


def render_svg(version: Version) -> str:
    return svg.to_svg(decode(version.spec_kv))


def render_diff(old: Version, new: Version) -> diff.SpecDiff:
    return diff.diff_specs(
        decode(old.spec_kv),
        decode(new.spec_kv),
        old_label=f"v{old.number}",
        new_label=f"v{new.number}",
    )
