"""Job types used by the queue and worker tests, loadable by a real worker process through
BYTEOR_CLOUD_JOB_MODULES=helpers.job_handlers (with tests/ on PYTHONPATH).

Effects go to test-owned tables (see `create_effect_tables`), never to the app's schema.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

from sqlalchemy import text

from byteor_cloud.db.session import Database
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobPayload, JobRegistry, JobType, PermanentJobError

EFFECT_TABLES = {
    # One row per job, whatever the number of attempts: the idempotent effect.
    "job_effects": "CREATE TABLE job_effects (job_id VARCHAR(26) PRIMARY KEY, attempt INTEGER)",
    # One row per attempt that started: shows whether two workers ran one job at once.
    "job_starts": (
        "CREATE TABLE job_starts (job_id VARCHAR(26) NOT NULL, pid INTEGER NOT NULL, "
        "started_at FLOAT NOT NULL)"
    ),
}


async def create_effect_tables(database: Database) -> None:
    async with database.engine.begin() as connection:
        for ddl in EFFECT_TABLES.values():
            await connection.execute(text(ddl))


async def drop_effect_tables(database: Database) -> None:
    async with database.engine.begin() as connection:
        for name in EFFECT_TABLES:
            await connection.execute(text(f"DROP TABLE IF EXISTS {name}"))


async def _record_start(context: JobContext) -> None:
    async with context.database.transaction() as session:
        await session.execute(
            text("INSERT INTO job_starts (job_id, pid, started_at) VALUES (:id, :pid, :at)"),
            {"id": context.job_id, "pid": os.getpid(), "at": time.time()},
        )


async def _record_effect(context: JobContext) -> None:
    async with context.database.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO job_effects (job_id, attempt) VALUES (:id, :attempt) "
                "ON CONFLICT (job_id) DO NOTHING"
            ),
            {"id": context.job_id, "attempt": context.attempt},
        )


class EffectJob(JobPayload):
    job_type = "test_effect"
    lease = timedelta(seconds=2)
    max_attempts = 25
    backoff_base_s = 0.05
    sleep_ms: int = 0


async def run_effect(context: JobContext, payload: EffectJob) -> None:
    await _record_start(context)
    await asyncio.sleep(payload.sleep_ms / 1000)
    await _record_effect(context)


class FlakyJob(JobPayload):
    job_type = "test_flaky"
    max_attempts = 3
    backoff_base_s = 0.05
    fail_times: int
    permanent: bool = False


async def run_flaky(context: JobContext, payload: FlakyJob) -> None:
    await _record_start(context)
    if payload.permanent:
        raise PermanentJobError("this can never work")
    if context.attempt <= payload.fail_times:
        raise RuntimeError(f"planned failure {context.attempt}")
    await _record_effect(context)


class SlowJob(JobPayload):
    job_type = "test_slow"
    lease = timedelta(seconds=1)
    sleep_s: float


async def run_slow(context: JobContext, payload: SlowJob) -> None:
    await _record_start(context)
    await asyncio.sleep(payload.sleep_s)
    await _record_effect(context)


def register(registry: JobRegistry) -> None:
    registry.register(JobType(EffectJob, run_effect))
    registry.register(JobType(FlakyJob, run_flaky))
    registry.register(JobType(SlowJob, run_slow))
