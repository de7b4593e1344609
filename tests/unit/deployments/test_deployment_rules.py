"""The deployment status machine, target states, strategies, selectors, the plan hash,
batching and rollout/rollback progression (PRODUCT.md §9), without a database."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise, product
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from byteor_cloud.api.errors import status_for
from byteor_cloud.core.errors import InvalidState
from byteor_cloud.deployments.rules import (
    DEPLOYMENT_TRANSITIONS,
    FINAL,
    IN_FLIGHT,
    MAX_BAKE_S,
    MAX_BATCHES,
    MAX_SELECTED_IDS,
    ON_AGENTS,
    REPORTABLE,
    TARGET_FINAL,
    TARGET_IN_FLIGHT,
    AllAtOnce,
    DeploymentEvent,
    DeploymentStatus,
    Phased,
    Progress,
    ReportOutcome,
    Step,
    Strategy,
    TargetSelector,
    TargetState,
    apply_report,
    batch_ends,
    batch_of,
    evaluate_rollback,
    evaluate_rollout,
    next_status,
    plan_hash,
    strategy_document,
)

S, E, T = DeploymentStatus, DeploymentEvent, TargetState

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def _ceil_percent(total: int, percent: int) -> int:
    """Exact integer ceil(total * percent / 100), independent of the code under test."""
    return -(-total * percent // 100)


# --- deployment status machine ---------------------------------------------------------

# PRODUCT.md §9 edges, written out independently of the table, plus the one documented
# addition (a failed rollback ends `failed`).
SPEC_EDGES = {
    (S.pending_approval, S.approved),
    (S.approved, S.building),
    (S.building, S.deploying),
    (S.deploying, S.active),
    (S.pending_approval, S.denied),
    (S.building, S.failed),
    (S.deploying, S.failed),
    (S.active, S.rolling_back),
    (S.failed, S.rolling_back),
    (S.rolling_back, S.rolled_back),
    (S.pending_approval, S.cancelled),
    (S.approved, S.cancelled),
    (S.building, S.cancelled),
    (S.rolling_back, S.failed),
}


def test_the_transition_table_has_exactly_the_edges_product_md_describes() -> None:
    edges = {(before, after) for (before, _), after in DEPLOYMENT_TRANSITIONS.items()}
    assert edges == SPEC_EDGES


@pytest.mark.parametrize(
    ("status", "event", "after"),
    [(status, event, after) for (status, event), after in DEPLOYMENT_TRANSITIONS.items()],
)
def test_next_status_follows_every_allowed_transition(
    status: DeploymentStatus, event: DeploymentEvent, after: DeploymentStatus
) -> None:
    assert next_status(status, event) is after


@pytest.mark.parametrize(
    ("status", "event"),
    [pair for pair in product(S, E) if pair not in DEPLOYMENT_TRANSITIONS],
)
def test_a_transition_outside_the_table_is_an_invalid_state_409(
    status: DeploymentStatus, event: DeploymentEvent
) -> None:
    with pytest.raises(InvalidState) as caught:
        next_status(status, event)
    assert caught.value.code == "invalid_state"
    assert caught.value.details == {"status": status.value, "event": event.value}
    assert status.value in caught.value.message
    assert status_for(caught.value) == 409


def test_the_happy_path_runs_from_pending_approval_to_active() -> None:
    status = S.pending_approval
    for event in (E.approve, E.build_started, E.build_succeeded, E.rollout_completed):
        status = next_status(status, event)
    assert status is S.active


def test_a_failed_deployment_can_be_rolled_back_and_a_failed_rollback_rolled_back_again() -> None:
    status = next_status(S.deploying, E.rollout_failed)
    assert status is S.failed
    status = next_status(status, E.rollback)
    assert status is S.rolling_back
    status = next_status(status, E.rollback_failed)
    assert status is S.failed
    assert next_status(status, E.rollback) is S.rolling_back


def test_final_statuses_have_no_way_out() -> None:
    assert {S.denied, S.rolled_back, S.cancelled} == FINAL
    assert not [pair for pair in DEPLOYMENT_TRANSITIONS if pair[0] in FINAL]
    for status, event in product(FINAL, E):
        with pytest.raises(InvalidState):
            next_status(status, event)


def test_in_flight_is_approved_building_deploying_and_rolling_back() -> None:
    assert {S.approved, S.building, S.deploying, S.rolling_back} == IN_FLIGHT
    assert not IN_FLIGHT & FINAL


def test_only_pending_approval_approved_or_building_can_be_cancelled() -> None:
    sources = {status for (status, event) in DEPLOYMENT_TRANSITIONS if event is E.cancel}
    assert sources == {S.pending_approval, S.approved, S.building}
    assert {DEPLOYMENT_TRANSITIONS[(s, E.cancel)] for s in sources} == {S.cancelled}


def test_a_cancellable_deployment_has_not_reached_agents() -> None:
    # Revoking an approval cancels only a deployment whose bundle is not on agents.
    cancellable = {status for (status, event) in DEPLOYMENT_TRANSITIONS if event is E.cancel}
    assert not cancellable & ON_AGENTS
    assert S.deploying in ON_AGENTS
    assert S.active in ON_AGENTS


def test_only_active_or_failed_deployments_roll_back() -> None:
    sources = {status for (status, event) in DEPLOYMENT_TRANSITIONS if event is E.rollback}
    assert sources == {S.active, S.failed}


def test_approval_decisions_only_apply_to_a_pending_deployment() -> None:
    for event in (E.approve, E.deny):
        sources = {status for (status, e) in DEPLOYMENT_TRANSITIONS if e is event}
        assert sources == {S.pending_approval}


@given(st.lists(st.sampled_from(list(E)), max_size=40), st.sampled_from(list(S)))
def test_any_event_sequence_follows_the_table_and_never_leaves_a_final_status(
    events: list[DeploymentEvent], start: DeploymentStatus
) -> None:
    status = start
    for event in events:
        expected = DEPLOYMENT_TRANSITIONS.get((status, event))
        if expected is None:
            with pytest.raises(InvalidState):
                next_status(status, event)
        else:
            assert status not in FINAL
            status = next_status(status, event)
            assert status is expected


# --- target states ---------------------------------------------------------------------

# Independent of the module's private order: how far along a target is.
RANK = {T.pending: 0, T.downloading: 1, T.activating: 2, T.active: 3, T.failed: 3}
# States a target can be in when a report is applied (the caller resolves `unreachable`
# to the state it resumes from before calling apply_report).
CURRENT_STATES = [s for s in T if s is not T.unreachable]


def test_agents_report_only_downloading_activating_active_or_failed() -> None:
    assert {T.downloading, T.activating, T.active, T.failed} == REPORTABLE


def test_target_state_sets_partition_the_states_with_unreachable_apart() -> None:
    assert {T.active, T.failed, T.superseded} == TARGET_FINAL
    assert {T.pending, T.downloading, T.activating} == TARGET_IN_FLIGHT
    assert not TARGET_FINAL & TARGET_IN_FLIGHT
    assert set(T) - (TARGET_FINAL | TARGET_IN_FLIGHT) == {T.unreachable}


@pytest.mark.parametrize("current", list(T))
@pytest.mark.parametrize("reported", [s for s in T if s not in REPORTABLE])
def test_a_report_of_a_state_agents_cannot_report_is_refused(
    current: TargetState, reported: TargetState
) -> None:
    with pytest.raises(InvalidState) as caught:
        apply_report(current, reported)
    assert caught.value.code == "invalid_report"
    assert status_for(caught.value) == 409


@pytest.mark.parametrize("state", sorted(REPORTABLE))
def test_repeating_the_current_state_is_accepted_even_when_final(state: TargetState) -> None:
    assert apply_report(state, state) is ReportOutcome.repeated


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        (T.pending, T.downloading),
        (T.pending, T.activating),
        (T.pending, T.active),
        (T.pending, T.failed),
        (T.downloading, T.activating),
        (T.downloading, T.active),
        (T.downloading, T.failed),
        (T.activating, T.active),
        (T.activating, T.failed),
    ],
)
def test_a_report_may_move_forward_and_skip_states(
    current: TargetState, reported: TargetState
) -> None:
    assert apply_report(current, reported) is ReportOutcome.changed


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        (T.activating, T.downloading),
        (T.active, T.downloading),
        (T.active, T.activating),
        (T.failed, T.downloading),
        (T.failed, T.activating),
    ],
)
def test_a_report_never_goes_back(current: TargetState, reported: TargetState) -> None:
    with pytest.raises(InvalidState) as caught:
        apply_report(current, reported)
    assert caught.value.code == "invalid_transition"
    assert caught.value.details == {"state": current.value, "reported": reported.value}


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        (T.active, T.failed),
        (T.failed, T.active),
        (T.superseded, T.downloading),
        (T.superseded, T.activating),
        (T.superseded, T.active),
        (T.superseded, T.failed),
    ],
)
def test_a_final_target_cannot_become_anything_else(
    current: TargetState, reported: TargetState
) -> None:
    with pytest.raises(InvalidState) as caught:
        apply_report(current, reported)
    assert caught.value.code == "invalid_transition"


@pytest.mark.parametrize(("current", "reported"), list(product(CURRENT_STATES, T)))
def test_apply_report_accepts_exactly_repeats_and_forward_moves_out_of_non_final_states(
    current: TargetState, reported: TargetState
) -> None:
    accepted = reported in REPORTABLE and (
        reported is current or (current not in TARGET_FINAL and RANK[reported] > RANK[current])
    )
    if accepted:
        outcome = apply_report(current, reported)
        expected = ReportOutcome.repeated if reported is current else ReportOutcome.changed
        assert outcome is expected
    else:
        with pytest.raises(InvalidState):
            apply_report(current, reported)


@given(
    st.sampled_from(CURRENT_STATES),
    st.lists(st.sampled_from(list(T)), max_size=30),
)
def test_random_report_sequences_never_move_a_target_backwards(
    start: TargetState, reports: list[TargetState]
) -> None:
    state = start
    final_at: TargetState | None = state if state in TARGET_FINAL else None
    for reported in reports:
        try:
            outcome = apply_report(state, reported)
        except InvalidState:
            continue
        if final_at is not None:
            # Once final, the only accepted report is a repeat of that final state.
            assert outcome is ReportOutcome.repeated
            assert reported is final_at
        if outcome is ReportOutcome.changed:
            assert RANK[reported] > RANK[state]
        else:
            assert reported is state
        state = reported
        if state in TARGET_FINAL and final_at is None:
            final_at = state
    if final_at is not None:
        assert state is final_at


# --- strategies ------------------------------------------------------------------------


def test_all_at_once_takes_only_its_type() -> None:
    assert AllAtOnce(type="all_at_once").type == "all_at_once"
    with pytest.raises(ValidationError):
        AllAtOnce.model_validate({"type": "all_at_once", "bake_s": 5})
    with pytest.raises(ValidationError):
        AllAtOnce.model_validate({"type": "phased"})


def test_phased_fills_in_the_documented_defaults() -> None:
    phased = Phased.model_validate({"type": "phased", "batches": [10, 50, 100]})
    assert phased.batches == [10, 50, 100]
    assert phased.bake_s == 60
    assert phased.max_failures == 0
    assert phased.auto_rollback is True


@pytest.mark.parametrize(
    "batches",
    [[100], [1, 100], [10, 50, 100], [99, 100], list(range(100 - MAX_BATCHES + 1, 101))],
)
def test_phased_accepts_strictly_increasing_cumulative_batches_ending_at_100(
    batches: list[int],
) -> None:
    assert Phased(type="phased", batches=batches).batches == batches


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([], id="empty"),
        pytest.param([50], id="does-not-end-at-100"),
        pytest.param([10, 50], id="last-below-100"),
        pytest.param([50, 50, 100], id="repeated"),
        pytest.param([50, 10, 100], id="decreasing"),
        pytest.param([100, 100], id="repeated-100"),
        pytest.param([0, 100], id="zero"),
        pytest.param([10, 101], id="over-100"),
        pytest.param([-5, 100], id="negative"),
        pytest.param(list(range(100 - MAX_BATCHES, 101)), id="too-many"),
    ],
)
def test_phased_refuses_batches_that_are_not_cumulative_percentages(batches: list[int]) -> None:
    with pytest.raises(ValidationError):
        Phased(type="phased", batches=batches)


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("bake_s", 0, True),
        ("bake_s", MAX_BAKE_S, True),
        ("bake_s", -1, False),
        ("bake_s", MAX_BAKE_S + 1, False),
        ("max_failures", 0, True),
        ("max_failures", 100_000, True),
        ("max_failures", -1, False),
        ("max_failures", 100_001, False),
    ],
)
def test_phased_bake_time_and_failure_budget_are_bounded(
    field: str, value: int, valid: bool
) -> None:
    document = {"type": "phased", "batches": [100], field: value}
    if valid:
        assert getattr(Phased.model_validate(document), field) == value
    else:
        with pytest.raises(ValidationError):
            Phased.model_validate(document)


def test_max_bake_time_is_a_week() -> None:
    assert timedelta(seconds=MAX_BAKE_S) == timedelta(days=7)


def test_phased_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Phased.model_validate({"type": "phased", "batches": [100], "percent": 10})


def test_strategies_are_frozen() -> None:
    phased = Phased(type="phased", batches=[100])
    with pytest.raises(ValidationError):
        phased.bake_s = 5  # type: ignore[misc]


def test_the_strategy_union_picks_the_model_by_type() -> None:
    adapter: TypeAdapter[AllAtOnce | Phased] = TypeAdapter(Strategy)
    assert isinstance(adapter.validate_python({"type": "all_at_once"}), AllAtOnce)
    phased = adapter.validate_python({"type": "phased", "batches": [25, 100], "bake_s": 0})
    assert isinstance(phased, Phased)
    assert phased.batches == [25, 100]
    for bad in ({"type": "canary"}, {"batches": [100]}, {"type": "phased"}):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


@given(st.lists(st.integers(min_value=-5, max_value=110), max_size=MAX_BATCHES + 3))
def test_phased_validates_exactly_the_cumulative_batch_lists(batches: list[int]) -> None:
    valid = (
        1 <= len(batches) <= MAX_BATCHES
        and all(1 <= b <= 100 for b in batches)
        and all(a < b for a, b in pairwise(batches))
        and batches[-1] == 100
    )
    if valid:
        assert Phased(type="phased", batches=batches).batches == batches
    else:
        with pytest.raises(ValidationError):
            Phased(type="phased", batches=batches)


def test_strategy_document_is_the_strategy_with_defaults_filled_in() -> None:
    assert strategy_document(AllAtOnce(type="all_at_once")) == {"type": "all_at_once"}
    assert strategy_document(Phased(type="phased", batches=[10, 100])) == {
        "type": "phased",
        "batches": [10, 100],
        "bake_s": 60,
        "max_failures": 0,
        "auto_rollback": True,
    }


# --- target selector -------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"all": True},
        {"agent_ids": ["agt_1"]},
        {"agent_ids": ["agt_2", "agt_1"]},
        {"labels": {"region": "eu"}},
        {"all": True, "agent_ids": None, "labels": None},
    ],
)
def test_a_selector_with_exactly_one_of_all_ids_or_labels_is_valid(
    document: dict[str, Any],
) -> None:
    selector = TargetSelector.model_validate(document)
    given_fields = [n for n in ("all", "agent_ids", "labels") if getattr(selector, n)]
    assert len(given_fields) == 1


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({}, id="none"),
        pytest.param({"all": None}, id="all-null"),
        pytest.param({"all": True, "agent_ids": ["a"]}, id="all-and-ids"),
        pytest.param({"all": True, "labels": {"k": "v"}}, id="all-and-labels"),
        pytest.param({"agent_ids": ["a"], "labels": {"k": "v"}}, id="ids-and-labels"),
        pytest.param({"all": True, "agent_ids": ["a"], "labels": {"k": "v"}}, id="all-three"),
        pytest.param({"all": False}, id="all-false"),
        pytest.param({"agent_ids": []}, id="no-ids"),
        pytest.param({"labels": {}}, id="no-labels"),
        pytest.param({"agent_ids": ["a", "b", "a"]}, id="repeated-id"),
        pytest.param({"agent_ids": [""]}, id="empty-id"),
        pytest.param({"agent_ids": ["x" * 27]}, id="id-too-long"),
        pytest.param({"labels": {"": "v"}}, id="empty-label-key"),
        pytest.param({"labels": {"k": ""}}, id="empty-label-value"),
        pytest.param({"labels": {"k" * 129: "v"}}, id="label-key-too-long"),
        pytest.param({"labels": {"k": "v" * 129}}, id="label-value-too-long"),
        pytest.param({"labels": {f"k{i}": "v" for i in range(33)}}, id="too-many-labels"),
        pytest.param({"agent_ids": [f"a{i}" for i in range(1001)]}, id="too-many-ids"),
        pytest.param({"all": True, "tags": ["x"]}, id="unknown-field"),
    ],
)
def test_an_invalid_selector_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TargetSelector.model_validate(document)


def test_selector_size_limits_are_inclusive() -> None:
    ids = [f"a{i}" for i in range(MAX_SELECTED_IDS)]
    assert TargetSelector(agent_ids=ids).agent_ids == ids
    labels = {f"k{i}": "v" for i in range(32)}
    assert TargetSelector(labels=labels).labels == labels
    assert TargetSelector(agent_ids=["x" * 26]).agent_ids == ["x" * 26]
    assert TargetSelector(labels={"k" * 128: "v" * 128}).labels == {"k" * 128: "v" * 128}


def test_normalised_selectors_are_canonical() -> None:
    assert TargetSelector(all=True).normalised() == {"all": True}
    assert TargetSelector(agent_ids=["c", "a", "b"]).normalised() == {"agent_ids": ["a", "b", "c"]}
    labels = TargetSelector(labels={"zone": "a", "env": "prod", "m": "x"}).normalised()
    assert labels == {"labels": {"env": "prod", "m": "x", "zone": "a"}}
    assert list(labels["labels"]) == ["env", "m", "zone"]


def test_normalising_does_not_change_the_selector() -> None:
    selector = TargetSelector(agent_ids=["b", "a"])
    selector.normalised()
    assert selector.agent_ids == ["b", "a"]


# --- plan hash -------------------------------------------------------------------------

PHASED_DOC = strategy_document(Phased(type="phased", batches=[10, 50, 100]))
BASE_INTENT: dict[str, Any] = {
    "spec_hash": "sha256:" + "a" * 64,
    "bundle_hash": "sha256:" + "b" * 64,
    "selector": {"labels": {"region": "eu"}},
    "strategy": PHASED_DOC,
}


def test_plan_hash_is_sha256_of_the_canonical_json_of_the_intent() -> None:
    digest = plan_hash(**BASE_INTENT)
    intent = {
        "bundle_hash": BASE_INTENT["bundle_hash"],
        "spec_hash": BASE_INTENT["spec_hash"],
        "strategy": BASE_INTENT["strategy"],
        "targets": BASE_INTENT["selector"],
    }
    canonical = json.dumps(intent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert digest == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_plan_hash_is_deterministic_and_well_formed() -> None:
    first = plan_hash(**BASE_INTENT)
    assert first == plan_hash(**BASE_INTENT)
    prefix, _, hexdigest = first.partition(":")
    assert prefix == "sha256"
    assert len(hexdigest) == 64
    assert all(c in "0123456789abcdef" for c in hexdigest)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spec_hash", "sha256:" + "c" * 64),
        ("bundle_hash", "sha256:" + "d" * 64),
        ("selector", {"labels": {"region": "us"}}),
        ("selector", {"labels": {"region": "eu", "tier": "edge"}}),
        ("selector", {"all": True}),
        ("selector", {"agent_ids": ["agt_1"]}),
        ("strategy", {**PHASED_DOC, "bake_s": 61}),
        ("strategy", {**PHASED_DOC, "max_failures": 1}),
        ("strategy", {**PHASED_DOC, "auto_rollback": False}),
        ("strategy", {**PHASED_DOC, "batches": [10, 60, 100]}),
        ("strategy", strategy_document(AllAtOnce(type="all_at_once"))),
    ],
)
def test_plan_hash_changes_when_any_part_of_the_intent_changes(field: str, value: Any) -> None:
    assert plan_hash(**{**BASE_INTENT, field: value}) != plan_hash(**BASE_INTENT)


def test_plan_hash_ignores_the_order_of_agent_ids_and_labels_once_normalised() -> None:
    by_ids = [
        TargetSelector(agent_ids=ids).normalised()
        for ids in (["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"])
    ]
    by_labels = [
        TargetSelector(labels=labels).normalised()
        for labels in ({"env": "prod", "zone": "a"}, {"zone": "a", "env": "prod"})
    ]
    for group in (by_ids, by_labels):
        hashes = {plan_hash(**{**BASE_INTENT, "selector": s}) for s in group}
        assert len(hashes) == 1


def test_plan_hash_of_a_strategy_with_explicit_defaults_equals_the_implicit_one() -> None:
    implicit = strategy_document(Phased(type="phased", batches=[10, 50, 100]))
    explicit = strategy_document(
        Phased(type="phased", batches=[10, 50, 100], bake_s=60, max_failures=0, auto_rollback=True)
    )
    assert plan_hash(**{**BASE_INTENT, "strategy": implicit}) == plan_hash(
        **{**BASE_INTENT, "strategy": explicit}
    )


agent_ids = st.lists(
    st.text(alphabet="0123456789abcdefghjkmnpqrstvwxyz", min_size=1, max_size=26),
    min_size=1,
    max_size=20,
    unique=True,
)


@given(agent_ids, st.randoms(use_true_random=False))
def test_plan_hash_is_independent_of_agent_id_order(ids: list[str], rng: random.Random) -> None:
    shuffled = list(ids)
    rng.shuffle(shuffled)
    first = TargetSelector(agent_ids=ids).normalised()
    second = TargetSelector(agent_ids=shuffled).normalised()
    assert plan_hash(**{**BASE_INTENT, "selector": first}) == plan_hash(
        **{**BASE_INTENT, "selector": second}
    )


@given(agent_ids, agent_ids)
def test_plan_hash_tells_different_agent_id_sets_apart(left: list[str], right: list[str]) -> None:
    first = plan_hash(**{**BASE_INTENT, "selector": TargetSelector(agent_ids=left).normalised()})
    second = plan_hash(**{**BASE_INTENT, "selector": TargetSelector(agent_ids=right).normalised()})
    assert (first == second) == (set(left) == set(right))


# --- batches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "batches", "ends"),
    [
        (10, [10, 50, 100], [1, 5, 10]),
        (100, [10, 50, 100], [10, 50, 100]),
        (3, [10, 50, 100], [1, 2, 3]),
        (7, [33, 66, 100], [3, 5, 7]),
        (2, [10, 50, 100], [1, 2]),  # 10% and 50% of 2 both round up to 1: one batch dropped
        (1, [10, 50, 100], [1]),
        (5, [100], [5]),
        (4, [1, 2, 3, 100], [1, 4]),
        (0, [10, 50, 100], [0]),
        (0, [100], [0]),
    ],
)
def test_batch_ends_are_cumulative_ceilings_with_empty_batches_dropped(
    total: int, batches: list[int], ends: list[int]
) -> None:
    assert batch_ends(total, batches) == ends


def test_batch_of_places_targets_in_their_batch() -> None:
    ends = [1, 5, 10]
    assert [batch_of(i, ends) for i in range(10)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 2]


def test_batch_of_puts_an_index_past_the_end_in_the_last_batch() -> None:
    assert batch_of(10, [1, 5, 10]) == 2
    assert batch_of(0, [0]) == 0


batch_lists = st.lists(
    st.integers(min_value=1, max_value=99), max_size=MAX_BATCHES - 1, unique=True
).map(lambda xs: [*sorted(xs), 100])


@given(st.integers(min_value=0, max_value=5000), batch_lists)
def test_batch_ends_are_strictly_increasing_and_end_at_the_total(
    total: int, batches: list[int]
) -> None:
    ends = batch_ends(total, batches)
    assert ends[-1] == total
    assert 1 <= len(ends) <= len(batches)
    assert all(a < b for a, b in pairwise(ends))
    if total > 0:
        assert ends[0] >= 1
        # Every batch boundary is the ceiling of its percentage; duplicates collapse.
        assert set(ends) == {_ceil_percent(total, p) for p in batches}
    else:
        assert ends == [0]


@given(st.integers(min_value=1, max_value=2000), batch_lists)
def test_batch_of_fills_every_batch_in_order(total: int, batches: list[int]) -> None:
    ends = batch_ends(total, batches)
    placed = [batch_of(i, ends) for i in range(total)]
    assert placed == sorted(placed)
    assert set(placed) == set(range(len(ends)))
    starts = [0, *ends[:-1]]
    for batch, (start, end) in enumerate(zip(starts, ends, strict=True)):
        assert placed.count(batch) == end - start


@given(st.integers(min_value=1, max_value=2000), batch_lists)
def test_each_percentage_starts_the_fewest_targets_that_reach_it(
    total: int, batches: list[int]
) -> None:
    ends = batch_ends(total, batches)
    for percent in batches:
        end = _ceil_percent(total, percent)
        assert end in ends
        assert end * 100 >= total * percent  # at least the percentage...
        assert (end - 1) * 100 < total * percent  # ...and not one target more


# --- rollout progression ---------------------------------------------------------------


def _phased(**overrides: Any) -> dict[str, Any]:
    return strategy_document(
        Phased.model_validate({"type": "phased", "batches": [10, 50, 100], **overrides})
    )


ALL_AT_ONCE = strategy_document(AllAtOnce(type="all_at_once"))
NOT_FINAL = sorted(set(T) - TARGET_FINAL)


def _rollout(
    strategy: dict[str, Any],
    pairs: list[tuple[int, TargetState]],
    *,
    current_batch: int = 0,
    batch_count: int = 3,
    batch_done_at: datetime | None = None,
    now: datetime = NOW,
) -> Progress:
    return evaluate_rollout(
        strategy=strategy,
        batches=pairs,
        current_batch=current_batch,
        batch_count=batch_count,
        batch_done_at=batch_done_at,
        now=now,
    )


@pytest.mark.parametrize("state", NOT_FINAL)
def test_a_rollout_waits_while_a_target_of_the_current_batch_is_not_final(
    state: TargetState,
) -> None:
    pairs = [(0, T.active), (0, state), (1, T.pending), (2, T.pending)]
    assert _rollout(_phased(), pairs) == Progress(Step.wait, 0)


@pytest.mark.parametrize("state", NOT_FINAL)
def test_a_rollout_waits_while_a_target_of_an_earlier_batch_is_not_final(
    state: TargetState,
) -> None:
    pairs = [(0, state), (1, T.active), (1, T.active), (2, T.pending)]
    assert _rollout(_phased(), pairs, current_batch=1) == Progress(Step.wait, 0)


def test_later_batches_do_not_hold_back_the_current_one() -> None:
    pairs = [(0, T.active), (1, T.pending), (2, T.pending)]
    assert _rollout(_phased(), pairs).step is Step.batch_done


@pytest.mark.parametrize("final", sorted(TARGET_FINAL))
def test_a_batch_whose_targets_are_all_final_is_done(final: TargetState) -> None:
    budget = _phased(max_failures=5)
    pairs = [(0, T.active), (0, final), (1, T.pending)]
    assert _rollout(budget, pairs).step is Step.batch_done


def test_the_next_batch_starts_once_the_bake_time_has_passed() -> None:
    pairs = [(0, T.active), (1, T.pending), (2, T.pending)]
    done_at = NOW - timedelta(seconds=30)
    strategy = _phased(bake_s=60)
    assert _rollout(strategy, pairs, batch_done_at=done_at).step is Step.wait
    just_baked = done_at + timedelta(seconds=60)
    assert _rollout(strategy, pairs, batch_done_at=done_at, now=just_baked) == Progress(
        Step.next_batch, 0
    )
    later = done_at + timedelta(hours=2)
    assert _rollout(strategy, pairs, batch_done_at=done_at, now=later).step is Step.next_batch
    almost = just_baked - timedelta(microseconds=1)
    assert _rollout(strategy, pairs, batch_done_at=done_at, now=almost).step is Step.wait


def test_a_bake_time_of_zero_starts_the_next_batch_as_soon_as_the_batch_is_done() -> None:
    pairs = [(0, T.active), (1, T.pending)]
    strategy = _phased(bake_s=0)
    assert _rollout(strategy, pairs).step is Step.batch_done
    assert _rollout(strategy, pairs, batch_done_at=NOW).step is Step.next_batch


def test_a_rollout_completes_after_its_last_batch() -> None:
    pairs = [(0, T.active), (1, T.active), (2, T.active), (2, T.superseded)]
    for done_at in (None, NOW, NOW - timedelta(days=1)):
        progress = _rollout(_phased(), pairs, current_batch=2, batch_done_at=done_at)
        assert progress == Progress(Step.complete, 0)


def test_a_single_batch_rollout_completes_without_baking() -> None:
    pairs = [(0, T.active), (0, T.active)]
    assert _rollout(ALL_AT_ONCE, pairs, batch_count=1) == Progress(Step.complete, 0)


def test_a_last_batch_not_yet_final_waits() -> None:
    pairs = [(0, T.active), (1, T.activating)]
    assert _rollout(_phased(), pairs, current_batch=1, batch_count=2).step is Step.wait


def test_a_rollout_with_no_targets_completes() -> None:
    assert _rollout(ALL_AT_ONCE, [], batch_count=1).step is Step.complete


def test_all_at_once_fails_on_the_first_failure() -> None:
    pairs = [(0, T.active), (0, T.failed), (0, T.downloading)]
    assert _rollout(ALL_AT_ONCE, pairs, batch_count=1) == Progress(Step.fail, 1)


def test_all_at_once_has_no_failure_budget_even_if_one_is_given() -> None:
    strategy = {**ALL_AT_ONCE, "max_failures": 10}
    assert _rollout(strategy, [(0, T.failed)], batch_count=1) == Progress(Step.fail, 1)


def test_phased_without_a_budget_fails_on_the_first_failure() -> None:
    pairs = [(0, T.failed), (1, T.pending), (2, T.pending)]
    assert _rollout(_phased(), pairs) == Progress(Step.fail, 1)
    missing_budget = {k: v for k, v in _phased().items() if k != "max_failures"}
    assert _rollout(missing_budget, pairs) == Progress(Step.fail, 1)


def test_failures_within_the_budget_let_the_rollout_go_on() -> None:
    strategy = _phased(max_failures=2)
    pairs = [(0, T.failed), (0, T.failed), (0, T.active), (1, T.pending)]
    assert _rollout(strategy, pairs) == Progress(Step.batch_done, 2)
    last = [(0, T.failed), (1, T.active), (2, T.failed)]
    assert _rollout(strategy, last, current_batch=2) == Progress(Step.complete, 2)


def test_failures_beyond_the_budget_fail_the_rollout_even_while_others_are_in_flight() -> None:
    strategy = _phased(max_failures=1)
    pairs = [(0, T.failed), (0, T.failed), (0, T.downloading), (1, T.pending)]
    assert _rollout(strategy, pairs) == Progress(Step.fail, 2)


def test_waiting_reports_the_failures_counted_so_far() -> None:
    strategy = _phased(max_failures=3)
    pairs = [(0, T.failed), (0, T.activating)]
    assert _rollout(strategy, pairs) == Progress(Step.wait, 1)


target_pairs = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3), st.sampled_from(list(T))), max_size=25
)


@given(
    target_pairs,
    st.integers(min_value=0, max_value=3),
    st.sampled_from(["all_at_once", "phased"]),
    st.integers(min_value=0, max_value=4),
    st.sampled_from([None, 0, 30, 60, 120]),
)
def test_rollout_decisions_respect_the_budget_and_unfinished_batches(
    pairs: list[tuple[int, TargetState]],
    current_batch: int,
    kind: str,
    max_failures: int,
    done_ago_s: int | None,
) -> None:
    strategy = (
        ALL_AT_ONCE if kind == "all_at_once" else _phased(max_failures=max_failures, bake_s=60)
    )
    budget, bake_s = (max_failures, 60) if kind == "phased" else (0, 0)
    done_at = None if done_ago_s is None else NOW - timedelta(seconds=done_ago_s)
    progress = _rollout(
        strategy, pairs, current_batch=current_batch, batch_count=4, batch_done_at=done_at
    )
    failures = sum(1 for _, s in pairs if s is T.failed)
    assert progress.failures == failures
    assert (progress.step is Step.fail) == (failures > budget)
    unfinished = any(s not in TARGET_FINAL for b, s in pairs if b <= current_batch)
    if progress.step is not Step.fail and unfinished:
        assert progress.step is Step.wait
    if progress.step is Step.complete:
        assert current_batch == 3
    if progress.step is Step.next_batch:
        assert done_ago_s is not None
        assert done_ago_s >= bake_s
    if progress.step is Step.batch_done:
        assert done_at is None


# --- rollback progression --------------------------------------------------------------


@pytest.mark.parametrize(
    "states",
    [
        [T.active],
        [T.active, T.active],
        [T.active, T.superseded],
        [T.superseded],
    ],
)
def test_a_rollback_completes_when_every_target_is_active_or_superseded(
    states: list[TargetState],
) -> None:
    assert evaluate_rollback(states) is Step.complete


@pytest.mark.parametrize(
    "states",
    [
        [T.failed],
        [T.active, T.failed],
        [T.pending, T.failed],
        [T.failed, T.unreachable, T.downloading],
    ],
)
def test_a_rollback_fails_as_soon_as_one_target_fails(states: list[TargetState]) -> None:
    assert evaluate_rollback(states) is Step.fail


@pytest.mark.parametrize("state", NOT_FINAL)
def test_a_rollback_waits_while_a_target_is_still_in_flight(state: TargetState) -> None:
    assert evaluate_rollback([T.active, state]) is Step.wait


def test_a_rollback_with_no_targets_left_completes() -> None:
    assert evaluate_rollback([]) is Step.complete


def test_evaluate_rollback_accepts_a_one_shot_iterator() -> None:
    assert evaluate_rollback(iter([T.active, T.active])) is Step.complete
    assert evaluate_rollback(s for s in [T.active, T.failed]) is Step.fail


@given(st.lists(st.sampled_from(list(T)), max_size=20))
def test_rollback_decisions_match_their_definition(states: list[TargetState]) -> None:
    step = evaluate_rollback(states)
    if T.failed in states:
        assert step is Step.fail
    elif all(s in (T.active, T.superseded) for s in states):
        assert step is Step.complete
    else:
        assert step is Step.wait
