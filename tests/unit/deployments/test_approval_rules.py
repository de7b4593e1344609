"""The approval status machine and the distinct-approver rule (PRODUCT.md §9), pure."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from byteor_cloud.api.errors import status_for
from byteor_cloud.approvals.rules import (
    APPROVAL_TRANSITIONS,
    PENDING_LIFETIME,
    ApprovalEvent,
    ApprovalStatus,
    check_distinct_approver,
    next_status,
)
from byteor_cloud.core.errors import InvalidState, PermissionDenied

A, V = ApprovalStatus, ApprovalEvent

# PRODUCT.md §9, written out independently of the module's table.
SPEC = {
    (A.pending, V.approve): A.approved,
    (A.pending, V.deny): A.denied,
    (A.pending, V.expire): A.expired,
    (A.approved, V.revoke): A.revoked,
    (A.approved, V.expire): A.expired,
}
TERMINAL = {A.denied, A.expired, A.revoked}


def test_the_transition_table_is_the_one_product_md_describes() -> None:
    assert APPROVAL_TRANSITIONS == SPEC


@pytest.mark.parametrize(("status", "event", "after"), [(s, e, a) for (s, e), a in SPEC.items()])
def test_next_status_follows_every_allowed_transition(
    status: ApprovalStatus, event: ApprovalEvent, after: ApprovalStatus
) -> None:
    assert next_status(status, event) is after


@pytest.mark.parametrize(("status", "event"), [pair for pair in product(A, V) if pair not in SPEC])
def test_any_other_transition_is_an_invalid_state_409(
    status: ApprovalStatus, event: ApprovalEvent
) -> None:
    with pytest.raises(InvalidState) as caught:
        next_status(status, event)
    assert caught.value.code == "invalid_state"
    assert caught.value.details == {"status": status.value, "event": event.value}
    assert status_for(caught.value) == 409


@pytest.mark.parametrize("status", [s for s in A if s is not A.pending])
@pytest.mark.parametrize("event", [V.approve, V.deny])
def test_a_decision_on_a_request_that_is_not_pending_is_refused(
    status: ApprovalStatus, event: ApprovalEvent
) -> None:
    with pytest.raises(InvalidState) as caught:
        next_status(status, event)
    assert status_for(caught.value) == 409


def test_the_refusal_says_what_the_approval_is_and_what_was_tried() -> None:
    with pytest.raises(InvalidState) as caught:
        next_status(A.denied, V.approve)
    assert caught.value.message == "an approval that is denied cannot be approved"
    with pytest.raises(InvalidState) as caught:
        next_status(A.pending, V.revoke)
    assert caught.value.message == "an approval that is pending cannot be revoked"


def test_only_an_approved_approval_can_be_revoked() -> None:
    sources = {status for (status, event) in APPROVAL_TRANSITIONS if event is V.revoke}
    assert sources == {A.approved}


def test_pending_and_approved_approvals_can_both_expire() -> None:
    assert next_status(A.pending, V.expire) is A.expired
    assert next_status(A.approved, V.expire) is A.expired
    with pytest.raises(InvalidState):
        next_status(A.expired, V.expire)


def test_denied_expired_and_revoked_are_terminal() -> None:
    assert not [pair for pair in APPROVAL_TRANSITIONS if pair[0] in TERMINAL]
    for status, event in product(TERMINAL, V):
        with pytest.raises(InvalidState):
            next_status(status, event)


def test_every_terminal_status_is_reachable_from_pending() -> None:
    reachable = {A.pending}
    frontier = [A.pending]
    while frontier:
        status = frontier.pop()
        for event in V:
            after = APPROVAL_TRANSITIONS.get((status, event))
            if after is not None and after not in reachable:
                reachable.add(after)
                frontier.append(after)
    assert reachable == set(A)


@given(st.lists(st.sampled_from(list(V)), max_size=20))
def test_any_event_sequence_makes_at_most_two_moves_and_stops_in_a_terminal_or_open_status(
    events: list[ApprovalEvent],
) -> None:
    status = A.pending
    moves = 0
    for event in events:
        expected = SPEC.get((status, event))
        if expected is None:
            with pytest.raises(InvalidState):
                next_status(status, event)
            continue
        assert status not in TERMINAL
        status = next_status(status, event)
        assert status is expected
        moves += 1
    assert moves <= 2
    assert status in TERMINAL or status in {A.pending, A.approved}


def test_a_pending_request_lapses_after_seven_days() -> None:
    assert timedelta(days=7) == PENDING_LIFETIME


# --- distinct approver -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested_by", "decided_by"),
    [("usr_a", "usr_a"), ("usr_a", "usr_b"), (None, "usr_b"), ("usr_a", None), (None, None)],
)
def test_without_the_rule_anyone_may_decide(
    requested_by: str | None, decided_by: str | None
) -> None:
    # Returns without raising: the rule is off, so nobody is refused.
    check_distinct_approver(required=False, requested_by=requested_by, decided_by=decided_by)


def test_with_the_rule_a_different_person_may_decide() -> None:
    check_distinct_approver(required=True, requested_by="usr_a", decided_by="usr_b")
    # ...and the same pair the other way round is just as distinct.
    check_distinct_approver(required=True, requested_by="usr_b", decided_by="usr_a")


@pytest.mark.parametrize(
    ("requested_by", "decided_by"),
    [
        pytest.param("usr_a", "usr_a", id="same-person"),
        pytest.param(None, "usr_b", id="unknown-requester"),
        pytest.param("usr_a", None, id="unknown-approver"),
        pytest.param(None, None, id="both-unknown"),
    ],
)
def test_with_the_rule_the_requester_or_an_unknown_person_is_refused(
    requested_by: str | None, decided_by: str | None
) -> None:
    with pytest.raises(PermissionDenied) as caught:
        check_distinct_approver(required=True, requested_by=requested_by, decided_by=decided_by)
    assert caught.value.code == "distinct_approver_required"
    assert status_for(caught.value) == 403


@given(
    st.booleans(),
    st.one_of(st.none(), st.sampled_from(["usr_a", "usr_b", "usr_c"])),
    st.one_of(st.none(), st.sampled_from(["usr_a", "usr_b", "usr_c"])),
)
def test_the_distinct_approver_rule_passes_exactly_for_two_known_different_people(
    required: bool, requested_by: str | None, decided_by: str | None
) -> None:
    passes = not required or (
        requested_by is not None and decided_by is not None and requested_by != decided_by
    )
    if passes:
        check_distinct_approver(required=required, requested_by=requested_by, decided_by=decided_by)
    else:
        with pytest.raises(PermissionDenied):
            check_distinct_approver(
                required=required, requested_by=requested_by, decided_by=decided_by
            )
