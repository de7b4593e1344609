"""More queue guarantees: unique keys under concurrency, a poison job dead-lettered after
exactly its budget with backoff inside the jitter bounds while healthy jobs flow, and two
worker processes never running one attempt twice."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from sqlalchemy import select, text

from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.session import Database
from byteor_cloud.jobs import queue
from helpers.databases import TestDatabase
from helpers.job_handlers import EffectJob, FlakyJob
from helpers.processes import start_worker_process
from helpers.queue_state import count_rows, wait_for_states


async def test_fifty_concurrent_enqueues_with_one_key_leave_one_pending_job(
    effects: Database,
) -> None:
    async def enqueue_once() -> str | None:
        async with effects.transaction() as session:
            return await queue.enqueue(session, EffectJob(), dedupe_key="one-key")

    results = await asyncio.gather(*(enqueue_once() for _ in range(50)))
    assert len([r for r in results if r is not None]) == 1
    async with effects.transaction(readonly=True) as session:
        pending = (await session.scalars(select(Job).where(Job.dedupe_key == "one-key"))).all()
    assert len(pending) == 1


async def test_a_poison_job_is_dead_lettered_after_its_budget_with_bounded_backoff(
    effects: Database, start_worker
) -> None:
    async with effects.transaction() as session:
        poison = await queue.enqueue(session, FlakyJob(fail_times=99))
        healthy = [await queue.enqueue(session, EffectJob(sleep_ms=5)) for _ in range(20)]
    async with start_worker(concurrency=2):
        states = await wait_for_states(
            effects,
            lambda s: s[poison] == "dead_letter" and all(s[j] == "succeeded" for j in healthy),
        )
    assert all(states[j] == "succeeded" for j in healthy)
    async with effects.transaction(readonly=True) as session:
        starts = (
            (
                await session.execute(
                    text(
                        "SELECT started_at FROM job_starts WHERE job_id = :id ORDER BY started_at"
                    ),
                    {"id": poison},
                )
            )
            .scalars()
            .all()
        )
        job = await session.get_one(Job, poison)
    assert len(starts) == FlakyJob.max_attempts == job.attempts
    for attempt, (earlier, later) in enumerate(itertools.pairwise(starts), start=1):
        step = FlakyJob.backoff_base_s * 2 ** (attempt - 1)
        # Full jitter between half a step and a step, plus the worker's poll slack.
        assert step / 2 <= later - earlier <= step + 1.0


@pytest.mark.slow
async def test_two_worker_processes_never_run_one_attempt_twice(
    test_db: TestDatabase, effects: Database, tmp_path: Path
) -> None:
    async with effects.transaction() as session:
        ids = [await queue.enqueue(session, EffectJob(sleep_ms=20)) for _ in range(200)]
    workers = [start_worker_process(test_db.env(), tmp_path) for _ in range(2)]
    try:
        await wait_for_states(
            effects, lambda s: all(s.get(j) == "succeeded" for j in ids), within_s=180
        )
    finally:
        for worker in workers:
            worker.stop()
    assert await count_rows(effects, "job_starts") == len(ids)  # one start per job
    async with effects.transaction(readonly=True) as session:
        pids = set((await session.execute(text("SELECT DISTINCT pid FROM job_starts"))).scalars())
    assert len(pids) == 2  # both processes took work
