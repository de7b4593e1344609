"""The queue on both databases: transactional enqueue, retries, dead letters, dedupe,
leases and renewal, periodic jobs, release on shutdown, admin retry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from byteor_cloud.core.errors import InvalidState, NotFound
from byteor_cloud.db.models.jobs import Job
from byteor_cloud.db.session import Database
from byteor_cloud.jobs import admin, queue
from byteor_cloud.jobs.registry import JobRegistry, JobType, PeriodicJob
from helpers.job_handlers import EffectJob, FlakyJob, SlowJob, run_effect
from helpers.queue_state import count_rows, job_count, job_states, wait_for_states


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(
    effects: Database, start_worker
) -> None:
    async def failing_change() -> None:
        async with effects.transaction() as session:
            await queue.enqueue(session, EffectJob())
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with effects.transaction() as session:
        committed = await queue.enqueue(session, EffectJob())
    async with start_worker():
        states = await wait_for_states(effects, lambda s: s.get(committed) == "succeeded")
    assert list(states) == [committed]
    assert await count_rows(effects, "job_starts") == 1
    assert await count_rows(effects, "job_effects", committed) == 1


async def test_failures_retry_with_backoff_then_succeed(effects: Database, start_worker) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, FlakyJob(fail_times=2))
    async with start_worker():
        await wait_for_states(effects, lambda s: s[job_id] == "succeeded")
    async with effects.transaction(readonly=True) as session:
        job = await session.get_one(Job, job_id)
    assert job.attempts == 3
    assert job.last_error == "RuntimeError: planned failure 2"
    assert await count_rows(effects, "job_starts", job_id) == 3


async def test_a_spent_budget_dead_letters_and_an_admin_retry_revives_it(
    effects: Database, start_worker
) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, FlakyJob(fail_times=3))
    async with start_worker():
        await wait_for_states(effects, lambda s: s[job_id] == "dead_letter")
        assert await count_rows(effects, "job_starts", job_id) == FlakyJob.max_attempts
        async with effects.transaction() as session:
            with pytest.raises(NotFound):
                await admin.retry_job(session, job_id="01ARZ3NDEKTSV4RRFFQ69G5FAV")
        # The budget is fresh; attempt 1 of the new budget fails again, 2 and 3 too...
        async with effects.transaction() as session:
            revived = await admin.retry_job(session, job_id=job_id)
            assert (revived.state, revived.attempts) == ("queued", 0)
        await wait_for_states(effects, lambda s: s[job_id] == "dead_letter")
    assert await count_rows(effects, "job_starts", job_id) == 2 * FlakyJob.max_attempts


async def test_retrying_a_job_that_is_not_dead_is_a_conflict(effects: Database) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, EffectJob())
    async with effects.transaction() as session:
        with pytest.raises(InvalidState) as caught:
            await admin.retry_job(session, job_id=job_id)
    assert caught.value.code == "job_not_retryable"


async def test_a_permanent_error_dead_letters_at_once(effects: Database, start_worker) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, FlakyJob(fail_times=0, permanent=True))
    async with start_worker():
        await wait_for_states(effects, lambda s: s[job_id] == "dead_letter")
    assert await count_rows(effects, "job_starts", job_id) == 1


async def test_a_duplicate_dedupe_key_is_a_no_op_while_pending(effects: Database) -> None:
    async with effects.transaction() as session:
        first = await queue.enqueue(session, EffectJob(), dedupe_key="bundle:1")
        second = await queue.enqueue(session, EffectJob(), dedupe_key="bundle:1")
        other = await queue.enqueue(session, EffectJob(), dedupe_key="bundle:2")
    assert first is not None
    assert second is None
    assert other is not None
    assert await job_count(effects) == 2
    async with effects.transaction() as session:
        job = await session.get_one(Job, first)
        job.state = "succeeded"
    async with effects.transaction() as session:
        again = await queue.enqueue(session, EffectJob(), dedupe_key="bundle:1")
    assert again is not None  # once finished, the key is free again


async def test_a_long_handler_keeps_its_lease_and_no_other_worker_takes_it(
    effects: Database, start_worker
) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, SlowJob(sleep_s=3.5))  # 3.5 leases long
    async with start_worker(concurrency=2), start_worker(concurrency=2):
        await wait_for_states(effects, lambda s: s[job_id] == "succeeded", within_s=30)
    assert await count_rows(effects, "job_starts", job_id) == 1
    async with effects.transaction(readonly=True) as session:
        assert (await session.get_one(Job, job_id)).attempts == 1


async def test_a_lapsed_lease_makes_the_job_claimable_again(
    effects: Database, registry: JobRegistry, start_worker
) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, EffectJob())
    # A worker claims the job, then "dies": it never renews, completes or releases.
    [dead_claim] = await queue.claim(effects, registry, limit=1)
    assert await queue.claim(effects, registry, limit=1) == []  # leased, not claimable
    async with start_worker():
        await wait_for_states(effects, lambda s: s[job_id] == "succeeded", within_s=30)
    # The dead worker's token is fenced out: it can no longer finish the job.
    assert await queue.complete(effects, dead_claim, duration_ms=1) is False
    async with effects.transaction(readonly=True) as session:
        assert (await session.get_one(Job, job_id)).attempts == 2


async def test_a_lapsed_lease_on_the_last_attempt_dead_letters(
    effects: Database, registry: JobRegistry
) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, SlowJob(sleep_s=0))
    async with effects.transaction() as session:
        job = await session.get_one(Job, job_id)
        job.attempts = job.max_attempts - 1
    await queue.claim(effects, registry, limit=1)  # the last attempt; its worker dies
    await asyncio.sleep(SlowJob.lease.total_seconds() + 0.2)
    assert await queue.claim(effects, registry, limit=1) == []
    assert (await job_states(effects))[job_id] == "dead_letter"


async def test_shutdown_releases_unfinished_jobs_without_counting_the_attempt(
    effects: Database, start_worker
) -> None:
    async with effects.transaction() as session:
        job_id = await queue.enqueue(session, EffectJob(sleep_ms=10_000))
    async with start_worker(shutdown_grace_s=0.2):
        await wait_for_states(effects, lambda s: s[job_id] == "running")
    async with effects.transaction(readonly=True) as session:
        job = await session.get_one(Job, job_id)
    assert (job.state, job.attempts, job.lease_token) == ("queued", 0, None)


async def test_periodic_jobs_run_once_per_period_whatever_the_number_of_workers(
    effects: Database, registry: JobRegistry
) -> None:
    registry.register(JobType(type("Tick", (EffectJob,), {"job_type": "test_tick"}), run_effect))
    registry.every(PeriodicJob("tick", "test_tick", timedelta(hours=1)))
    rounds = await asyncio.gather(
        *(queue.enqueue_due_periodic(effects, registry) for _ in range(8))
    )
    enqueued = [job_id for round_ in rounds for job_id in round_]
    async with effects.transaction(readonly=True) as session:
        types = (await session.scalars(select(Job.type))).all()
    assert types.count("test_tick") == 1
    assert len([j for j in enqueued if j]) >= 1
    # Calling again in the same period adds nothing.
    assert all(
        job_id is None or job_id not in enqueued
        for job_id in await queue.enqueue_due_periodic(effects, registry)
    )
    async with effects.transaction(readonly=True) as session:
        assert (await session.scalars(select(Job.type))).all().count("test_tick") == 1


async def test_metrics_count_attempts_and_jobs(effects: Database, start_worker) -> None:
    async with effects.transaction() as session:
        await queue.enqueue(session, FlakyJob(fail_times=1))
    async with start_worker(stats_interval_s=0.05) as worker:
        await wait_for_states(effects, lambda s: set(s.values()) == {"succeeded"})
        await asyncio.sleep(0.2)
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in worker.metrics.attempts.collect()
            for sample in metric.samples
        }
        depth = worker.metrics.queue_depth.collect()[0].samples[0].value
        jobs = {
            tuple(sorted(sample.labels.items())): sample.value
            for sample in worker.metrics.jobs.collect()[0].samples
        }
    flaky = "test_flaky"
    assert samples[("byteor_job_attempts_total", (("outcome", "retrying"), ("type", flaky)))] == 1
    assert samples[("byteor_job_attempts_total", (("outcome", "succeeded"), ("type", flaky)))] == 1
    assert depth == 0
    assert jobs == {(("state", "succeeded"), ("type", flaky)): 1}
