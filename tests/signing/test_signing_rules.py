"""The signing-key state machine, timing rules and Ed25519 helpers, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.core.errors import InvalidState
from byteor_cloud.signing import keys
from byteor_cloud.signing.rules import (
    ACTIVATION_DELAY,
    PUBLISHED,
    TRANSITIONS,
    KeyEvent,
    KeyStatus,
    activation_delay,
    due_event,
    is_published,
    next_status,
)
from byteor_cloud.signing.service import verify

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BOX = keys.signing_box("rules-test-master-key")


def test_keys_only_move_forward_and_retired_is_final() -> None:
    order = list(KeyStatus)
    assert order == [KeyStatus.next, KeyStatus.active, KeyStatus.retiring, KeyStatus.retired]
    for (status, _event), target in TRANSITIONS.items():
        assert order.index(target) > order.index(status)
    assert not [key for key in TRANSITIONS if key[0] is KeyStatus.retired]


def test_the_active_key_cannot_be_retired_only_superseded() -> None:
    with pytest.raises(InvalidState) as refused:
        next_status(KeyStatus.active, KeyEvent.retire)
    assert refused.value.code == "active_key_required"
    assert next_status(KeyStatus.active, KeyEvent.supersede) is KeyStatus.retiring
    with pytest.raises(InvalidState) as again:
        next_status(KeyStatus.retired, KeyEvent.retire)
    assert again.value.code == "invalid_key_transition"


@given(st.lists(st.sampled_from(list(KeyEvent)), max_size=20))
def test_any_event_sequence_follows_the_table(events: list[KeyEvent]) -> None:
    status = KeyStatus.next
    for event in events:
        if (status, event) in TRANSITIONS:
            status = next_status(status, event)
        else:
            with pytest.raises(InvalidState):
                next_status(status, event)
    # Whatever happened, a key is published exactly until it is retired.
    assert is_published(status) == (status is not KeyStatus.retired)


def test_published_means_not_retired() -> None:
    assert frozenset(KeyStatus) - PUBLISHED == {KeyStatus.retired}


def test_activation_waits_three_of_the_longest_heartbeat_intervals() -> None:
    assert ACTIVATION_DELAY.total_seconds() == 90
    assert activation_delay(None) == ACTIVATION_DELAY
    assert activation_delay(10) == ACTIVATION_DELAY  # never shorter than the default
    assert activation_delay(120) == timedelta(seconds=360)


def test_the_sweep_acts_only_on_due_keys() -> None:
    at = NOW
    assert due_event(KeyStatus.next, activate_at=at, not_after=None, now=at) is KeyEvent.activate
    before = at - timedelta(seconds=1)
    assert due_event(KeyStatus.next, activate_at=at, not_after=None, now=before) is None
    assert due_event(KeyStatus.retiring, activate_at=None, not_after=at, now=at) is KeyEvent.expire
    assert due_event(KeyStatus.retiring, activate_at=None, not_after=at, now=before) is None
    assert due_event(KeyStatus.active, activate_at=before, not_after=None, now=at) is None
    assert due_event(KeyStatus.retired, activate_at=before, not_after=before, now=at) is None


def _entry(
    status: str = "active", not_after: str | None = None
) -> tuple[dict[str, str | None], str]:
    pair = keys.generate(BOX)
    entry = {
        "kid": "K1",
        "alg": "Ed25519",
        "public_key": pair.public_key,
        "status": status,
        "not_after": not_after,
    }
    return entry, keys.sign_sealed(pair.private_key_encrypted, BOX, b"payload")


def test_public_keys_and_signatures_are_raw_bytes_in_unpadded_base64url() -> None:
    entry, signature = _entry()
    assert len(keys.from_b64url(str(entry["public_key"]))) == 32
    assert len(keys.from_b64url(signature)) == 64
    assert "=" not in str(entry["public_key"]) + signature
    with pytest.raises(ValueError, match="base64url"):
        keys.from_b64url(signature + "==")


def test_verify_accepts_the_signature_and_rejects_anything_else() -> None:
    entry, signature = _entry()
    assert verify([entry], "K1", b"payload", signature, now=NOW)
    assert not verify([entry], "K1", b"payload!", signature, now=NOW)
    assert not verify([entry], "K2", b"payload", signature, now=NOW)
    assert not verify([entry], "K1", b"payload", signature[:-2] + "AA", now=NOW)
    assert not verify([entry], "K1", b"payload", "not a signature", now=NOW)
    assert not verify([{**entry, "status": "retired"}], "K1", b"payload", signature, now=NOW)
    assert not verify([{**entry, "alg": "RS256"}], "K1", b"payload", signature, now=NOW)


def test_a_retiring_key_verifies_until_its_not_after() -> None:
    entry, signature = _entry("retiring", "2026-12-05T12:00:00Z")
    assert verify([entry], "K1", b"payload", signature, now=NOW)
    assert not verify([entry], "K1", b"payload", signature, now=NOW + timedelta(seconds=1))
    garbled = {**entry, "not_after": "soon"}
    assert not verify([garbled], "K1", b"payload", signature, now=NOW)


def test_a_sealed_private_key_opens_only_with_its_master_key_and_purpose() -> None:
    pair = keys.generate(BOX)
    assert len(BOX.decrypt(pair.private_key_encrypted)) == 32
    for other in (
        keys.signing_box("another-master-key"),
        SecretBox("rules-test-master-key", "idempotency"),
    ):
        with pytest.raises(ValueError, match="master key"):
            other.decrypt(pair.private_key_encrypted)
