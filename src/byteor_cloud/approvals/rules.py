"""The approval status machine and the distinct-approver rule (pure)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from byteor_cloud.core.errors import InvalidState, PermissionDenied

# A pending request lapses after 7 days (PRODUCT.md §8); an issued credential lives for the
# environment's `approval_ttl_s`.
PENDING_LIFETIME = timedelta(days=7)


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    expired = "expired"
    revoked = "revoked"


class ApprovalEvent(StrEnum):
    approve = "approve"
    deny = "deny"
    revoke = "revoke"
    expire = "expire"


A, V = ApprovalStatus, ApprovalEvent

APPROVAL_TRANSITIONS: dict[tuple[ApprovalStatus, ApprovalEvent], ApprovalStatus] = {
    (A.pending, V.approve): A.approved,
    (A.pending, V.deny): A.denied,
    (A.pending, V.expire): A.expired,
    (A.approved, V.revoke): A.revoked,
    (A.approved, V.expire): A.expired,
}


_PAST = {V.approve: "approved", V.deny: "denied", V.revoke: "revoked", V.expire: "expired"}


def next_status(status: ApprovalStatus, event: ApprovalEvent) -> ApprovalStatus:
    """The status after `event`; a decision on a request that is not pending is 409."""
    after = APPROVAL_TRANSITIONS.get((status, event))
    if after is None:
        raise InvalidState(
            f"an approval that is {status.value} cannot be {_PAST[event]}",
            code="invalid_state",
            details={"status": status.value, "event": event.value},
        )
    return after


def check_distinct_approver(
    *, required: bool, requested_by: str | None, decided_by: str | None
) -> None:
    """With `require_distinct_approver`, the deciding person must not be the requester.
    Both are people: an API key or token counts as the user who created it, so a key
    cannot approve what its creator asked for. Unknown people never pass."""
    if not required:
        return
    if decided_by is None or requested_by is None or decided_by == requested_by:
        raise PermissionDenied(
            "this environment requires an approver other than the requester",
            code="distinct_approver_required",
        )
