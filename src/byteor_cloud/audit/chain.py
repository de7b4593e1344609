"""The audit hash chain: canonical record JSON, hashing, verification. Pure functions.

`hash = sha256_hex(prev_hash + canonical JSON of the record without its hash)`, the first
record of an org chaining from GENESIS. Canonical JSON: sorted keys, no whitespace, UTF-8.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"(key|token|secret|password|credential)", re.IGNORECASE)
MAX_DETAILS_CHARS = 8192


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def redact(details: Any) -> Any:
    """Replace the values of secret-looking keys, at any depth: secrets never reach audit."""
    if isinstance(details, dict):
        return {
            key: REDACTED if _SECRET_NAME.search(str(key)) and not _is_id_key(key) else redact(v)
            for key, v in details.items()
        }
    if isinstance(details, list):
        return [redact(item) for item in details]
    return details


def _is_id_key(key: object) -> bool:
    # `key_id`, `token_id` name records, not secrets.
    return isinstance(key, str) and key.endswith(("_id", "_ids", "_prefix"))


def record_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


class ChainVerifier:
    """Checks records fed in seq order: contiguous, linked, unaltered. Constant memory."""

    def __init__(self) -> None:
        self.expected_prev = GENESIS
        self.expected_seq = 1
        self.checked = 0
        self.failure: VerifyResult | None = None

    def feed(self, seq: int, prev_hash: str, stored_hash: str, body: dict[str, Any]) -> bool:
        """False (and `failure` set) at the first bad record."""
        reason = None
        if seq != self.expected_seq:
            reason = f"sequence gap: expected {self.expected_seq}"
        elif prev_hash != self.expected_prev:
            reason = "prev_hash does not match the chain"
        elif record_hash(prev_hash, body) != stored_hash:
            reason = "record content does not match its hash"
        if reason is not None:
            self.failure = VerifyResult(False, self.checked, seq, reason)
            return False
        self.expected_prev = stored_hash
        self.expected_seq += 1
        self.checked += 1
        return True

    def result(self, *, head_seq: int | None = None) -> VerifyResult:
        if self.failure is not None:
            return self.failure
        if head_seq is not None and head_seq != self.checked:
            return VerifyResult(False, self.checked, self.checked + 1, "records missing at the end")
        return VerifyResult(True, self.checked)
