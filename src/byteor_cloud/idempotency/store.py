"""The SQL of idempotency records: claim a key, complete or release it, look it up, expire.

A record is "in progress" while `status_code` is NULL and "completed" once the response
is stored. Each function works in the caller's transaction; the middleware gives every
step a short transaction of its own, so no lock is held while the app handles the request.

The claim is one `INSERT … ON CONFLICT DO NOTHING` on the `(credential, key)` unique
constraint: among any number of concurrent requests with one key exactly one inserts the
row (on PostgreSQL the others wait for its transaction, then see its row; on SQLite the
write transaction is `BEGIN IMMEDIATE`, so claims run one at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.ids import new_id
from byteor_cloud.db.dialect import insert_for
from byteor_cloud.db.models.idempotency import IdempotencyRecord
from byteor_cloud.idempotency.rules import ABANDONED_AFTER, RETENTION

# A conflicting record can vanish between the INSERT and the SELECT (its request failed
# and released it); the claim then tries again, a bounded number of times.
_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class Claimed:
    """This request owns the key: run it, then `complete` or `release` the record."""

    record_id: str


@dataclass(frozen=True)
class Found:
    """Another request owns the key (or did, and its response is stored)."""

    request_hash: str
    status_code: int | None  # None: still in progress
    response: bytes | None
    encrypted: bool


def _record(credential: str, key: str) -> Any:
    return and_(IdempotencyRecord.credential == credential, IdempotencyRecord.key == key)


def _live(now: datetime) -> Any:
    """Records a new request with the same key must respect (not expired, not abandoned)."""
    return and_(
        IdempotencyRecord.expires_at > now,
        or_(
            IdempotencyRecord.status_code.is_not(None),
            IdempotencyRecord.created_at > now - ABANDONED_AFTER,
        ),
    )


async def claim(
    session: AsyncSession, *, credential: str, key: str, request_hash: str, now: datetime
) -> Claimed | Found:
    """Take the key for this request, or report the record that holds it."""
    # An expired or abandoned record is replaced: the key is free again.
    await session.execute(delete(IdempotencyRecord).where(_record(credential, key), ~_live(now)))
    for _ in range(_CLAIM_ATTEMPTS):
        statement = (
            insert_for(session)(IdempotencyRecord)
            .values(
                id=new_id(),
                credential=credential,
                key=key,
                request_hash=request_hash,
                status_code=None,
                response=None,
                encrypted=False,
                created_at=now,
                expires_at=now + RETENTION,
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.id)
        )
        inserted: str | None = (await session.execute(statement)).scalar_one_or_none()
        if inserted is not None:
            return Claimed(inserted)
        found = await lookup(session, credential=credential, key=key, now=now)
        if found is not None:
            return found
    raise RuntimeError("idempotency key claim kept losing races; giving up")


async def lookup(
    session: AsyncSession, *, credential: str, key: str, now: datetime
) -> Found | None:
    """The live record of `key` for `credential`, if any."""
    row = (
        await session.execute(
            select(
                IdempotencyRecord.request_hash,
                IdempotencyRecord.status_code,
                IdempotencyRecord.response,
                IdempotencyRecord.encrypted,
            ).where(_record(credential, key), _live(now))
        )
    ).one_or_none()
    if row is None:
        return None
    return Found(row.request_hash, row.status_code, row.response, row.encrypted)


async def complete(
    session: AsyncSession, record_id: str, *, status_code: int, response: bytes, encrypted: bool
) -> bool:
    """Store the response of the request that claimed `record_id`; False if the record is
    gone (taken over after being presumed abandoned)."""
    result = await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.status_code.is_(None))
        .values(status_code=status_code, response=response, encrypted=encrypted)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def release(session: AsyncSession, record_id: str) -> None:
    """Drop an in-progress claim, so that a retry with the key runs the request again."""
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id, IdempotencyRecord.status_code.is_(None)
        )
    )


async def delete_expired(session: AsyncSession, *, now: datetime) -> int:
    """Remove records past their retention; returns how many."""
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
