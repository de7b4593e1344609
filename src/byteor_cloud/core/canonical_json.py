"""Canonical JSON (RFC 8785) for the signed documents of the product — approval
credentials, deploy-bundle manifests and the plan hash — and the strict reader their
verifiers use. One writer, so a credential, a manifest and a plan hash can never disagree
on what "canonical" means.

Values are dicts with str keys, lists/tuples, str, integers within ±(2**53 − 1), bool and
None. Floats are refused: none of these documents carries one, and RFC 8785's number
formatting is the part implementations most often get wrong. (The spec compiler's
canonical JSON is a different, documented form: `spec/jsonvalues.py`.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_EXACT_INT = 2**53 - 1  # RFC 8785 numbers are IEEE-754 doubles
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


class NotCanonical(TypeError, ValueError):
    """A value of a type (or with a key) canonical JSON cannot carry. Both a TypeError
    (the wrong kind of value) and a ValueError (invalid input to a builder), so callers
    that guard either keep working."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _quoted(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _utf16_units(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the code-unit sequences RFC 8785 sorts by.
    return key.encode("utf-16-be", "surrogatepass")


def canonical_json(value: object) -> bytes:
    """RFC 8785 canonical JSON bytes of `value`: keys sorted by UTF-16 code units, no
    whitespace, UTF-8 with non-ASCII characters as themselves, strings escaped as `json`
    writes them. NotCanonical for other types; ValueError for an integer outside the exact
    range, a lone surrogate or nesting too deep."""
    parts: list[str] = []
    try:
        _write(value, parts)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("strings must be valid Unicode (no lone surrogates)") from None


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise ValueError("integer outside the range JSON numbers represent exactly")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(_quoted(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise NotCanonical("object keys must be strings")
        out.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_units)):
            if index:
                out.append(",")
            out.append(_quoted(key) + ":")
            _write(value[key], out)
        out.append("}")
    else:
        raise NotCanonical(f"{type(value).__name__} has no canonical JSON form here")


def parse_strict_json(data: bytes) -> Any:
    """Strict JSON: UTF-8 only, no duplicate keys, no NaN or Infinity; ValueError else
    (nesting too deep included)."""
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_pairs,
            parse_constant=_refuse_constant,
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    # UnicodeDecodeError and JSONDecodeError are ValueErrors already.


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate object key")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
