"""The approval-credential verifier: one test per failure code, each built so that every
earlier check passes; the order between codes; clock skew; key states; garbage."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from byteor_cloud.approvals import credential
from byteor_cloud.approvals.credential import (
    CredentialCode,
    CredentialError,
    CredentialPayload,
    canonical_json,
    encode_credential,
    verify_credential,
)
from byteor_cloud.signing import keys

BOX = keys.signing_box("approval-credential-verifier-tests")
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SPEC_HASH = "sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657"
OTHER_SPEC_HASH = "sha256:" + "0" * 64
ENVIRONMENT = "01JEZ7V4C9K2M3N5P6Q7R8S9TD"
HOOK = "http_post:https://hooks.example.com/orders"
NOTIFY = "exec:/usr/bin/notify"
ORDER = list(CredentialCode)


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

    def entry(self, status: str = "active", not_after: str | None = None) -> dict[str, object]:
        return {
            "kid": self.kid,
            "alg": "Ed25519",
            "public_key": self.pair.public_key,
            "status": status,
            "not_after": not_after,
        }


KEY = Key.new("01JEZ7V4C9K2M3N5P6Q7R8S9TA")  # the trusted key that signs
OTHER = Key.new("01JEZ7V4C9K2M3N5P6Q7R8S9TY")  # a key the verifier does not trust
THIRD = Key.new("01JEZ7V4C9K2M3N5P6Q7R8S9TZ")  # trusted, but signs nothing here

PAYLOAD = CredentialPayload(
    kid=KEY.kid,
    org_id="01JEZ7V4C9K2M3N5P6Q7R8S9TB",
    project_id="01JEZ7V4C9K2M3N5P6Q7R8S9TC",
    environment_id=ENVIRONMENT,
    environment_posture="prod",
    spec_hash=SPEC_HASH,
    capabilities=(HOOK, NOTIFY),
    issued_at=NOW - timedelta(hours=1),
    expires_at=NOW + timedelta(hours=23),
    issued_by="01JEZ7V4C9K2M3N5P6Q7R8S9TE",
    approval_id="01JEZ7V4C9K2M3N5P6Q7R8S9TF",
)
TOKEN = encode_credential(PAYLOAD, KEY.sign)
DOCUMENT: dict[str, object] = PAYLOAD.to_json()


def signed(data: bytes, signer: Key = KEY) -> str:
    """A token carrying exactly `data`, correctly signed by `signer`."""
    return f"{keys.b64url(data)}.{keys.b64url(signer.sign(data)[1])}"


def document_token(changes: dict[str, object], signer: Key = KEY) -> str:
    """The canonical JSON of the payload with `changes` (None drops a field), signed."""
    document = {k: v for k, v in (DOCUMENT | changes).items() if v is not None}
    return signed(canonical_json(document), signer)


def verify(token: str, **overrides: Any) -> CredentialPayload:
    """The verifier as an agent running PAYLOAD's spec in its environment at NOW calls it."""
    arguments: dict[str, Any] = {
        "trusted_keys": [KEY.entry(), THIRD.entry()],
        "spec_hash": SPEC_HASH,
        "environment_id": ENVIRONMENT,
        "environment_posture": "prod",
        "required_capabilities": [HOOK],
        "now": NOW,
    }
    return verify_credential(token, **(arguments | overrides))


def refused(token: str, **overrides: Any) -> CredentialCode:
    with pytest.raises(CredentialError) as info:
        verify(token, **overrides)
    return info.value.code


def test_a_valid_credential_verifies_and_gives_back_its_payload() -> None:
    assert verify(TOKEN) == PAYLOAD


# --- one test per code: every earlier check passes, only this one fails ----------------------


def _raw(payload_replace: tuple[bytes, bytes]) -> str:
    old, new = payload_replace
    data = PAYLOAD.canonical_bytes()
    assert old in data
    return signed(data.replace(old, new, 1))


def _respell_last_char(token: str, part: int) -> str:
    """The same bytes with unused trailing bits set: a second spelling of one value."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    parts = token.split(".")
    last = parts[part][-1]
    parts[part] = parts[part][:-1] + alphabet[alphabet.index(last) | 1]
    assert parts[part] != token.split(".")[part]
    return ".".join(parts)


def _payload_with_unused_bits() -> str:
    """A valid token whose payload length is not a multiple of 3 bytes, so that its
    base64url text ends in a character with unused bits."""
    for issued_by in ("x", "xx", "xxx"):
        token = document_token({"issued_by": issued_by})
        if len(canonical_json(DOCUMENT | {"issued_by": issued_by})) % 3:
            assert verify(token).issued_by == issued_by
            return token
    raise AssertionError("unreachable: one of three lengths is not a multiple of 3")


# Valid but for its size: about 100,000 characters once encoded.
_MANY_CAPABILITIES = [f"exec:/opt/tool-{index:05d}" for index in range(4_000)]
_SIGNATURE = TOKEN.split(".")[1]
_PAYLOAD_PART = TOKEN.split(".")[0]
MALFORMED: dict[str, Callable[[], str]] = {
    "empty": lambda: "",
    "one-part": lambda: _PAYLOAD_PART,
    "three-parts": lambda: TOKEN + "." + _SIGNATURE,
    "empty-parts": lambda: ".",
    "padded-payload": lambda: _PAYLOAD_PART + "=." + _SIGNATURE,
    "padded-signature": lambda: TOKEN + "==",
    "standard-base64-alphabet": lambda: TOKEN.replace("-", "+").replace("_", "/") + "+/",
    "surrounding-whitespace": lambda: TOKEN + "\n",
    "non-ascii": lambda: TOKEN + "\u00e9",
    "respelled-payload": lambda: _respell_last_char(_payload_with_unused_bits(), 0),
    "respelled-signature": lambda: _respell_last_char(TOKEN, 1),
    "signature-63-bytes": lambda: _PAYLOAD_PART + "." + keys.b64url(KEY.sign(b"")[1][:63]),
    "signature-65-bytes": lambda: _PAYLOAD_PART + "." + keys.b64url(KEY.sign(b"")[1] + b"\0"),
    "too-long": lambda: document_token({"capabilities": _MANY_CAPABILITIES}),
    "not-utf8": lambda: signed(b"\xff{}"),
    "not-json": lambda: signed(b'{"v":1'),
    "json-array": lambda: signed(b"[]"),
    "json-null": lambda: signed(b"null"),
    "nan": lambda: signed(b'{"kid":"' + KEY.kid.encode() + b'","v":2,"x":NaN}'),
    "deep-nesting": lambda: signed(b"[" * 30_000),
    "duplicate-key": lambda: _raw((b'"v":1}', b'"v":1,"v":1}')),
    "duplicate-key-in-another-version": lambda: signed(
        b'{"kid":"' + KEY.kid.encode() + b'","v":2,"v":2}'
    ),
    "missing-kid": lambda: document_token({"kid": None}),
    "empty-kid": lambda: document_token({"kid": ""}),
    "empty-kid-in-another-version": lambda: signed(b'{"kid":"","v":2}'),
    "missing-field": lambda: document_token({"approval_id": None}),
    "extra-field": lambda: document_token({"note": "hello"}),
    "v-as-string": lambda: document_token({"v": "1"}),
    "v-as-bool": lambda: document_token({"v": True}),
    "v-as-false": lambda: signed(b'{"kid":"' + KEY.kid.encode() + b'","v":false}'),
    "v-as-float": lambda: _raw((b'"v":1}', b'"v":1.0}')),
    "id-as-int": lambda: document_token({"org_id": 7}),
    "empty-id": lambda: document_token({"issued_by": ""}),
    "posture-unknown": lambda: document_token({"environment_posture": "qa"}),
    "capabilities-as-string": lambda: document_token({"capabilities": HOOK}),
    "capability-as-int": lambda: document_token({"capabilities": [1]}),
    "capability-empty": lambda: document_token({"capabilities": [""]}),
    "capabilities-unsorted": lambda: document_token({"capabilities": [HOOK, NOTIFY]}),
    "capabilities-duplicated": lambda: document_token({"capabilities": [HOOK, HOOK]}),
    "time-fractional": lambda: document_token({"issued_at": "2026-12-05T11:00:00.5Z"}),
    "time-offset": lambda: document_token({"issued_at": "2026-12-05T11:00:00+00:00"}),
    "time-lowercase": lambda: document_token({"issued_at": "2026-12-05t11:00:00z"}),
    "time-date-only": lambda: document_token({"issued_at": "2026-12-05"}),
    "time-not-a-day": lambda: document_token({"issued_at": "2026-02-30T11:00:00Z"}),
    "time-leap-second": lambda: document_token({"issued_at": "2026-12-05T11:00:60Z"}),
    "time-as-number": lambda: document_token({"issued_at": 1_796_468_400}),
    "expires-at-issue": lambda: document_token({"expires_at": DOCUMENT["issued_at"]}),
    "expires-before-issue": lambda: document_token({"expires_at": "2026-12-05T10:59:59Z"}),
    "whitespace": lambda: _raw((b'"v":1}', b'"v": 1}')),
    "keys-unsorted": lambda: signed(json.dumps(DOCUMENT, separators=(",", ":")).encode()),
    "needless-escape": lambda: _raw((b'"prod"', b'"pro\\u0064"')),
    "lone-surrogate": lambda: _raw((b'"issued_by":"', b'"issued_by":"\\ud800')),
}


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_credential_malformed(make: Callable[[], str]) -> None:
    # Signed by the trusted key wherever a signature can be: only the shape is wrong.
    assert refused(make()) == "credential_malformed"


def test_only_the_size_limit_refuses_the_long_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    token = document_token({"capabilities": _MANY_CAPABILITIES})
    assert len(token) > credential.MAX_TOKEN_CHARS
    monkeypatch.setattr(credential, "MAX_TOKEN_CHARS", len(token))
    verified = verify(token, required_capabilities=_MANY_CAPABILITIES)
    assert verified.capabilities == tuple(_MANY_CAPABILITIES)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (MALFORMED["capabilities-unsorted"], "sorted and de-duplicated"),
        (MALFORMED["extra-field"], "unexpected ['note']"),
        (MALFORMED["missing-field"], "missing ['approval_id']"),
        (MALFORMED["signature-63-bytes"], "not 64 bytes"),
        (MALFORMED["time-offset"], "issued_at must be RFC 3339"),
        (MALFORMED["time-not-a-day"], "issued_at is not a real time"),
        (MALFORMED["whitespace"], "not canonical JSON"),
    ],
    ids=["unsorted", "extra", "missing", "signature", "offset", "not-a-day", "whitespace"],
)
def test_a_malformed_credential_says_what_is_wrong(make: Callable[[], str], message: str) -> None:
    with pytest.raises(CredentialError, match=re.escape(message)):
        verify(make())


def test_unknown_key() -> None:
    # Well formed and correctly signed, but by a key the verifier does not trust.
    token = encode_credential(dataclasses.replace(PAYLOAD, kid=OTHER.kid), OTHER.sign)
    assert refused(token) == "unknown_key"
    assert verify(token, trusted_keys=[OTHER.entry()]).kid == OTHER.kid


def test_bad_signature() -> None:
    # Names the trusted key, but another key signed it.
    token = encode_credential(PAYLOAD, lambda data: (KEY.kid, OTHER.sign(data)[1]))
    assert refused(token) == "bad_signature"


def test_bad_signature_when_the_payload_was_changed_after_signing() -> None:
    changed = PAYLOAD.canonical_bytes().replace(b'"prod"', b'"dev"')
    token = f"{keys.b64url(changed)}.{_SIGNATURE}"
    assert refused(token, environment_posture="dev") == "bad_signature"


def test_unsupported_version() -> None:
    # Properly signed by the trusted key, same fields, but v=2.
    assert refused(document_token({"v": 2})) == "unsupported_version"


def test_spec_hash_mismatch() -> None:
    assert refused(TOKEN, spec_hash=OTHER_SPEC_HASH) == "spec_hash_mismatch"


@pytest.mark.parametrize(
    "overrides",
    [{"environment_id": "01JEZ7V4C9K2M3N5P6Q7R8S9TX"}, {"environment_posture": "staging"}],
    ids=["environment-id", "posture"],
)
def test_environment_mismatch(overrides: dict[str, str]) -> None:
    assert refused(TOKEN, **overrides) == "environment_mismatch"


def test_expired() -> None:
    assert refused(TOKEN, now=PAYLOAD.expires_at + timedelta(seconds=61)) == "expired"


def test_missing_capability() -> None:
    with pytest.raises(CredentialError) as info:
        verify(TOKEN, required_capabilities=[HOOK, "exec:/bin/rm", "exec:/bin/dd"])
    assert info.value.code == "missing_capability"
    assert info.value.details == {"missing": ["exec:/bin/dd", "exec:/bin/rm"]}


# --- the order: with several problems, the earliest code wins ------------------------------


@dataclasses.dataclass
class Case:
    changes: dict[str, object] = dataclasses.field(default_factory=dict)
    signer: Key = KEY
    truncate_signature: bool = False
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    def token(self) -> str:
        data = canonical_json(DOCUMENT | self.changes)
        signature = self.signer.sign(data)[1]
        if self.truncate_signature:
            signature = signature[:-1]
        return f"{keys.b64url(data)}.{keys.b64url(signature)}"


def _malformed(case: Case) -> None:
    case.truncate_signature = True


def _unknown_key(case: Case) -> None:
    case.overrides["trusted_keys"] = [THIRD.entry()]


def _bad_signature(case: Case) -> None:
    case.signer = OTHER


def _unsupported_version(case: Case) -> None:
    case.changes["v"] = 2


def _spec_hash_mismatch(case: Case) -> None:
    case.overrides["spec_hash"] = OTHER_SPEC_HASH


def _environment_mismatch(case: Case) -> None:
    case.overrides["environment_id"] = "01JEZ7V4C9K2M3N5P6Q7R8S9TX"


def _expired(case: Case) -> None:
    case.overrides["now"] = PAYLOAD.expires_at + timedelta(minutes=5)


def _missing_capability(case: Case) -> None:
    case.overrides["required_capabilities"] = [HOOK, "exec:/bin/rm"]


PROBLEMS: dict[CredentialCode, Callable[[Case], None]] = {
    CredentialCode.malformed: _malformed,
    CredentialCode.unknown_key: _unknown_key,
    CredentialCode.bad_signature: _bad_signature,
    CredentialCode.unsupported_version: _unsupported_version,
    CredentialCode.spec_hash_mismatch: _spec_hash_mismatch,
    CredentialCode.environment_mismatch: _environment_mismatch,
    CredentialCode.expired: _expired,
    CredentialCode.missing_capability: _missing_capability,
}


def _judge(problems: list[CredentialCode]) -> CredentialCode:
    case = Case()
    for problem in problems:
        PROBLEMS[problem](case)
    return refused(case.token(), **case.overrides)


def test_the_codes_are_checked_in_the_specified_order() -> None:
    assert [code.value for code in ORDER] == [
        "credential_malformed",
        "unknown_key",
        "bad_signature",
        "unsupported_version",
        "spec_hash_mismatch",
        "environment_mismatch",
        "expired",
        "missing_capability",
    ]


@pytest.mark.parametrize("code", ORDER, ids=[code.value for code in ORDER])
def test_each_problem_alone_gives_its_own_code(code: CredentialCode) -> None:
    assert _judge([code]) == code


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.combinations(ORDER, 2)),
    ids=[f"{a.value}-before-{b.value}" for a, b in itertools.combinations(ORDER, 2)],
)
def test_of_two_problems_the_earlier_code_wins(
    first: CredentialCode, second: CredentialCode
) -> None:
    assert _judge([first, second]) == first
    assert _judge([second, first]) == first


@pytest.mark.parametrize("start", range(len(ORDER)), ids=[code.value for code in ORDER])
def test_with_every_later_problem_too_the_earliest_code_wins(start: int) -> None:
    assert _judge(ORDER[start:]) == ORDER[start]


def test_a_forged_payload_claiming_another_version_is_a_bad_signature() -> None:
    # `v` is trusted only once the signature holds.
    assert refused(document_token({"v": 2}, signer=OTHER)) == "bad_signature"


def test_another_version_is_judged_on_its_envelope_not_on_the_v1_field_set() -> None:
    # A future version may carry other fields: it is unsupported, not malformed, as long
    # as it names a key and a version and its signature holds.
    reshaped = signed(canonical_json({"v": 2, "kid": KEY.kid, "scope": {"any": "thing"}}))
    assert refused(reshaped) == "unsupported_version"
    assert refused(signed(canonical_json({"v": 2, "kid": KEY.kid}), OTHER)) == "bad_signature"


# --- clock skew ------------------------------------------------------------------------------

SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (PAYLOAD.expires_at, True),
        (PAYLOAD.expires_at + 60 * SECOND, True),
        (PAYLOAD.expires_at + 60 * SECOND + MICROSECOND, False),
        (PAYLOAD.expires_at + 61 * SECOND, False),
        (PAYLOAD.issued_at, True),
        (PAYLOAD.issued_at - 60 * SECOND, True),
        (PAYLOAD.issued_at - 60 * SECOND - MICROSECOND, False),
        (PAYLOAD.issued_at - 61 * SECOND, False),
    ],
    ids=[
        "at-expiry",
        "expiry-plus-60s",
        "expiry-plus-60s-and-a-bit",
        "expiry-plus-61s",
        "at-issue",
        "issue-minus-60s",
        "issue-minus-60s-and-a-bit",
        "issue-minus-61s",
    ],
)
def test_sixty_seconds_of_clock_skew_are_allowed_on_both_sides(
    now: datetime, accepted: bool
) -> None:
    if accepted:
        assert verify(TOKEN, now=now) == PAYLOAD
    else:
        assert refused(TOKEN, now=now) == "expired"


def test_the_verifier_needs_a_timezone_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(TOKEN, now=NOW.replace(tzinfo=None))


# --- capabilities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "required",
    [
        [HOOK, NOTIFY],
        [NOTIFY, HOOK],
        [NOTIFY, HOOK, NOTIFY],
        {HOOK, NOTIFY},
        (cap for cap in (NOTIFY, HOOK)),
        [NOTIFY],
        [],
    ],
    ids=["sorted", "reversed", "duplicated", "set", "generator", "subset", "none"],
)
def test_required_capabilities_are_compared_as_a_set(required: Any) -> None:
    assert verify(TOKEN, required_capabilities=required) == PAYLOAD


def test_one_string_is_not_taken_for_a_list_of_capabilities() -> None:
    with pytest.raises(TypeError, match="required_capabilities"):
        verify(TOKEN, required_capabilities=HOOK)


# --- the trusted keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "accepted"),
    [
        (KEY.entry("active"), True),
        (KEY.entry("next"), True),
        (KEY.entry("retiring", "2026-12-05T12:00:00Z"), True),
        (KEY.entry("retiring", "2026-12-05T12:00:00.000001+00:00"), True),
        (KEY.entry("retiring", "2026-12-05T11:59:59.999999Z"), False),
        (KEY.entry("retiring", "2026-12-05T12:00:00"), False),
        (KEY.entry("retiring", "soon"), False),
        (KEY.entry("retired"), False),
        (KEY.entry("revoked"), False),
        (KEY.entry() | {"alg": "RS256"}, False),
        (KEY.entry() | {"public_key": "not a key"}, False),
        (KEY.entry() | {"public_key": OTHER.pair.public_key[:-2]}, False),
    ],
    ids=[
        "active",
        "next",
        "retiring-at-its-not-after",
        "retiring-before-its-not-after",
        "retiring-past-its-not-after",
        "retiring-with-a-zoneless-not-after",
        "retiring-with-an-unreadable-not-after",
        "retired",
        "unknown-status",
        "other-algorithm",
        "unreadable-public-key",
        "short-public-key",
    ],
)
def test_only_trusted_unretired_keys_in_their_lifetime_verify(
    entry: dict[str, object], accepted: bool
) -> None:
    if accepted:
        assert verify(TOKEN, trusted_keys=[entry]) == PAYLOAD
    else:
        assert refused(TOKEN, trusted_keys=[entry]) == "unknown_key"


def test_no_trusted_keys_means_every_key_is_unknown() -> None:
    assert refused(TOKEN, trusted_keys=[]) == "unknown_key"


# --- garbage never crashes the verifier ------------------------------------------------------

_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_is_always_credential_malformed(token: str) -> None:
    assert refused(token) == "credential_malformed"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=100))
def test_arbitrary_bytes_in_the_token_shape_are_credential_malformed(
    payload: bytes, signature: bytes
) -> None:
    assert refused(f"{keys.b64url(payload)}.{keys.b64url(signature)}") == "credential_malformed"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(sorted(DOCUMENT)) | st.text(max_size=8), _JSON),
    st.booleans(),
)
def test_arbitrary_signed_json_objects_are_refused_with_a_code(
    document: dict[str, object], name_the_key: bool
) -> None:
    if name_the_key:
        document["kid"] = KEY.kid
    data = json.dumps(document).encode()
    with pytest.raises(CredentialError) as info:
        verify(signed(data))
    assert info.value.code in ORDER


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(TOKEN)),
    st.sampled_from(["replace", "insert", "delete"]),
    st.sampled_from(_B64URL_ALPHABET + ".="),
)
def test_no_one_character_change_to_a_valid_credential_verifies(
    position: int, operation: str, char: str
) -> None:
    if operation == "replace":
        changed = TOKEN[:position] + char + TOKEN[position + 1 :]
    elif operation == "insert":
        changed = TOKEN[:position] + char + TOKEN[position:]
    else:
        changed = TOKEN[:position] + TOKEN[position + 1 :]
    assume(changed != TOKEN)
    with pytest.raises(CredentialError) as info:
        verify(changed)
    # Changing the kid's bytes can name an untrusted key; nothing gets past the signature.
    assert info.value.code in {"credential_malformed", "unknown_key", "bad_signature"}
