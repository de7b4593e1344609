"""Ed25519 key material: generating, sealing, signing and verifying (no database).

Public keys travel as the raw 32 bytes and signatures as the raw 64 bytes, both base64url
without padding (PRODUCT.md §9). Private keys are kept as the raw 32-byte seed sealed with
`SecretBox(master key, "signing-keys")` and are opened only for the moment of signing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.signing.rules import PUBLISHED

ALG = "Ed25519"
BOX_PURPOSE = "signing-keys"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# payload bytes -> (kid, raw signature): what the pure builders take.
RawSigner = Callable[[bytes], tuple[str, bytes]]


def signing_box(master_key: str) -> SecretBox:
    """The box that seals signing keys (its own purpose: nothing else decrypts them)."""
    return SecretBox(master_key, BOX_PURPOSE)


def b64url(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Strict inverse of `b64url`: ValueError on padding or any other character."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url without padding") from None


@dataclass(frozen=True)
class NewKeyPair:
    public_key: str  # base64url of the raw 32 bytes
    private_key_encrypted: bytes  # the sealed raw 32-byte private key


def generate(box: SecretBox) -> NewKeyPair:
    """A fresh Ed25519 pair; the private half leaves this function only sealed."""
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    private_raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return NewKeyPair(b64url(public_raw), box.encrypt(private_raw))


def sign_sealed(private_key_encrypted: bytes, box: SecretBox, payload: bytes) -> str:
    """The base64url Ed25519 signature of `payload` by a sealed private key."""
    private = Ed25519PrivateKey.from_private_bytes(box.decrypt(private_key_encrypted))
    return b64url(private.sign(payload))


def raw_signer(kid: str, private_key_encrypted: bytes, box: SecretBox) -> RawSigner:
    """A synchronous signer for the pure builders (approval credentials, deploy bundles):
    payload bytes → `(kid, raw 64-byte signature)`. Load the key first (the async
    `signing.service.sign` cannot be called from inside a pure builder)."""

    def sign(payload: bytes) -> tuple[str, bytes]:
        return kid, from_b64url(sign_sealed(private_key_encrypted, box, payload))

    return sign


def verify_signature(public_key: str, payload: bytes, signature: str) -> bool:
    """Whether `signature` (base64url) is the key's signature of `payload`; any malformed
    input is simply not a valid signature."""
    try:
        public_raw = from_b64url(public_key)
        signature_raw = from_b64url(signature)
    except ValueError:
        return False
    if len(public_raw) != PUBLIC_KEY_BYTES or len(signature_raw) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature_raw, payload)
    except InvalidSignature:
        return False
    return True


def verify(
    document_keys: Iterable[Mapping[str, Any]],
    kid: str,
    payload: bytes,
    signature: str,
    *,
    now: datetime | None = None,
) -> bool:
    """Whether `signature` over `payload` is valid for key `kid` of a signing-keys
    document's `keys`: the key must be listed, not retired, and (when retiring) still
    within its `not_after` at `now`."""
    for entry in document_keys:
        if entry.get("kid") != kid:
            continue
        if entry.get("alg") != ALG or entry.get("status") not in PUBLISHED:
            return False
        if _past(entry.get("not_after"), now or utcnow()):
            return False
        return verify_signature(str(entry.get("public_key", "")), payload, signature)
    return False


def _past(not_after: object, now: datetime) -> bool:
    if not_after is None:
        return False
    try:
        return datetime.fromisoformat(str(not_after)) < now
    except (TypeError, ValueError):
        return True  # an unreadable (or zone-less) bound is no bound we can honour
