"""`/api/v1/orgs/{org_id}/audit`: the org's audit log (JSON pages or NDJSON stream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from byteor_cloud.api.auth import scoped
from byteor_cloud.api.deps import DbSession, PageParams, get_database
from byteor_cloud.api.schemas import PageOut, ResponseModel
from byteor_cloud.audit import service as audit
from byteor_cloud.core.permissions import Permission
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.audit import AuditRecord

router = APIRouter(prefix="/orgs/{org_id}/audit", tags=["audit"])
ReadAudit = Annotated[Scope, Depends(scoped(Permission.manage_org_memberships))]
NDJSON = "application/x-ndjson"


class AuditRecordOut(ResponseModel):
    seq: int
    at: str
    actor: dict[str, Any]
    action: str
    resource_scope: dict[str, Any]
    resource: dict[str, Any]
    outcome: str
    details: dict[str, Any]
    request_id: str | None
    prev_hash: str
    hash: str


class VerifyOut(ResponseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def render(record: AuditRecord) -> dict[str, Any]:
    return {**audit.body_of(record), "hash": record.hash}


def filters(
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    project_id: Annotated[str | None, Query(max_length=26)] = None,
    environment_id: Annotated[str | None, Query(max_length=26)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
) -> audit.AuditFilters:
    return audit.AuditFilters(
        action,
        actor_id,
        resource_type,
        resource_id,
        project_id,
        environment_id,
        outcome,
        since,
        until,
    )


Filters = Annotated[audit.AuditFilters, Depends(filters)]


@router.get(
    "",
    summary="Audit records, newest first (Accept: application/x-ndjson streams all, oldest first)",
    responses={200: {"content": {NDJSON: {}}}},
    response_model=PageOut[AuditRecordOut],
)
async def list_audit(
    request: Request, session: DbSession, scope: ReadAudit, page: PageParams, chosen: Filters
) -> Any:
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_stream(request, scope.org_id, chosen), media_type=NDJSON)
    result = await audit.list_records(session, org_id=scope.org_id, filters=chosen, page=page)
    return {"items": [render(r) for r in result.items], "next_cursor": result.next_cursor}


async def _stream(
    request: Request, org_id: str, chosen: audit.AuditFilters
) -> AsyncIterator[bytes]:
    # The stream outlives the request's transaction: it reads in its own, batch by batch.
    async with get_database(request).transaction(readonly=True) as session:
        async for record in audit.export_records(session, org_id=org_id, filters=chosen):
            yield (json.dumps(render(record), separators=(",", ":")) + "\n").encode()


@router.get("/verify", summary="Check the org's hash chain end to end")
async def verify_audit(session: DbSession, scope: ReadAudit) -> VerifyOut:
    result = await audit.verify_chain(session, org_id=scope.org_id)
    return VerifyOut(
        ok=result.ok,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
    )
