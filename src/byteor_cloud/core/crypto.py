"""Secrets at rest: one symmetric key derived from the master key (BYTEOR_CLOUD_SECRET_KEY).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key derived per purpose by
HKDF, so a value encrypted for one purpose (idempotent replays, signing keys) cannot be
decrypted as another.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    """Encrypts and decrypts bytes for one purpose under the master key."""

    def __init__(self, master_key: str, purpose: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"byteor-cloud",
            info=purpose.encode(),
        ).derive(master_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken:
            raise ValueError("ciphertext not readable with this master key") from None
