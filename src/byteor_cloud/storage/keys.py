"""Blob keys: the one place that says which keys exist.

A key is a relative, `/`-separated path of segments made of `[A-Za-z0-9._-]`. Segments
may not be empty, may not start with a dot (which also rules out `.` and `..`; the dot
namespace belongs to the store's own temporary and probe files, so no key can collide
with them or be swept as one), and are at most 255 characters (a file name on every
common filesystem). A key is at most 512 characters.
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
    shown = repr(key if len(key) <= 80 else key[:77] + "...")
    if not key:
        raise InvalidBlobKey("blob key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKey(f"blob key {shown} is longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise InvalidBlobKey(f"blob key {shown} is absolute; keys are relative")
    for segment in key.split("/"):
        if not segment:
            raise InvalidBlobKey(f"blob key {shown} has an empty segment")
        if segment in {".", ".."}:
            raise InvalidBlobKey(f"blob key {shown} has a {segment!r} segment")
        if segment.startswith("."):
            raise InvalidBlobKey(f"blob key {shown} has a segment starting with '.'")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidBlobKey(f"blob key {shown} has a segment over {MAX_SEGMENT_LENGTH}")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidBlobKey(f"blob key {shown} has characters outside [A-Za-z0-9._-]")
    return key


def new_probe_key() -> str:
    """A fresh key under the reserved probe folder (valid in shape, never a user key)."""
    return f"{PROBE_DIR}/{secrets.token_hex(16)}"
