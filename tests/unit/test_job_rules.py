"""The job state machine and backoff, without a database."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from byteor_cloud.jobs.rules import (
    BACKOFF_CAP_S,
    FINAL,
    PENDING,
    TRANSITIONS,
    IllegalTransition,
    JobEvent,
    JobState,
    backoff_seconds,
    next_state,
)


def test_final_states_only_leave_through_an_admin_retry() -> None:
    for (state, event), _ in TRANSITIONS.items():
        if state in FINAL:
            assert (state, event) == (JobState.dead_letter, JobEvent.admin_retry)
    with pytest.raises(IllegalTransition):
        next_state(JobState.succeeded, JobEvent.admin_retry)


def test_every_state_is_pending_or_final() -> None:
    assert set(JobState) == PENDING | FINAL
    assert not PENDING & FINAL


@given(st.lists(st.sampled_from(list(JobEvent)), max_size=30))
def test_any_event_sequence_follows_the_table(events: list[JobEvent]) -> None:
    state = JobState.queued
    for event in events:
        if (state, event) in TRANSITIONS:
            state = next_state(state, event)
        else:
            with pytest.raises(IllegalTransition):
                next_state(state, event)
    assert state in set(JobState)


def test_only_running_jobs_complete_or_fail() -> None:
    for event in (JobEvent.succeed, JobEvent.fail, JobEvent.release):
        sources = {state for (state, e) in TRANSITIONS if e is event}
        assert sources == {JobState.running}


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 20])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [backoff_seconds(attempt, base_s=2.0, rng=rng) for _ in range(200)]
    step = min(BACKOFF_CAP_S, 2.0 * 2 ** (attempt - 1))
    assert all(step / 2 <= delay <= step for delay in delays)
    assert len(set(delays)) > 150  # jittered, not one value
