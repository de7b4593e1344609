"""Drafts: mutable plan documents under a project; an invalid plan is still a valid draft."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import NotFound, PayloadTooLarge
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.authoring import Draft
from byteor_cloud.db.pagination import paginate
from byteor_cloud.spec import MAX_DOCUMENT_BYTES, CompileReport, compile_plan
from byteor_cloud.tenancy.service import check_revision


def _bounded(plan: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(plan, ensure_ascii=False).encode())
    if size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"plan documents are limited to {MAX_DOCUMENT_BYTES} bytes",
            code="plan_too_large",
            details={"field": "plan", "size": size},
        )
    return plan


def _target(scope: Scope, draft: Draft) -> AuditTarget:
    return AuditTarget(scope.org_id, "draft", draft.id, project_id=draft.project_id)


async def create_draft(
    session: AsyncSession, scope: Scope, *, name: str, target: str, plan: dict[str, Any]
) -> Draft:
    """A new draft; the plan is stored as given, valid or not."""
    assert scope.project_id is not None
    draft = Draft(
        org_id=scope.org_id,
        project_id=scope.project_id,
        name=name,
        target=target,
        plan=_bounded(plan),
        updated_at=utcnow(),
        updated_by=scope.principal.user_id,
    )
    session.add(draft)
    await session.flush()
    await audit.record(
        session,
        scope.principal,
        "draft.create",
        _target(scope, draft),
        details={"name": name, "target": target},
    )
    return draft


async def list_drafts(session: AsyncSession, scope: Scope, *, page: PageRequest) -> Page[Draft]:
    statement = select(Draft).where(
        Draft.org_id == scope.org_id, Draft.project_id == scope.project_id
    )
    return await paginate(session, statement, sort_key=[Draft.id], page=page, descending=True)


async def get_draft(session: AsyncSession, scope: Scope, draft_id: str) -> Draft:
    draft = await session.get(Draft, draft_id) if is_id(draft_id) else None
    if draft is None or draft.project_id != scope.project_id or draft.org_id != scope.org_id:
        raise NotFound("draft not found", code="draft_not_found")
    return draft


async def update_draft(
    session: AsyncSession,
    scope: Scope,
    draft_id: str,
    *,
    revision: int,
    name: str,
    target: str,
    plan: dict[str, Any],
) -> Draft:
    """Replace name, target and plan. Switching the target keeps the whole document, both
    target blocks included, so switching back restores the same spec."""
    draft = await get_draft(session, scope, draft_id)
    check_revision(draft.revision, revision)
    changed = [
        k for k, v in (("name", name), ("target", target), ("plan", plan)) if getattr(draft, k) != v
    ]
    draft.name, draft.target, draft.plan = name, target, _bounded(plan)
    draft.revision += 1
    draft.updated_at = utcnow()
    draft.updated_by = scope.principal.user_id
    await session.flush()
    await audit.record(
        session,
        scope.principal,
        "draft.update",
        _target(scope, draft),
        details={"changed": changed, "revision": draft.revision},
    )
    return draft


async def delete_draft(session: AsyncSession, scope: Scope, draft_id: str) -> None:
    draft = await get_draft(session, scope, draft_id)
    await audit.record(
        session,
        scope.principal,
        "draft.delete",
        _target(scope, draft),
        details={"name": draft.name},
    )
    await session.delete(draft)
    await session.flush()


def compile_draft(draft: Draft) -> CompileReport:
    """Compile the draft's plan for its target: the draft's `target` field decides which
    block counts, whatever the document says."""
    return compile_plan({**draft.plan, "target": draft.target})
