"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106 guidance)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from byteor_cloud.core.errors import InvalidInput

_hasher = PasswordHasher()

MIN_LENGTH = 12
MAX_LENGTH = 256
# A constant hash checked when the user does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("dummy password for timing equality")


def check_policy(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"password must be {MIN_LENGTH} to {MAX_LENGTH} characters",
            code="weak_password",
            details={"field": "password"},
        )


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
