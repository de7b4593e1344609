"""Blob keys: the one place that says which keys exist.

A key is a relative, `/`-separated path of segments made of `[A-Za-z0-9._-]`. Segments
may not be empty, may not start with a dot (which also rules out `.` and `..`; the dot
namespace belongs to the store's own temporary and probe files, so no key can collide
with them or be swept as one), and are at most 255 characters (a file name on every
common filesystem). A key is at most 512 characters.

A key prefix (for `delete_prefix`) is a valid key followed by `/`, so `orgs/A/` names the
folder `orgs/A` and never matches `orgs/AB/...`.
"""

from __future__ import annotations

import re
import secrets

from byteor_cloud.storage.base import InvalidBlobKey

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 255

RESERVED_PREFIX = ".byteor"
"""Start of every name the store writes for itself; no valid key segment starts with it."""

TEMP_PREFIX = f"{RESERVED_PREFIX}-tmp-"
"""File-name prefix of in-progress local writes."""

PROBE_DIR = f"{RESERVED_PREFIX}-probe"
"""Top-level folder of the objects that `check_writable` writes and deletes."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def validate_key(key: object) -> str:
    """Return the key unchanged if it is valid, else raise `InvalidBlobKey` saying why."""
    if not isinstance(key, str):
        raise InvalidBlobKey(f"blob key must be a string, not {type(key).__name__}")
    _check_path(key, what="blob key", shown=_shown(key))
    return key


def validate_prefix(prefix: object) -> str:
    """Return the key prefix unchanged if it is a valid key followed by `/`, else raise
    `InvalidBlobKey` saying why (an empty prefix, one naming the whole store, is refused)."""
    if not isinstance(prefix, str):
        raise InvalidBlobKey(f"blob key prefix must be a string, not {type(prefix).__name__}")
    shown = _shown(prefix)
    if prefix in {"", "/"}:
        raise InvalidBlobKey(f"blob key prefix {shown} is empty: it would name the whole store")
    if not prefix.endswith("/"):
        raise InvalidBlobKey(f"blob key prefix {shown} does not end with '/'")
    _check_path(prefix[:-1], what="blob key prefix", shown=shown)
    return prefix


def is_key_segment(name: str) -> bool:
    """Whether `name` may be one segment of a key (false for every reserved dot-name)."""
    return len(name) <= MAX_SEGMENT_LENGTH and _SEGMENT.fullmatch(name) is not None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _check_path(path: str, *, what: str, shown: str) -> None:
    if not path:
        raise InvalidBlobKey(f"{what} is empty")
    if len(path) > MAX_KEY_LENGTH:
        raise InvalidBlobKey(f"{what} {shown} is longer than {MAX_KEY_LENGTH} characters")
    if path.startswith("/"):
        raise InvalidBlobKey(f"{what} {shown} is absolute; keys are relative")
    for segment in path.split("/"):
        if not segment:
            raise InvalidBlobKey(f"{what} {shown} has an empty segment")
        if segment in {".", ".."}:
            raise InvalidBlobKey(f"{what} {shown} has a {segment!r} segment")
        if segment.startswith("."):
            raise InvalidBlobKey(f"{what} {shown} has a segment starting with '.'")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidBlobKey(f"{what} {shown} has a segment over {MAX_SEGMENT_LENGTH}")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidBlobKey(f"{what} {shown} has characters outside [A-Za-z0-9._-]")


def new_probe_key() -> str:
    """A fresh key under the reserved probe folder (valid in shape, never a user key)."""
    return f"{PROBE_DIR}/{secrets.token_hex(16)}"
