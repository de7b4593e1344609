"""Lexical rules shared by the compiler and the spec.kv codec: ids, fields, key segments."""

from __future__ import annotations

import re

#: Plan names and every plan id (§6).
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: Adapter names (§6).
ADAPTER_RE = re.compile(r"[a-z0-9_-]+")
#: A dotted path into a record (§6).
FIELD_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
#: One segment of a spec.kv key.
KEY_SEGMENT_RE = re.compile(r"[A-Za-z0-9_-]+")
#: A numeric key segment: `0` or no leading zero.
NUMERIC_SEGMENT_RE = re.compile(r"0|[1-9][0-9]*")
#: Canonical decimal integers, as spec.kv writes them.
INTEGER_RE = re.compile(r"0|-?[1-9][0-9]*")
# Unicode general category Cc: C0 controls, DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def is_id(value: str) -> bool:
    """Whether `value` is a valid plan name or id."""
    return ID_RE.fullmatch(value) is not None


def is_field(value: str) -> bool:
    """Whether `value` is a valid dotted field path."""
    return FIELD_RE.fullmatch(value) is not None


def has_control_chars(value: str) -> bool:
    """Whether `value` holds a control character (category Cc), which bare values may not."""
    return _CONTROL.search(value) is not None
