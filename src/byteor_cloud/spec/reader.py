"""Reading plan objects field by field, reporting structural diagnostics with JSON pointers.

Structural code choice (a §6 reading): an absent required field is `missing_field`, a
field of the wrong JSON type `wrong_type`, and a value outside its allowed set — an
unknown enum value, a control character in a bare value, or an unknown field name in an
object whose fields §6 fixes — `invalid_value`. Unknown fields are refused (not ignored)
so a misspelt `depends_on` cannot silently change the topology.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

from byteor_cloud.spec.diagnostics import DiagnosticCode as C
from byteor_cloud.spec.diagnostics import Sink
from byteor_cloud.spec.jsonvalues import Json, pointer_child
from byteor_cloud.spec.syntax import has_control_chars

E = TypeVar("E", bound=StrEnum)

_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
}


def type_name(value: Json) -> str:
    """A reader-friendly JSON type name of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a non-integer number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class ObjectReader:
    """Typed access to one JSON object of the plan, every problem reported once."""

    def __init__(self, raw: dict[str, Json], path: str, sink: Sink, allowed: Iterable[str]) -> None:
        self.raw = raw
        self.path = path
        self.sink = sink
        known = frozenset(allowed)
        for name in sorted(raw):
            if name not in known:
                expected = ", ".join(sorted(known))
                sink.error(
                    C.invalid_value,
                    self.at(name),
                    f"unknown field `{name}` (expected one of: {expected})",
                )

    def at(self, name: str | int) -> str:
        """Pointer to a member of this object."""
        return pointer_child(self.path, name)

    def has(self, name: str) -> bool:
        """Whether the member is present."""
        return name in self.raw

    def _missing(self, name: str, required: bool) -> None:
        if required:
            self.sink.error(C.missing_field, self.at(name), f"missing field `{name}`")

    def _wrong(self, name: str, wanted: str) -> None:
        got = type_name(self.raw[name])
        self.sink.error(C.wrong_type, self.at(name), f"`{name}` must be {wanted}, not {got}")

    def string(self, name: str, *, required: bool = True) -> str | None:
        """A string member (bare value: no control characters)."""
        if name not in self.raw:
            self._missing(name, required)
            return None
        value = self.raw[name]
        if not isinstance(value, str):
            self._wrong(name, "a string")
            return None
        if has_control_chars(value):
            self.sink.error(
                C.invalid_value, self.at(name), f"`{name}` may not hold control characters"
            )
            return None
        return value

    def enum(self, name: str, kind: type[E], default: E | None) -> E | None:
        """A string member from a fixed set; `default` when absent (None: required)."""
        if name not in self.raw and default is not None:
            return default
        value = self.string(name, required=True)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(str(v) for v in kind)
            self.sink.error(
                C.invalid_value, self.at(name), f"`{name}` must be one of {allowed}, not {value!r}"
            )
            return None

    def integer(self, name: str, default: int | None) -> int | None:
        """An integer member; `default` when absent (None: required)."""
        if name not in self.raw:
            self._missing(name, default is None)
            return default
        value = self.raw[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(name, "an integer")
            return None
        return value

    def array(self, name: str, *, required: bool = True) -> list[Json] | None:
        """An array member."""
        if name not in self.raw:
            self._missing(name, required)
            return None
        value = self.raw[name]
        if not isinstance(value, list):
            self._wrong(name, "an array")
            return None
        return value

    def obj(self, name: str, *, required: bool = True) -> dict[str, Json] | None:
        """An object member."""
        if name not in self.raw:
            self._missing(name, required)
            return None
        value = self.raw[name]
        if not isinstance(value, dict):
            self._wrong(name, "an object")
            return None
        return value


def as_object(value: Json, path: str, sink: Sink, what: str) -> dict[str, Json] | None:
    """The value as an object, or a `wrong_type` error."""
    if isinstance(value, dict):
        return value
    sink.error(C.wrong_type, path, f"{what} must be an object, not {type_name(value)}")
    return None
