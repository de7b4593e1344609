"""Prometheus metrics of the worker: attempts, their durations, jobs by type and state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "byteor_job_attempts",
            "Job attempts by type and outcome (succeeded, retrying, dead_letter, lost, released)",
            ["type", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "byteor_job_attempt_duration_seconds",
            "Duration of job attempts by type",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.jobs = Gauge(
            "byteor_jobs",
            "Jobs by type and state (refreshed by each worker every few seconds)",
            ["type", "state"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "byteor_job_queue_depth", "Jobs due and waiting for a worker", registry=registry
        )
        self.running = Gauge(
            "byteor_worker_running_jobs", "Jobs running in this process", registry=registry
        )
