"""JSON values for the compiler: the value model, canonical JSON text and JSON pointers.

Canonical JSON (§6 "JSON values"): object keys sorted by code point, no insignificant
whitespace, non-ASCII characters written as themselves, strings escaped as `json` does
(`\\"`, `\\\\`, `\\n`, `\\r`, `\\t`, `\\b`, `\\f`, other C0 controls as `\\u00xx`).

Numbers (a §6 ambiguity, resolved here): a JSON number is a *value*, not a spelling, so
`1`, `1.0` and `1e0` are the same number and encode the same way. An integer literal is
kept exactly (arbitrary precision) and written in decimal. Any other number is an IEEE-754
double (RFC 8259 §6); a double with an integral value below 2**53 in magnitude is an
integer and written as one (`1.0` → `1`, `-0.0` → `0`); every other double is written in
the shortest round-tripping form spelled the way ECMAScript `Number.prototype.toString`
(and RFC 8785) spells it: `0.5`, `1e-7`, `1.5e+300`, `1152921504606847000`. Non-finite
numbers are not JSON and are refused when a document is loaded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring
from typing import TypeAlias

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
JsonObject: TypeAlias = dict[str, Json]

#: Deepest nesting a document may use; deeper documents are refused as `plan_too_large`.
MAX_DEPTH = 100
#: Largest integer magnitude accepted, in bits (about 4,000 decimal digits).
MAX_INT_BITS = 13_000
_EXACT_FLOAT_INT = 2**53
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotJsonError(ValueError):
    """A value that is not a JSON value (or is nested too deeply to accept)."""

    def __init__(self, path: str, reason: str, *, too_deep: bool = False) -> None:
        super().__init__(f"{path or '/'}: {reason}")
        self.path = path
        self.reason = reason
        self.too_deep = too_deep


def pointer_child(path: str, part: str | int) -> str:
    """Append one reference token to a JSON pointer (RFC 6901 escaping)."""
    token = str(part).replace("~", "~0").replace("/", "~1")
    return f"{path}/{token}"


def pointer(*parts: str | int) -> str:
    """Build a JSON pointer from its reference tokens (`pointer()` is the whole document)."""
    path = ""
    for part in parts:
        path = pointer_child(path, part)
    return path


class _Refused(Exception):
    """Internal: the fast pass found a problem; the slow pass says where."""


def normalise(value: object, path: str = "") -> Json:
    """Return a fresh, checked copy of a JSON value with numbers in their canonical types.

    Raises `NotJsonError` for anything that is not JSON: non-string keys, non-finite
    numbers, lone surrogates, tuples, sets, bytes, dates, or nesting deeper than MAX_DEPTH.
    """
    try:
        return _fast(value, 1)
    except _Refused:
        return _located(value, path, 1)


def _fast(value: object, depth: int) -> Json:
    # The common case, without building a JSON pointer for every member.
    if depth > MAX_DEPTH:
        raise _Refused
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise _Refused
        return value
    if isinstance(value, dict):
        out: JsonObject = {}
        for key, item in value.items():
            if not isinstance(key, str) or _SURROGATE.search(key):
                raise _Refused
            out[key] = _fast(item, depth + 1)
        return out
    if isinstance(value, list):
        return [_fast(item, depth + 1) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() <= MAX_INT_BITS:
        return int(value)
    if isinstance(value, float) and math.isfinite(value):
        return _normalise_float(value, "")
    raise _Refused


def _located(value: object, path: str, depth: int) -> Json:
    if depth > MAX_DEPTH:
        raise NotJsonError(path, f"nested deeper than {MAX_DEPTH} levels", too_deep=True)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise NotJsonError(path, "string contains a lone surrogate")
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise NotJsonError(path, "integer is too large")
        return int(value)
    if isinstance(value, float):
        return _normalise_float(value, path)
    if isinstance(value, Mapping):
        out: JsonObject = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJsonError(path, "object keys must be strings")
            child = pointer_child(path, key)
            if _SURROGATE.search(key):
                raise NotJsonError(child, "key contains a lone surrogate")
            out[key] = _located(item, child, depth + 1)
        return out
    if isinstance(value, list):
        return [_located(item, pointer_child(path, i), depth + 1) for i, item in enumerate(value)]
    raise NotJsonError(path, f"{type(value).__name__} is not a JSON value")


def _normalise_float(value: float, path: str) -> int | float:
    if not math.isfinite(value):
        raise NotJsonError(path, "non-finite numbers are not JSON")
    if value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
        return int(value)
    return value


def canonical_json(value: Json) -> str:
    """Canonical JSON text of an already normalised JSON value."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Json, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(format_double(value))
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(encode_basestring(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")


def format_double(value: float) -> str:
    """Shortest round-tripping spelling of a double, as ECMAScript Number#toString."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    dec = Decimal(repr(abs(value)))  # repr is the shortest round-tripping digit string
    _, digit_tuple, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def parse_json_text(text: str) -> Json:
    """Parse strict JSON text (no NaN/Infinity, no duplicate keys) into a normalised value."""
    return normalise(json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_pairs))


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _pairs(pairs: Sequence[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate object key {key!r}")
        out[key] = value
    return out


def json_equal(a: Json, b: Json) -> bool:
    """JSON equality: numbers by value, but `true` is never `1` and `"1"` is never `1`."""
    return canonical_json(a) == canonical_json(b)


@dataclass(frozen=True, slots=True)
class JsonValue:
    """A JSON value held by its canonical text, so equality is exact JSON equality."""

    text: str

    @classmethod
    def of(cls, value: object) -> JsonValue:
        """Wrap any JSON value (checked and normalised first)."""
        return cls(canonical_json(normalise(value)))

    def load(self) -> Json:
        """A fresh Python copy of the value."""
        return parse_json_text(self.text)

    def __str__(self) -> str:
        return self.text
