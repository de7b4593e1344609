"""Named job types: each with a payload model, a handler and its retry/lease policy."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from byteor_cloud.core.errors import InvalidInput

if TYPE_CHECKING:
    from byteor_cloud.jobs.context import JobContext

Handler = Callable[["JobContext", Any], Awaitable[None]]

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LEASE = timedelta(seconds=30)
MAX_PAYLOAD_CHARS = 16_384


class JobPayload(BaseModel):
    """Base of payload models, one subclass per job type, naming it and its policy.

    Jobs take ids, not state (the handler reloads what it needs), and unknown fields are
    refused, so a payload enqueued by one version is read the same way by the next.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_type: ClassVar[str]
    max_attempts: ClassVar[int] = DEFAULT_MAX_ATTEMPTS
    lease: ClassVar[timedelta] = DEFAULT_LEASE
    # First retry delay; each further retry doubles it (see jobs/rules.backoff_seconds).
    backoff_base_s: ClassVar[float] = 2.0


@dataclass(frozen=True)
class JobType:
    payload_model: type[JobPayload]
    handler: Handler

    @property
    def name(self) -> str:
        return self.payload_model.job_type


@dataclass(frozen=True)
class PeriodicJob:
    """A job enqueued once per `period` (aligned to the epoch) by whichever worker is first."""

    name: str
    job_type: str
    period: timedelta
    payload: dict[str, Any] = field(default_factory=dict)


class UnknownJobType(InvalidInput):
    default_code = "unknown_job_type"


def serialise_payload(payload: JobPayload) -> dict[str, Any]:
    """The JSON stored for `payload`, bounded so a job row stays small."""
    data = payload.model_dump(mode="json")
    if len(payload.model_dump_json()) > MAX_PAYLOAD_CHARS:
        raise InvalidInput(
            f"payload for job type {payload.job_type!r} is too large",
            code="invalid_job_payload",
        )
    return data


class JobRegistry:
    """The job types and periodic jobs a process knows."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._periodic: dict[str, PeriodicJob] = {}

    def register(self, job_type: JobType) -> JobType:
        if job_type.name in self._types:
            raise ValueError(f"job type {job_type.name!r} registered twice")
        self._types[job_type.name] = job_type
        return job_type

    def handles(self, payload_model: type[JobPayload]) -> Callable[[Handler], Handler]:
        """Decorator registering `handler` for the job type `payload_model` declares."""

        def decorate(handler: Handler) -> Handler:
            self.register(JobType(payload_model, handler))
            return handler

        return decorate

    def every(self, periodic: PeriodicJob) -> None:
        if periodic.job_type not in self._types:
            raise ValueError(f"periodic job {periodic.name!r} names unknown type")
        self._periodic[periodic.name] = periodic

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(f"unknown job type {name!r}") from None

    @property
    def names(self) -> list[str]:
        return sorted(self._types)

    @property
    def periodic(self) -> list[PeriodicJob]:
        return list(self._periodic.values())

    def parse_payload(self, name: str, payload: dict[str, Any]) -> JobPayload:
        """The stored payload as its model; a payload that no longer parses is permanent."""
        job_type = self.get(name)
        try:
            return job_type.payload_model.model_validate(payload)
        except ValidationError as exc:
            raise PermanentJobError(
                f"stored payload does not parse: {exc.error_count()} errors"
            ) from None


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help: the job goes to dead_letter at once."""


def load_handler_modules(registry: JobRegistry, modules: Iterable[str]) -> None:
    """Import modules exposing `register(registry)` (each context's jobs, and plug-ins)."""
    for name in modules:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if not callable(register):
            raise ValueError(f"job handler module {name!r} has no register(registry)")
        register(registry)
