"""The job state machine as data, and the retry backoff: pure, no database."""

from __future__ import annotations

import random
from enum import StrEnum


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    retrying = "retrying"
    dead_letter = "dead_letter"


class JobEvent(StrEnum):
    claim = "claim"  # a worker takes a due job, or one whose lease lapsed
    succeed = "succeed"
    fail = "fail"  # an attempt failed and the budget allows another
    exhaust = "exhaust"  # an attempt failed and the budget is spent
    release = "release"  # a worker shutting down hands the job back untried
    admin_retry = "admin_retry"  # an administrator gives a dead letter a fresh budget


TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (JobState.queued, JobEvent.claim): JobState.running,
    (JobState.retrying, JobEvent.claim): JobState.running,
    # A lapsed lease makes a running job claimable again (its worker died or hung).
    (JobState.running, JobEvent.claim): JobState.running,
    (JobState.running, JobEvent.succeed): JobState.succeeded,
    (JobState.running, JobEvent.fail): JobState.retrying,
    (JobState.running, JobEvent.exhaust): JobState.dead_letter,
    (JobState.running, JobEvent.release): JobState.queued,
    # A lapsed lease on the last allowed attempt dead-letters without running again.
    (JobState.queued, JobEvent.exhaust): JobState.dead_letter,
    (JobState.retrying, JobEvent.exhaust): JobState.dead_letter,
    (JobState.dead_letter, JobEvent.admin_retry): JobState.queued,
}

PENDING = frozenset({JobState.queued, JobState.running, JobState.retrying})
FINAL = frozenset({JobState.succeeded, JobState.dead_letter})


class IllegalTransition(ValueError):
    pass


def next_state(state: JobState, event: JobEvent) -> JobState:
    """The state after `event`, or IllegalTransition."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} is not allowed from {state.value}") from None


BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 600.0


def backoff_seconds(
    attempt: int, *, base_s: float = BACKOFF_BASE_S, rng: random.Random | None = None
) -> float:
    """Delay before attempt `attempt + 1`: exponential with full jitter, capped.

    Full jitter (uniform between half and the whole exponential step) spreads retries of
    jobs that failed together, so a recovering dependency is not hit by a thundering herd.
    """
    step = min(BACKOFF_CAP_S, base_s * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(step / 2, step)
