"""Which modules register job types: the built-in contexts plus configured plug-ins."""

from __future__ import annotations

from byteor_cloud.config import Settings
from byteor_cloud.jobs.registry import JobRegistry, load_handler_modules

# Each context with jobs adds its `jobs` module here.
BUILTIN_JOB_MODULES = (
    "byteor_cloud.storage.jobs",
    "byteor_cloud.tenancy.jobs",
    "byteor_cloud.authoring.jobs",
    "byteor_cloud.agents.jobs",
    "byteor_cloud.idempotency.jobs",
    "byteor_cloud.signing.jobs",
    "byteor_cloud.deployments.jobs",
    "byteor_cloud.approvals.jobs",
)


def build_registry(settings: Settings) -> JobRegistry:
    registry = JobRegistry()
    load_handler_modules(registry, (*BUILTIN_JOB_MODULES, *settings.job_modules))
    return registry
