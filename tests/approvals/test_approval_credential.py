"""Approval credential v1: canonical JSON, the payload, issuing and encoding (no database)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from byteor_cloud.approvals.credential import (
    CredentialPayload,
    canonical_json,
    encode_credential,
    issue_payload,
    verify_credential,
)
from byteor_cloud.core.clock import set_clock
from byteor_cloud.signing import keys

BOX = keys.signing_box("approval-credential-format-tests")
SPEC_HASH = "sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657"
HOOK = "http_post:https://hooks.example.com/orders"
NOTIFY = "exec:/usr/bin/notify"
KID = "01JEZ7V4C9K2M3N5P6Q7R8S9TA"
ISSUED = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

GOLDEN = CredentialPayload(
    kid=KID,
    org_id="01JEZ7V4C9K2M3N5P6Q7R8S9TB",
    project_id="01JEZ7V4C9K2M3N5P6Q7R8S9TC",
    environment_id="01JEZ7V4C9K2M3N5P6Q7R8S9TD",
    environment_posture="prod",
    spec_hash=SPEC_HASH,
    capabilities=(HOOK, NOTIFY),
    issued_at=ISSUED,
    expires_at=ISSUED + timedelta(days=1),
    issued_by="01JEZ7V4C9K2M3N5P6Q7R8S9TE",
    approval_id="01JEZ7V4C9K2M3N5P6Q7R8S9TF",
)
# Written by hand from PRODUCT.md §9: keys sorted, no whitespace, capabilities sorted.
GOLDEN_JSON = (
    '{"approval_id":"01JEZ7V4C9K2M3N5P6Q7R8S9TF",'
    '"capabilities":["exec:/usr/bin/notify","http_post:https://hooks.example.com/orders"],'
    '"environment_id":"01JEZ7V4C9K2M3N5P6Q7R8S9TD",'
    '"environment_posture":"prod",'
    '"expires_at":"2026-12-06T12:00:00Z",'
    '"issued_at":"2026-12-05T12:00:00Z",'
    '"issued_by":"01JEZ7V4C9K2M3N5P6Q7R8S9TE",'
    '"kid":"01JEZ7V4C9K2M3N5P6Q7R8S9TA",'
    '"org_id":"01JEZ7V4C9K2M3N5P6Q7R8S9TB",'
    '"project_id":"01JEZ7V4C9K2M3N5P6Q7R8S9TC",'
    '"spec_hash":"sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657",'
    '"v":1}'
)


@dataclasses.dataclass(frozen=True)
class Key:
    """An org signing key made the way the control plane makes them."""

    kid: str
    pair: keys.NewKeyPair

    @classmethod
    def new(cls, kid: str) -> Key:
        return cls(kid, keys.generate(BOX))

    def sign(self, data: bytes) -> tuple[str, bytes]:
        signature = keys.sign_sealed(self.pair.private_key_encrypted, BOX, data)
        return self.kid, keys.from_b64url(signature)

    def entry(self) -> dict[str, object]:
        return {
            "kid": self.kid,
            "alg": "Ed25519",
            "public_key": self.pair.public_key,
            "status": "active",
            "not_after": None,
        }


KEY = Key.new(KID)


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    """The clock reads the list's first item; tests set it."""
    now = [ISSUED]
    set_clock(lambda: now[0])
    yield now
    set_clock(None)


# --- canonical JSON -------------------------------------------------------------------------


def test_canonical_json_sorts_keys_by_utf16_code_units_as_rfc_8785_does() -> None:
    # RFC 8785 §3.2.3's example: the emoji (surrogates D83D DE00) sorts before U+FB33,
    # although its code point (U+1F600) is higher.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_canonical_json_escapes_strings_as_rfc_8785_does() -> None:
    # RFC 8785 §3.2.2.2: only '"', '\' and C0 controls are escaped (short forms where JSON
    # has them, else lowercase \u00xx); '/', DEL and non-ASCII are written as themselves.
    text = '\u20ac$\x0f\nA\'B"\\\\"/\x7f\u2028\x1f\b\f\r\t'
    expected = '"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/\x7f\u2028\\u001f\\b\\f\\r\\t"'
    assert canonical_json(text) == expected.encode("utf-8")


def test_canonical_json_has_no_whitespace_and_writes_integers_plainly() -> None:
    value = {"b": [1, -2, 0, True, False, None], "a": {"z": "", "y": []}, "c": 2**53 - 1}
    assert canonical_json(value) == (
        b'{"a":{"y":[],"z":""},"b":[1,-2,0,true,false,null],"c":9007199254740991}'
    )
    assert canonical_json(("x", "y")) == b'["x","y"]'


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, TypeError),  # the payloads carry no fractions: refused, not guessed at
        (2**53, ValueError),  # not exactly representable as a JSON (IEEE-754) number
        ({1: "a"}, TypeError),
        ({"a"}, TypeError),
        (b"bytes", TypeError),
        ("\ud800", ValueError),  # a lone surrogate is not UTF-8
    ],
    ids=["float", "big-int", "int-key", "set", "bytes", "lone-surrogate"],
)
def test_canonical_json_refuses_what_it_cannot_write_exactly(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        canonical_json(value)


# --- the payload ---------------------------------------------------------------------------


def test_the_payload_bytes_match_the_hand_written_golden_example() -> None:
    assert GOLDEN.canonical_bytes() == GOLDEN_JSON.encode("ascii")
    token = encode_credential(GOLDEN, KEY.sign)
    assert token.split(".")[0] == keys.b64url(GOLDEN_JSON.encode("ascii"))


def test_the_payload_has_exactly_the_fields_of_the_specification() -> None:
    assert [field.name for field in dataclasses.fields(CredentialPayload)] == [
        "v",
        "kid",
        "org_id",
        "project_id",
        "environment_id",
        "environment_posture",
        "spec_hash",
        "capabilities",
        "issued_at",
        "expires_at",
        "issued_by",
        "approval_id",
    ]
    assert GOLDEN.v == 1


def test_capabilities_are_sorted_and_deduplicated_whatever_the_input_order() -> None:
    shuffled = dataclasses.replace(GOLDEN, capabilities=(NOTIFY, HOOK, NOTIFY, HOOK))
    assert shuffled.capabilities == (NOTIFY, HOOK)
    assert shuffled == GOLDEN
    assert shuffled.canonical_bytes() == GOLDEN.canonical_bytes()


def test_times_are_kept_in_utc_whatever_zone_they_were_given_in() -> None:
    plus_two = timezone(timedelta(hours=2))
    moved = dataclasses.replace(
        GOLDEN,
        issued_at=ISSUED.astimezone(plus_two),
        expires_at=(ISSUED + timedelta(days=1)).astimezone(plus_two),
    )
    assert moved.issued_at.tzinfo is UTC
    assert moved.canonical_bytes() == GOLDEN.canonical_bytes()


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 2},
        {"kid": ""},
        {"org_id": 7},
        {"environment_posture": "qa"},
        {"capabilities": ("",)},
        {"capabilities": HOOK},
        {"issued_at": ISSUED.replace(tzinfo=None)},
        {"issued_at": ISSUED.replace(microsecond=1)},
        {"expires_at": ISSUED},
        {"expires_at": ISSUED - timedelta(seconds=1)},
    ],
    ids=[
        "version",
        "empty-kid",
        "int-id",
        "posture",
        "empty-capability",
        "capabilities-as-one-string",
        "naive-time",
        "fractional-second",
        "expires-at-issue",
        "expires-before-issue",
    ],
)
def test_a_payload_that_breaks_the_format_cannot_be_built(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every refusal is a ValueError
        dataclasses.replace(GOLDEN, **changes)


# --- issuing and encoding ------------------------------------------------------------------


def _issue(**changes: object) -> CredentialPayload:
    arguments: dict[str, object] = {
        "kid": KID,
        "org_id": GOLDEN.org_id,
        "project_id": GOLDEN.project_id,
        "environment_id": GOLDEN.environment_id,
        "environment_posture": "prod",
        "spec_hash": SPEC_HASH,
        "capabilities": [NOTIFY, HOOK, HOOK],
        "issued_by": GOLDEN.issued_by,
        "approval_id": GOLDEN.approval_id,
        "ttl": timedelta(days=1),
    }
    return issue_payload(**(arguments | changes))


def test_issuing_reads_the_clock_truncated_to_the_second(clock: list[datetime]) -> None:
    clock[0] = ISSUED.replace(microsecond=999_999)
    payload = _issue()
    assert payload.issued_at == ISSUED
    assert payload.expires_at == ISSUED + timedelta(days=1)
    assert payload == GOLDEN


def test_issuing_follows_the_clock_in_utc(clock: list[datetime]) -> None:
    clock[0] = datetime(2026, 12, 5, 14, 0, 30, 123, tzinfo=timezone(timedelta(hours=2)))
    payload = _issue(ttl=timedelta(seconds=90))
    assert payload.to_json()["issued_at"] == "2026-12-05T12:00:30Z"
    assert payload.to_json()["expires_at"] == "2026-12-05T12:02:00Z"


@pytest.mark.parametrize(
    "ttl",
    [timedelta(0), timedelta(seconds=-1), timedelta(seconds=1.5)],
    ids=["zero", "negative", "fractional"],
)
def test_issuing_needs_a_positive_whole_second_ttl(clock: list[datetime], ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="ttl"):
        _issue(ttl=ttl)


def test_issuing_refuses_one_string_for_the_capabilities(clock: list[datetime]) -> None:
    with pytest.raises(TypeError, match="capabilities"):
        _issue(capabilities=HOOK)


def test_a_credential_is_two_unpadded_base64url_parts_signing_the_payload_bytes() -> None:
    token = encode_credential(GOLDEN, KEY.sign)
    payload_part, signature_part = token.split(".")
    assert "=" not in token
    assert keys.from_b64url(payload_part) == GOLDEN.canonical_bytes()
    assert len(keys.from_b64url(signature_part)) == 64
    assert keys.verify_signature(KEY.pair.public_key, GOLDEN.canonical_bytes(), signature_part)


def test_encoding_refuses_a_signer_that_used_another_key() -> None:
    other = Key.new("01JEZ7V4C9K2M3N5P6Q7R8S9TZ")
    with pytest.raises(ValueError, match="names key"):
        encode_credential(GOLDEN, other.sign)


def test_encoding_refuses_a_signature_that_is_not_64_bytes() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        encode_credential(GOLDEN, lambda data: (KID, KEY.sign(data)[1][:63]))


def test_an_issued_credential_round_trips_through_the_verifier(clock: list[datetime]) -> None:
    payload = _issue()
    token = encode_credential(payload, KEY.sign)
    verified = verify_credential(
        token,
        trusted_keys=[KEY.entry()],
        spec_hash=SPEC_HASH,
        environment_id=GOLDEN.environment_id,
        environment_posture="prod",
        required_capabilities=[HOOK, NOTIFY],
    )
    assert verified == payload
