"""Reading the job queue's state from tests, and waiting for it to settle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import func, select, text

from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.session import Database


async def job_states(database: Database) -> dict[str, str]:
    async with database.transaction(readonly=True) as session:
        return dict((await session.execute(select(Job.id, Job.state))).all())


async def wait_for_states(
    database: Database, predicate: Callable[[dict[str, str]], bool], within_s: float = 60.0
) -> dict[str, str]:
    deadline = time.monotonic() + within_s
    while True:
        states = await job_states(database)
        if predicate(states):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"queue did not settle: {states}")
        await asyncio.sleep(0.05)


async def count_rows(database: Database, table: str, job_id: str | None = None) -> int:
    async with database.transaction(readonly=True) as session:
        query = f"SELECT count(*) FROM {table}"  # noqa: S608 - test-owned table names
        if job_id is None:
            return int((await session.execute(text(query))).scalar_one())
        result = await session.execute(text(query + " WHERE job_id = :id"), {"id": job_id})
        return int(result.scalar_one())


async def job_count(database: Database) -> int:
    async with database.transaction(readonly=True) as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)
