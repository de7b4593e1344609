"""Approval credential v1 (PRODUCT.md §9): canonical payload, encoding and the verifier.

A credential is `<base64url(payload)>.<base64url(signature)>` (no padding): the payload is
the RFC 8785 canonical JSON of a `CredentialPayload`, the signature the raw 64-byte Ed25519
signature of those bytes by the org signing key `kid`. Pure (no database, framework or
I/O): the control plane issues with it and the reference agent verifies with it. Every
reading of the specification taken here is written down in docs/approval-credential.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Literal

from byteor_cloud.core.canonical_json import canonical_json, parse_strict_json
from byteor_cloud.core.clock import rfc3339, utcnow
from byteor_cloud.signing.keys import (
    ALG,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    RawSigner,
    b64url,
    from_b64url,
    verify_signature,
)
from byteor_cloud.signing.rules import PUBLISHED

VERSION: Final = 1
#: How far the verifier's clock may disagree with the issuer's, both ways.
CLOCK_SKEW: Final = timedelta(seconds=60)
#: Longest token the verifier reads; far above any real credential, it bounds the work
#: garbage can cause.
MAX_TOKEN_CHARS: Final = 65_536
POSTURES: Final = frozenset({"dev", "staging", "prod"})

#: Signs the payload bytes with the org's active key: `(kid, raw 64-byte signature)`.


class CredentialCode(StrEnum):
    """The verifier's failure codes, in the order it checks them."""

    malformed = "credential_malformed"
    unknown_key = "unknown_key"
    bad_signature = "bad_signature"
    unsupported_version = "unsupported_version"
    spec_hash_mismatch = "spec_hash_mismatch"
    environment_mismatch = "environment_mismatch"
    expired = "expired"
    missing_capability = "missing_capability"


class CredentialError(Exception):
    """A credential the verifier refuses; `code` is the first check that failed.

    Not a `DomainError`: refusing a credential is the agent's judgement, not an API
    failure, so whoever turns it into an HTTP answer must choose the status on purpose.
    """

    def __init__(
        self, code: CredentialCode, message: str = "", *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if message else str(code))
        self.code = code
        self.message = message
        self.details = dict(details or {})


# --- the payload --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CredentialPayload:
    """The signed statement: what was approved, where, for how long, by whom.

    Construction validates and normalises: capabilities become a sorted, de-duplicated
    tuple; times must be timezone-aware whole seconds and are kept in UTC.
    """

    v: Literal[1] = 1
    kid: str
    org_id: str
    project_id: str
    environment_id: str
    environment_posture: str
    spec_hash: str
    capabilities: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    issued_by: str
    approval_id: str

    def __post_init__(self) -> None:
        version: object = self.v
        if type(version) is not int or version != VERSION:
            raise ValueError(f"v must be {VERSION}")
        for name in _TEXT_FIELDS:
            _require_text(name, getattr(self, name))
        if self.environment_posture not in POSTURES:
            raise ValueError(f"environment_posture must be one of {sorted(POSTURES)}")
        capabilities: object = self.capabilities
        if not isinstance(capabilities, list | tuple):
            raise ValueError("capabilities must be a list of strings")
        for capability in capabilities:
            _require_text("a capability", capability)
        object.__setattr__(self, "capabilities", tuple(sorted(set(capabilities))))
        issued_at = _whole_utc_second("issued_at", self.issued_at)
        expires_at = _whole_utc_second("expires_at", self.expires_at)
        if expires_at <= issued_at:
            raise ValueError("expires_at must be after issued_at")
        object.__setattr__(self, "issued_at", issued_at)
        object.__setattr__(self, "expires_at", expires_at)

    def to_json(self) -> dict[str, object]:
        """The payload as a JSON object (times in RFC 3339 UTC with `Z`)."""
        return {
            "v": self.v,
            "kid": self.kid,
            "org_id": self.org_id,
            "project_id": self.project_id,
            "environment_id": self.environment_id,
            "environment_posture": self.environment_posture,
            "spec_hash": self.spec_hash,
            "capabilities": list(self.capabilities),
            "issued_at": rfc3339(self.issued_at),
            "expires_at": rfc3339(self.expires_at),
            "issued_by": self.issued_by,
            "approval_id": self.approval_id,
        }

    def canonical_bytes(self) -> bytes:
        """The bytes that are signed and carried (base64url) as the token's first part."""
        return canonical_json(self.to_json())


_FIELDS: Final = frozenset(field.name for field in fields(CredentialPayload))
_TEXT_FIELDS: Final = (
    "kid",
    "org_id",
    "project_id",
    "environment_id",
    "environment_posture",
    "spec_hash",
    "issued_by",
    "approval_id",
)


def _require_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _whole_utc_second(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    if value.microsecond:
        raise ValueError(f"{name} must be a whole second")
    return value.astimezone(UTC)


# --- issuing --------------------------------------------------------------------------------


def issue_payload(
    *,
    kid: str,
    org_id: str,
    project_id: str,
    environment_id: str,
    environment_posture: str,
    spec_hash: str,
    capabilities: Iterable[str],
    issued_by: str,
    approval_id: str,
    ttl: timedelta,
) -> CredentialPayload:
    """A payload issued now (the clock truncated to the second) and valid for `ttl`."""
    if isinstance(capabilities, str):
        raise TypeError("capabilities must be an iterable of capabilities, not one string")
    if ttl < timedelta(seconds=1) or ttl % timedelta(seconds=1):
        raise ValueError("ttl must be a positive whole number of seconds")
    issued_at = utcnow().astimezone(UTC).replace(microsecond=0)
    return CredentialPayload(
        kid=kid,
        org_id=org_id,
        project_id=project_id,
        environment_id=environment_id,
        environment_posture=environment_posture,
        spec_hash=spec_hash,
        capabilities=tuple(capabilities),
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        issued_by=issued_by,
        approval_id=approval_id,
    )


def encode_credential(payload: CredentialPayload, sign: RawSigner) -> str:
    """`<base64url(payload JSON)>.<base64url(signature)>`; ValueError when the signer used
    another key than the payload names (a rotation raced the issuer) or gave no signature."""
    signed = payload.canonical_bytes()
    kid, signature = sign(signed)
    if kid != payload.kid:
        raise ValueError(f"the payload names key {payload.kid!r} but {kid!r} signed it")
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")
    return f"{b64url(signed)}.{b64url(signature)}"


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Envelope:
    kid: str
    version: int
    signed: bytes
    signature: str  # base64url, exactly as carried
    payload: CredentialPayload | None  # parsed only for version 1


_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")


def _malformed(message: str) -> CredentialError:
    return CredentialError(CredentialCode.malformed, message)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _decode_part(text: str, what: str) -> bytes:
    try:
        raw = from_b64url(text)
    except ValueError:
        raise _malformed(f"the {what} is not base64url without padding") from None
    if b64url(raw) != text:  # unused trailing bits set: the same bytes, another spelling
        raise _malformed(f"the {what} is not canonical base64url")
    return raw


def _json_object(signed: bytes) -> dict[str, Any]:
    try:
        document = parse_strict_json(signed)
    except ValueError:
        raise _malformed("the payload is not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise _malformed("the payload is not a JSON object")
    return document


def _parse(token: object) -> _Envelope:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise _malformed(f"a credential is a string of at most {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 2:
        raise _malformed("a credential is two base64url parts joined by one '.'")
    payload_text, signature_text = parts
    signed = _decode_part(payload_text, "payload")
    if len(_decode_part(signature_text, "signature")) != SIGNATURE_BYTES:
        raise _malformed(f"the signature is not {SIGNATURE_BYTES} bytes")
    document = _json_object(signed)
    kid, version = document.get("kid"), document.get("v")
    if not isinstance(kid, str) or not kid:
        raise _malformed("kid must be a non-empty string")
    if type(version) is not int:
        raise _malformed("v must be an integer")
    payload = _v1_payload(document, signed) if version == VERSION else None
    return _Envelope(kid, version, signed, signature_text, payload)


def _timestamp(document: Mapping[str, object], name: str) -> datetime:
    value = document[name]
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _malformed(f"{name} must be RFC 3339 UTC in whole seconds with 'Z'")
    year, month, day, hour, minute, second = (int(group) for group in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise _malformed(f"{name} is not a real time") from None


def _v1_payload(document: Mapping[str, object], signed: bytes) -> CredentialPayload:
    if set(document) != _FIELDS:
        missing, extra = sorted(_FIELDS - set(document)), sorted(set(document) - _FIELDS)
        raise _malformed(f"wrong field set: missing {missing}, unexpected {extra}")

    def text(name: str) -> str:
        value = document[name]
        if not isinstance(value, str):
            raise _malformed(f"{name} must be a string")
        return value

    capabilities = document["capabilities"]
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise _malformed("capabilities must be a list of strings")
    if capabilities != sorted(set(capabilities)):
        raise _malformed("capabilities must be sorted and de-duplicated")
    try:
        payload = CredentialPayload(
            kid=text("kid"),
            org_id=text("org_id"),
            project_id=text("project_id"),
            environment_id=text("environment_id"),
            environment_posture=text("environment_posture"),
            spec_hash=text("spec_hash"),
            capabilities=tuple(capabilities),
            issued_at=_timestamp(document, "issued_at"),
            expires_at=_timestamp(document, "expires_at"),
            issued_by=text("issued_by"),
            approval_id=text("approval_id"),
        )
        canonical = payload.canonical_bytes()
    except ValueError as exc:  # includes a lone surrogate that UTF-8 cannot carry
        raise _malformed(str(exc)) from None
    if canonical != signed:
        raise _malformed("the payload is not canonical JSON")
    return payload


def _bound_passed(not_after: object, now: datetime) -> bool:
    if not_after is None:
        return False
    try:
        bound = datetime.fromisoformat(not_after) if isinstance(not_after, str) else None
    except ValueError:
        bound = None
    if bound is None or bound.utcoffset() is None:
        return True  # an unreadable bound is no bound we can honour: the key is unusable
    return bound < now


def _trusted_public_key(
    trusted_keys: Iterable[Mapping[str, object]], kid: str, now: datetime
) -> str | None:
    """The public key `kid` verifies with, or None when it is not a usable trusted key.
    The first entry with the kid decides, as in `signing.keys.verify`."""
    for entry in trusted_keys:
        if entry.get("kid") != kid:
            continue
        status, public_key = entry.get("status"), entry.get("public_key")
        if entry.get("alg") != ALG or not isinstance(status, str) or status not in PUBLISHED:
            return None
        if _bound_passed(entry.get("not_after"), now) or not isinstance(public_key, str):
            return None
        try:
            usable = len(from_b64url(public_key)) == PUBLIC_KEY_BYTES
        except ValueError:
            usable = False
        return public_key if usable else None
    return None


def verify_credential(
    token: str,
    *,
    trusted_keys: Iterable[Mapping[str, object]],
    spec_hash: str,
    environment_id: str,
    environment_posture: str,
    required_capabilities: Iterable[str],
    now: datetime | None = None,
) -> CredentialPayload:
    """The credential's payload when it authorises running `spec_hash` with
    `required_capabilities` in this environment at `now`; else the `CredentialError` of
    the first failing check, in `CredentialCode` order. `trusted_keys` are the entries of a
    signing-keys document the caller already trusts (never keys from the credential)."""
    if isinstance(required_capabilities, str):
        raise TypeError("required_capabilities must be an iterable of capabilities")
    required = frozenset(required_capabilities)
    when = utcnow() if now is None else now
    if when.utcoffset() is None:
        raise ValueError("now must be timezone-aware")

    envelope = _parse(token)
    public_key = _trusted_public_key(trusted_keys, envelope.kid, when)
    if public_key is None:
        raise CredentialError(
            CredentialCode.unknown_key,
            f"key {_shown(envelope.kid)} is not a trusted, unretired key",
            details={"kid": envelope.kid},
        )
    if not verify_signature(public_key, envelope.signed, envelope.signature):
        raise CredentialError(CredentialCode.bad_signature, "the signature does not verify")
    payload = envelope.payload
    if envelope.version != VERSION or payload is None:
        raise CredentialError(
            CredentialCode.unsupported_version,
            f"version {envelope.version} is not supported (this verifier reads {VERSION})",
            details={"v": envelope.version},
        )
    return _check_claims(
        payload,
        spec_hash=spec_hash,
        environment_id=environment_id,
        environment_posture=environment_posture,
        required=required,
        now=when,
    )


def _check_claims(
    payload: CredentialPayload,
    *,
    spec_hash: str,
    environment_id: str,
    environment_posture: str,
    required: frozenset[str],
    now: datetime,
) -> CredentialPayload:
    if payload.spec_hash != spec_hash:
        raise CredentialError(
            CredentialCode.spec_hash_mismatch, "the credential approves another spec"
        )
    if payload.environment_id != environment_id or (
        payload.environment_posture != environment_posture
    ):
        raise CredentialError(
            CredentialCode.environment_mismatch,
            "the credential is for another environment or posture",
        )
    # Datetime differences (not sums) so no extreme but valid timestamp can overflow.
    if now - payload.expires_at > CLOCK_SKEW:
        raise CredentialError(CredentialCode.expired, f"expired at {rfc3339(payload.expires_at)}")
    if payload.issued_at - now > CLOCK_SKEW:
        raise CredentialError(
            CredentialCode.expired, f"not valid before {rfc3339(payload.issued_at)}"
        )
    missing = sorted(required.difference(payload.capabilities))
    if missing:
        raise CredentialError(
            CredentialCode.missing_capability,
            f"not approved for {', '.join(missing)}",
            details={"missing": missing},
        )
    return payload
