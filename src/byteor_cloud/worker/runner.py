"""The worker loop: claim due jobs into free slots, run them under renewed leases, record
the outcome, enqueue periodic jobs, and on shutdown finish or release what it holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from byteor_cloud.config import Settings
from byteor_cloud.db.session import Database
from byteor_cloud.jobs import queue
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.jobs.registry import JobRegistry, PermanentJobError
from byteor_cloud.jobs.rules import JobState
from byteor_cloud.storage import BlobStore
from byteor_cloud.worker.metrics import WorkerMetrics

log = logging.getLogger("byteor_cloud.worker")

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 4
    poll_interval_s: float = 0.5
    # How long running jobs get to finish on shutdown before their leases are released.
    shutdown_grace_s: float = 20.0
    schedule_interval_s: float = 1.0
    stats_interval_s: float = 10.0


class Worker:
    """One process's job runner; any number of them may share a database."""

    def __init__(
        self,
        *,
        database: Database,
        store: BlobStore,
        settings: Settings,
        registry: JobRegistry,
        metrics: WorkerMetrics,
        options: WorkerOptions | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.options = options or WorkerOptions()
        self._running: dict[asyncio.Task[None], queue.ClaimedJob] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.ready = False

    async def run(self) -> None:
        """Run until `stop()`; then drain within the grace period and release the rest."""
        self.ready = True
        next_schedule = next_stats = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= next_schedule:
                    await self._guard(queue.enqueue_due_periodic(self.database, self.registry))
                    next_schedule = now + self.options.schedule_interval_s
                if now >= next_stats:
                    await self._guard(self._refresh_stats())
                    next_stats = now + self.options.stats_interval_s
                free = self.options.concurrency - len(self._running)
                claimed = await self._guard(queue.claim(self.database, self.registry, limit=free))
                for job in claimed or []:
                    task = asyncio.create_task(self._run_one(job), name=f"job-{job.id}")
                    self._running[task] = job
                    task.add_done_callback(self._finished)
                self.metrics.running.set(len(self._running))
                if claimed and len(claimed) == free:
                    continue  # more may be due; claim again as soon as a slot frees up
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_interval_s)
        finally:
            self.ready = False
            await self._drain()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self.metrics.running.set(len(self._running))
        self._wake.set()

    async def _guard(self, work: Awaitable[T]) -> T | None:
        # A database hiccup must not kill the loop: log, wait for the next round.
        try:
            return await work
        except Exception:
            log.exception("worker loop step failed")
            return None

    async def _drain(self) -> None:
        if not self._running:
            return
        tasks = list(self._running)
        log.info("draining", extra={"running": len(tasks)})
        _, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _refresh_stats(self) -> None:
        counts = await queue.counts_by_type_and_state(self.database)
        self.metrics.jobs.clear()
        for (job_type, state), count in counts.items():
            self.metrics.jobs.labels(job_type, state).set(count)
        self.metrics.queue_depth.set(await queue.due_count(self.database))

    async def _run_one(self, job: queue.ClaimedJob) -> None:
        started = time.monotonic()
        handler_task = asyncio.create_task(self._call_handler(job))
        lease_lost = asyncio.Event()
        renewer = asyncio.create_task(self._keep_lease(job, handler_task, lease_lost))
        outcome: str
        try:
            await handler_task
        except asyncio.CancelledError:
            if lease_lost.is_set():
                outcome = "lost"
            else:
                # Shutdown: hand the job back so another worker runs it at once.
                await asyncio.shield(queue.release(self.database, job))
                outcome = "released"
        except Exception as exc:
            outcome = await self._record_failure(job, exc, started)
        else:
            duration_ms = int((time.monotonic() - started) * 1000)
            done = await queue.complete(self.database, job, duration_ms=duration_ms)
            outcome = "succeeded" if done else "lost"
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        elapsed = time.monotonic() - started
        self.metrics.attempts.labels(job.type, outcome).inc()
        self.metrics.duration.labels(job.type).observe(elapsed)
        log.info(
            "job attempt finished",
            extra={"job_id": job.id, "type": job.type, "attempt": job.attempt, "outcome": outcome},
        )

    async def _call_handler(self, job: queue.ClaimedJob) -> None:
        job_type = self.registry.get(job.type)
        payload = self.registry.parse_payload(job.type, job.payload)
        context = JobContext(
            database=self.database,
            settings=self.settings,
            store=self.store,
            job_id=job.id,
            job_type=job.type,
            attempt=job.attempt,
        )
        await job_type.handler(context, payload)

    async def _record_failure(self, job: queue.ClaimedJob, exc: Exception, started: float) -> str:
        duration_ms = int((time.monotonic() - started) * 1000)
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job attempt failed", extra={"job_id": job.id, "type": job.type}, exc_info=exc)
        state = await queue.fail(
            self.database,
            job,
            error=error,
            duration_ms=duration_ms,
            permanent=isinstance(exc, PermanentJobError),
        )
        return state.value if state is not None else "lost"

    async def _keep_lease(
        self, job: queue.ClaimedJob, handler: asyncio.Task[None], lost: asyncio.Event
    ) -> None:
        # Renew at a third of the lease so two missed renewals still leave it held.
        interval = max(0.05, job.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                still_ours = await queue.renew(self.database, job)
            except Exception:
                log.exception("lease renewal failed", extra={"job_id": job.id})
                continue
            if not still_ours:
                log.warning("lease lost; abandoning attempt", extra={"job_id": job.id})
                lost.set()
                handler.cancel()
                return


__all__ = ["JobState", "Worker", "WorkerOptions"]
