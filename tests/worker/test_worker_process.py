"""The worker as a real process: crash safety under SIGKILL, its own health and metrics
endpoints, and graceful shutdown."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.session import Database
from byteor_cloud.jobs import queue
from helpers.databases import TestDatabase
from helpers.job_handlers import EffectJob
from helpers.processes import start_worker_process
from helpers.queue_state import count_rows, wait_for_states

pytestmark = pytest.mark.slow

JOBS = 200
KILLS = 6


async def test_every_job_succeeds_exactly_once_while_the_worker_is_killed(
    test_db: TestDatabase, effects: Database, tmp_path: Path
) -> None:
    rng = random.Random(20261204)
    async with effects.transaction() as session:
        ids = [
            await queue.enqueue(session, EffectJob(sleep_ms=rng.randint(40, 120)))
            for _ in range(JOBS)
        ]
    env = {**test_db.env(), "BYTEOR_CLOUD_WORKER_CONCURRENCY": "4"}
    kills = 0
    while kills < KILLS:
        worker = start_worker_process(env, tmp_path, wait=False)
        started_before = await count_rows(effects, "job_starts")
        # Kill only once this incarnation is mid-flow: it has started jobs of its own
        # (a loaded machine can take many seconds to start a Python process).
        deadline = time.monotonic() + 90
        while await count_rows(effects, "job_starts") <= started_before:
            assert time.monotonic() < deadline, f"worker started no job:\n{worker.log()}"
            await asyncio.sleep(0.02)
        await asyncio.sleep(rng.uniform(0.0, 0.4))
        worker.stop(signal.SIGKILL)
        kills += 1
    survivor = start_worker_process(env, tmp_path)
    try:
        states = await wait_for_states(
            effects,
            lambda s: all(s.get(job_id) == "succeeded" for job_id in ids),
            within_s=180,
        )
    finally:
        survivor.stop()
    # Only the test's jobs: built-in periodic jobs (sweeps) run in the same workers.
    assert {states[job_id] for job_id in ids} == {"succeeded"}
    assert await count_rows(effects, "job_effects") == JOBS
    for job_id in ids:
        assert await count_rows(effects, "job_effects", job_id) == 1
    async with effects.transaction(readonly=True) as session:
        attempts = (await session.scalars(select(Job.attempts).where(Job.id.in_(ids)))).all()
    # The kills really interrupted running jobs, which other incarnations then finished.
    assert max(attempts) >= 2
    assert await count_rows(effects, "job_starts") > JOBS


async def test_worker_mode_serves_health_and_metrics_and_drains_on_sigterm(
    test_db: TestDatabase, effects: Database, tmp_path: Path
) -> None:
    env = {**test_db.env(), "BYTEOR_CLOUD_WORKER_SHUTDOWN_GRACE_S": "0.5"}
    worker = start_worker_process(env, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=worker.base_url, timeout=5) as http:
            await _check_worker_endpoints(http, effects)
        # A long job is running when SIGTERM arrives: it is handed back, not lost.
        async with effects.transaction() as session:
            slow = await queue.enqueue(session, EffectJob(sleep_ms=60_000))
        await wait_for_states(effects, lambda s: s.get(slow) == "running")
    finally:
        worker.stop(signal.SIGTERM, timeout=30)
    async with effects.transaction(readonly=True) as session:
        job = await session.get_one(Job, slow)
    assert (job.state, job.attempts) == ("queued", 0)
    assert "worker stopped" in worker.log()


async def _check_worker_endpoints(http: httpx.AsyncClient, effects: Database) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "object_store": "ok", "worker": "ok"}
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    async with effects.transaction() as session:
        quick = await queue.enqueue(session, EffectJob(sleep_ms=10))
    await wait_for_states(effects, lambda s: s.get(quick) == "succeeded")
    metrics = (await http.get("/metrics")).text
    assert 'byteor_job_attempts_total{outcome="succeeded",type="test_effect"} 1.0' in metrics
    assert "byteor_job_queue_depth" in metrics
    assert (await http.get("/api/v1/openapi.json")).status_code == 404
