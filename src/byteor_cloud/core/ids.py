"""Opaque, time-ordered identifiers (ULIDs): 48-bit millisecond time + 80 random bits.

Time order keeps new rows at the right edge of primary-key indexes and gives keyset
pagination a natural stable order; the text form is 26 Crockford base32 characters.
"""

from __future__ import annotations

import os
import re
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")

_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id() -> str:
    """A new ULID, strictly increasing within this process (monotonic in one millisecond)."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            # Same (or a backwards-stepped) millisecond: bump the random part so ids made in
            # one process stay ordered, which keeps insertion-order tests meaningful.
            now_ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << 80) - 1)
        else:
            _last_random = int.from_bytes(os.urandom(10), "big")
        _last_ms = now_ms
        return _encode((now_ms << 80) | _last_random)


def is_id(value: str) -> bool:
    """Whether `value` has the shape of an id we issue (cheap pre-check before a query)."""
    return bool(ULID_PATTERN.match(value))
