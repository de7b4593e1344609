"""Signing-key queries; every one starts from an org id the caller was authorized for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.models.tenancy import Environment, Organization
from byteor_cloud.signing.rules import KeyStatus


async def lock_org(session: AsyncSession, org_id: str) -> None:
    """Serialize key changes within one org (FOR UPDATE on PostgreSQL; SQLite has one
    writer). Locking the org row rather than the active key matters: after a concurrent
    rotation commits, the next statement must see the org's new set of keys, which a lock
    on the superseded row would not give."""
    await session.execute(
        select(Organization.id).where(Organization.id == org_id).with_for_update()
    )


async def keys_of(
    session: AsyncSession, org_id: str, statuses: Iterable[KeyStatus]
) -> Sequence[SigningKey]:
    """The org's keys in the given states, oldest first (kids are time-ordered)."""
    statement = (
        select(SigningKey)
        .where(SigningKey.org_id == org_id, SigningKey.status.in_([s.value for s in statuses]))
        .order_by(SigningKey.id)
    )
    return (await session.scalars(statement)).all()


async def get(session: AsyncSession, org_id: str, kid: str) -> SigningKey | None:
    return await session.scalar(
        select(SigningKey).where(SigningKey.org_id == org_id, SigningKey.id == kid)
    )


async def active_key(session: AsyncSession, org_id: str) -> SigningKey | None:
    return await session.scalar(
        select(SigningKey).where(
            SigningKey.org_id == org_id, SigningKey.status == KeyStatus.active.value
        )
    )


async def longest_heartbeat_interval_s(session: AsyncSession, org_id: str) -> int | None:
    """The longest heartbeat interval of the org's environments (None without any)."""
    value = await session.scalar(
        select(func.max(Environment.heartbeat_interval_s)).where(Environment.org_id == org_id)
    )
    return int(value) if value is not None else None


async def orgs_with_due_keys(session: AsyncSession, *, now: datetime) -> list[str]:
    """Orgs with a `next` key due to activate or a `retiring` key past its grace period."""
    statement = (
        select(SigningKey.org_id)
        .where(
            or_(
                and_(SigningKey.status == KeyStatus.next.value, SigningKey.activate_at <= now),
                and_(SigningKey.status == KeyStatus.retiring.value, SigningKey.not_after <= now),
            )
        )
        .distinct()
        .order_by(SigningKey.org_id)
    )
    return list((await session.scalars(statement)).all())
