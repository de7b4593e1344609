"""Writing audit records and security events; reading, exporting and verifying the chain."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit.chain import (
    GENESIS,
    MAX_DETAILS_CHARS,
    ChainVerifier,
    VerifyResult,
    canonical_json,
    record_hash,
    redact,
)
from byteor_cloud.core.clock import rfc3339, utcnow
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.principal import Principal
from byteor_cloud.db.models.audit import AuditChainHead, AuditRecord, SecurityEvent
from byteor_cloud.db.pagination import paginate
from byteor_cloud.logs import request_id_var

log = logging.getLogger(__name__)

EXPORT_BATCH = 500


@dataclass(frozen=True)
class AuditTarget:
    """What an audit record is about: the resource and where it sits in the tree."""

    org_id: str
    resource_type: str
    resource_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None

    @classmethod
    def in_environment(cls, resource_type: str, row: EnvironmentRow) -> AuditTarget:
        """A resource that lives in an environment (its row carries the tenancy path)."""
        return cls(
            row.org_id,
            resource_type,
            row.id,
            project_id=row.project_id,
            environment_id=row.environment_id,
        )


class EnvironmentRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def org_id(self) -> str: ...
    @property
    def project_id(self) -> str: ...
    @property
    def environment_id(self) -> str: ...


def body_of(record: AuditRecord) -> dict[str, Any]:
    """The hashed content of a record (everything but `hash`), as the API shows it."""
    return {
        "seq": record.seq,
        "at": rfc3339(record.at),
        "actor": {"type": record.actor_type, "id": record.actor_id, "name": record.actor_name},
        "action": record.action,
        "resource_scope": {
            "org_id": record.org_id,
            "project_id": record.project_id,
            "environment_id": record.environment_id,
        },
        "resource": {"type": record.resource_type, "id": record.resource_id},
        "outcome": record.outcome,
        "details": record.details,
        "request_id": record.request_id,
        "prev_hash": record.prev_hash,
    }


async def start_chain(session: AsyncSession, org_id: str) -> None:
    """Create an org's chain head; called in the transaction that creates the org."""
    session.add(AuditChainHead(org_id=org_id, last_seq=0, last_hash=GENESIS))
    await session.flush()


async def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    target: AuditTarget,
    *,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append a record to the org's chain in the caller's transaction.

    The chain head row is locked (FOR UPDATE on PostgreSQL; SQLite has one writer), so
    concurrent changes in one org get consecutive sequence numbers and never fork it. If
    this write fails, the caller's change fails with it.
    """
    head = await session.scalar(
        select(AuditChainHead).where(AuditChainHead.org_id == target.org_id).with_for_update()
    )
    if head is None:
        raise LookupError(f"no audit chain for org {target.org_id}")
    safe_details = redact(details or {})
    if len(canonical_json(safe_details)) > MAX_DETAILS_CHARS:
        safe_details = {"truncated": True}
    entry = AuditRecord(
        org_id=target.org_id,
        seq=head.last_seq + 1,
        at=utcnow(),
        actor_type=principal.actor_type,
        actor_id=principal.actor_id,
        actor_name=principal.name,
        action=action,
        project_id=target.project_id,
        environment_id=target.environment_id,
        resource_type=target.resource_type,
        resource_id=target.resource_id,
        outcome=outcome,
        details=safe_details,
        request_id=request_id_var.get(),
        prev_hash=head.last_hash,
        hash="",
    )
    entry.hash = record_hash(entry.prev_hash, body_of(entry))
    head.last_seq = entry.seq
    head.last_hash = entry.hash
    session.add(entry)
    await session.flush()
    return entry


async def security_event(
    session: AsyncSession,
    kind: str,
    *,
    principal: Principal | None = None,
    client_address: str | None = None,
    method: str | None = None,
    path: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Log a failure by a non-member or an unauthenticated caller (instance level)."""
    session.add(
        SecurityEvent(
            kind=kind,
            actor_type=principal.actor_type if principal else None,
            actor_id=principal.actor_id if principal else None,
            client_address=client_address,
            method=method,
            path=(path or "")[:500] or None,
            details=redact(details or {}),
            request_id=request_id_var.get(),
        )
    )
    await session.flush()


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    actor_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(org_id: str, filters: AuditFilters) -> Any:
    statement = select(AuditRecord).where(AuditRecord.org_id == org_id)
    for column, value in (
        (AuditRecord.action, filters.action),
        (AuditRecord.actor_id, filters.actor_id),
        (AuditRecord.resource_type, filters.resource_type),
        (AuditRecord.resource_id, filters.resource_id),
        (AuditRecord.project_id, filters.project_id),
        (AuditRecord.environment_id, filters.environment_id),
        (AuditRecord.outcome, filters.outcome),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if filters.since is not None:
        statement = statement.where(AuditRecord.at >= filters.since)
    if filters.until is not None:
        statement = statement.where(AuditRecord.at < filters.until)
    return statement


async def list_records(
    session: AsyncSession, *, org_id: str, filters: AuditFilters, page: PageRequest
) -> Page[AuditRecord]:
    """An org's records, newest first."""
    return await paginate(
        session,
        _filtered(org_id, filters),
        sort_key=[AuditRecord.seq],
        page=page,
        descending=True,
    )


async def export_records(
    session: AsyncSession, *, org_id: str, filters: AuditFilters
) -> AsyncIterator[AuditRecord]:
    """Every matching record, oldest first, fetched in keyset batches (bounded memory)."""
    after = 0
    while True:
        batch = (
            await session.scalars(
                _filtered(org_id, filters)
                .where(AuditRecord.seq > after)
                .order_by(AuditRecord.seq)
                .limit(EXPORT_BATCH)
            )
        ).all()
        for item in batch:
            yield item
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].seq


async def verify_chain(session: AsyncSession, *, org_id: str) -> VerifyResult:
    """Walk the org's whole chain in batches and check every link."""
    verifier = ChainVerifier()
    async for item in export_records(session, org_id=org_id, filters=AuditFilters()):
        if not verifier.feed(item.seq, item.prev_hash, item.hash, body_of(item)):
            break
    head = await session.get(AuditChainHead, org_id)
    return verifier.result(head_seq=head.last_seq if head is not None else 0)
