"""The hourly job deletes expired records and nothing else."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import select

from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.models.idempotency import IdempotencyRecord
from byteor_cloud.db.session import Database
from byteor_cloud.idempotency.jobs import IdempotencyCleanup, delete_expired_records
from byteor_cloud.jobs.catalog import build_registry
from byteor_cloud.jobs.context import JobContext
from helpers.databases import TestDatabase


def _record(key: str, *, expires_in: timedelta, status_code: int | None) -> IdempotencyRecord:
    now = utcnow()
    return IdempotencyRecord(
        id=new_id(),
        credential="c" * 64,
        key=key,
        request_hash="0" * 64,
        status_code=status_code,
        response=b"sealed" if status_code else None,
        encrypted=status_code is not None,
        created_at=now + expires_in - timedelta(hours=24),
        expires_at=now + expires_in,
    )


async def test_cleanup_deletes_only_expired_records(
    test_db: TestDatabase, database: Database, app: FastAPI
) -> None:
    async with database.transaction() as session:
        session.add_all(
            [
                _record("expired", expires_in=-timedelta(minutes=1), status_code=201),
                _record("expired-running", expires_in=-timedelta(hours=2), status_code=None),
                _record("live", expires_in=timedelta(hours=1), status_code=201),
                _record("live-running", expires_in=timedelta(hours=23), status_code=None),
            ]
        )
    context = JobContext(
        database=database,
        settings=test_db.settings(),
        store=app.state.store,
        job_id=new_id(),
        job_type=IdempotencyCleanup.job_type,
        attempt=1,
    )
    await delete_expired_records(context, IdempotencyCleanup())
    await delete_expired_records(context, IdempotencyCleanup())  # a re-run is harmless
    async with database.transaction(readonly=True) as session:
        left = set((await session.scalars(select(IdempotencyRecord.key))).all())
    assert left == {"live", "live-running"}


def test_cleanup_is_registered_to_run_hourly(test_db: TestDatabase) -> None:
    registry = build_registry(test_db.settings())
    assert IdempotencyCleanup.job_type in registry.names
    [periodic] = [p for p in registry.periodic if p.job_type == IdempotencyCleanup.job_type]
    assert periodic.period == timedelta(hours=1)
