"""CSRF tokens for browser forms and cookie-authenticated API calls.

Two kinds, both HMAC-SHA256 under a key derived from the master key:

- **session tokens**: derived from a signed-in session's random `csrf_secret` (a
  synchronizer token that only our own pages can render and that dies with the session);
- **pre-session tokens**, for the sign-in form before any session exists: a signed
  double-submit pair. A short-lived random cookie value (with its issue time) is set on
  the sign-in page, and the form carries `HMAC(key, value)`. An attacker who can plant a
  cookie (a sibling subdomain) still cannot make a matching token without the key.

No framework imports: the web layer reads and writes the cookies and fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from byteor_cloud.core.clock import utcnow

# Long enough to type a password and fetch it from a password manager after a coffee
# break; short enough that a harvested sign-in page is stale soon.
PRESESSION_LIFETIME = timedelta(hours=1)
# Tolerated skew between API processes that issue and check a pre-session value.
_CLOCK_SKEW = timedelta(minutes=1)
_MAX_TOKEN_CHARS = 128


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class CsrfSigner:
    """Derives and checks CSRF tokens; one per app, keyed from the master key."""

    def __init__(self, master_key: str) -> None:
        self._key = hmac.new(master_key.encode(), b"byteor-cloud/csrf/v1", hashlib.sha256).digest()

    def _sign(self, purpose: str, value: str) -> str:
        message = f"{purpose}:{value}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    @staticmethod
    def _same(expected: str, presented: str | None) -> bool:
        if not presented or len(presented) > _MAX_TOKEN_CHARS:
            return False
        return hmac.compare_digest(expected.encode(), presented.encode())

    # Signed-in sessions ----------------------------------------------------------------

    def session_token(self, csrf_secret: str) -> str:
        """The token every form and unsafe API call of this session must carry."""
        return self._sign("session", csrf_secret)

    def check_session(self, csrf_secret: str, presented: str | None) -> bool:
        return self._same(self.session_token(csrf_secret), presented)

    # Before sign-in --------------------------------------------------------------------

    @staticmethod
    def new_presession() -> str:
        """A fresh pre-session cookie value: random, with its issue time in seconds."""
        return f"{secrets.token_urlsafe(32)}.{int(utcnow().timestamp())}"

    @staticmethod
    def presession_fresh(value: str | None) -> bool:
        """Whether a pre-session cookie value is well formed and within its lifetime."""
        if not value or len(value) > _MAX_TOKEN_CHARS:
            return False
        _, _, issued = value.rpartition(".")
        if not issued.isdigit():
            return False
        age = utcnow().timestamp() - int(issued)
        return -_CLOCK_SKEW.total_seconds() <= age <= PRESESSION_LIFETIME.total_seconds()

    def presession_token(self, value: str) -> str:
        """The form token paired with a pre-session cookie value."""
        return self._sign("presession", value)

    def check_presession(self, value: str | None, presented: str | None) -> bool:
        if value is None or not self.presession_fresh(value):
            return False
        return self._same(self.presession_token(value), presented)
