"""The signing-key state machine as data, and the timing rules of rotation: pure.

    next ──activate──▶ active ──supersede──▶ retiring ──expire──▶ retired
      └──────────────────retire (operator)─────────┴───────────────▶ retired

A key is published (in the signing-keys document) from the moment it exists as `next`
until it is `retired`, so agents learn a key before anything is signed with it; only the
`active` key signs; a `retiring` key still verifies until its `not_after`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from byteor_cloud.core.errors import InvalidState


class KeyStatus(StrEnum):
    next = "next"  # published, not yet signing
    active = "active"  # exactly one per org: signs
    retiring = "retiring"  # verifies until not_after
    retired = "retired"  # verifies nothing


class KeyEvent(StrEnum):
    activate = "activate"  # the sweep at activate_at, or a rotation asked to act now
    supersede = "supersede"  # another key became active: the grace period starts
    expire = "expire"  # the sweep, once the grace period is over
    retire = "retire"  # an operator: cancel a rotation, or end a grace period early


TRANSITIONS: dict[tuple[KeyStatus, KeyEvent], KeyStatus] = {
    (KeyStatus.next, KeyEvent.activate): KeyStatus.active,
    (KeyStatus.next, KeyEvent.retire): KeyStatus.retired,
    (KeyStatus.active, KeyEvent.supersede): KeyStatus.retiring,
    (KeyStatus.retiring, KeyEvent.expire): KeyStatus.retired,
    (KeyStatus.retiring, KeyEvent.retire): KeyStatus.retired,
}
# The active key is never retired directly: an org must always have a key that signs,
# so it leaves `active` only when a successor takes over (rotate first).

PUBLISHED = frozenset({KeyStatus.next, KeyStatus.active, KeyStatus.retiring})

# The default agent heartbeat interval (PRODUCT.md §8). Agents refresh their key lists on
# their regular polls, so after three intervals every live agent has seen a new key.
HEARTBEAT_INTERVAL = timedelta(seconds=30)
HEARTBEATS_BEFORE_ACTIVATION = 3
ACTIVATION_DELAY = HEARTBEAT_INTERVAL * HEARTBEATS_BEFORE_ACTIVATION
# How long a superseded key keeps verifying. 24 h is the default lifetime of an approval
# credential (`approval_ttl_s`), so credentials and bundle manifests signed just before a
# rotation stay verifiable for the life they were issued with; an operator who needs the
# old key gone sooner (a compromise) retires it explicitly.
RETIRING_GRACE = timedelta(hours=24)


def next_status(status: KeyStatus, event: KeyEvent) -> KeyStatus:
    """The status after `event`, or InvalidState (409) naming what was refused."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        if status is KeyStatus.active and event is KeyEvent.retire:
            raise InvalidState(
                "the active signing key cannot be retired; rotate to a new key first",
                code="active_key_required",
            ) from None
        raise InvalidState(
            f"a {status.value} signing key cannot {event.value}",
            code="invalid_key_transition",
            details={"status": status.value, "event": event.value},
        ) from None


def is_published(status: KeyStatus) -> bool:
    """Whether the key appears in the signing-keys document (and may verify)."""
    return status in PUBLISHED


def activation_delay(longest_heartbeat_interval_s: int | None) -> timedelta:
    """How long a `next` key waits: three of the org's longest heartbeat intervals, and
    never less than three default intervals (an org with no environment yet)."""
    if longest_heartbeat_interval_s is None:
        return ACTIVATION_DELAY
    longest = timedelta(seconds=longest_heartbeat_interval_s) * HEARTBEATS_BEFORE_ACTIVATION
    return max(ACTIVATION_DELAY, longest)


def due_event(
    status: KeyStatus,
    *,
    activate_at: datetime | None,
    not_after: datetime | None,
    now: datetime,
) -> KeyEvent | None:
    """What the sweep does to a key at `now`, if anything."""
    if status is KeyStatus.next and activate_at is not None and activate_at <= now:
        return KeyEvent.activate
    if status is KeyStatus.retiring and not_after is not None and not_after <= now:
        return KeyEvent.expire
    return None
