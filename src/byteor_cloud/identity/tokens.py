"""Bearer credentials: random, kind-prefixed, shown once, stored only as a SHA-256 hash.

A token carries 32 random bytes (43 base64url characters), so a hash without a salt or a
slow KDF is safe: there is nothing to guess. Lookups go by hash; the prefix kept beside it
(`bc_pat_AbCd`) lets people recognise a token in lists without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_BYTES = 32
DISPLAY_PREFIX_CHARS = 4


class TokenKind(StrEnum):
    personal_access_token = "bc_pat_"  # noqa: S105 - a visible prefix, not a secret
    org_api_key = "bc_oak_"
    enrollment = "bc_enr_"
    agent_key = "bc_agk_"
    session = "bc_ses_"


@dataclass(frozen=True)
class IssuedToken:
    plaintext: str  # shown once, never stored
    digest: str
    display_prefix: str


def issue(kind: TokenKind) -> IssuedToken:
    plaintext = kind.value + secrets.token_urlsafe(TOKEN_BYTES)
    return IssuedToken(
        plaintext=plaintext,
        digest=digest(plaintext),
        display_prefix=plaintext[: len(kind.value) + DISPLAY_PREFIX_CHARS],
    )


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def kind_of(plaintext: str) -> TokenKind | None:
    for kind in TokenKind:
        if plaintext.startswith(kind.value):
            return kind
    return None


def matches(plaintext: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented token with a stored digest."""
    return hmac.compare_digest(digest(plaintext), stored_digest)
