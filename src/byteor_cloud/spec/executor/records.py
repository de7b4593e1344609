"""Record semantics of the stage ops (§6): field paths, filter, map, dataguard and route.

Readings of §6 taken here (the reference semantics every runtime is tested against):
- A field path walks nested objects; a missing key or a non-object on the way means the
  field is absent. Setting a field creates missing objects on the way and replaces a
  non-object in the way.
- `filter`: `eq`/`in` compare JSON values exactly (numbers by value, `true` ≠ `1`,
  `"1"` ≠ `1`); `ne` is the negation of `eq`, so a record without the field passes;
  `gt`/`lt` hold only between two numbers or two strings (code point order); `exists`
  is true for a present field even when it is `null`.
- `map`: `set` writes fields in field order; `rename` is simultaneous (all sources are
  read and removed, then targets written), so `{a: b, b: a}` swaps; absent sources are
  skipped; `drop` removes fields. Applied in that order.
- `dataguard` rules run in order and touch only present fields. `hash` replaces the value
  with the hex SHA-256 of its canonical JSON. `mask` and `truncate` work on characters
  (code points) of the value's text — a string as is, any other value its canonical
  JSON — and produce a string; a value they would not change is left as it was.
- `route` matches only a string field value against `cases`, then `default`, else the
  record is dropped.
"""

from __future__ import annotations

import hashlib

from byteor_cloud.spec.jsonvalues import Json, JsonObject, canonical_json
from byteor_cloud.spec.model import (
    DataguardParams,
    DataguardRule,
    FilterOp,
    FilterParams,
    MapParams,
    RouteParams,
    RuleAction,
)

_ABSENT = object()


def copy_json(value: Json) -> Json:
    """A deep copy of a JSON value."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def get_field(record: JsonObject, path: str) -> tuple[bool, Json]:
    """(present, value) of a dotted field."""
    node: Json = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_field(record: JsonObject, path: str, value: Json) -> None:
    """Write a dotted field, creating (or replacing non-object) parents on the way."""
    *parents, last = path.split(".")
    node = record
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


def delete_field(record: JsonObject, path: str) -> bool:
    """Remove a dotted field; whether it was there."""
    *parents, last = path.split(".")
    node: Json = record
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    return False


def _is_number(value: Json) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def passes(params: FilterParams, expected: Json, record: JsonObject) -> bool:
    """Whether a record passes a filter (`expected` is the loaded `value`)."""
    found, value = get_field(record, params.field)
    op = params.operator
    if op is FilterOp.exists:
        return found
    if op is FilterOp.ne:
        return not found or canonical_json(value) != canonical_json(expected)
    if not found:
        return False
    if op is FilterOp.eq:
        return canonical_json(value) == canonical_json(expected)
    if op is FilterOp.in_:
        wanted = canonical_json(value)
        return isinstance(expected, list) and any(canonical_json(e) == wanted for e in expected)
    if _is_number(value) and _is_number(expected):
        assert isinstance(value, int | float) and isinstance(expected, int | float)  # noqa: PT018
        return value > expected if op is FilterOp.gt else value < expected
    if isinstance(value, str) and isinstance(expected, str):
        return value > expected if op is FilterOp.gt else value < expected
    return False


def apply_map(params: MapParams, record: JsonObject) -> None:
    """Apply a map stage in place: set, then rename, then drop."""
    for field, new_value in params.set_fields:
        set_field(record, field, new_value.load())
    moved: list[tuple[str, Json]] = []
    for source, target in params.rename:
        found, value = get_field(record, source)
        if found:
            moved.append((target, value))
    for source, _ in params.rename:
        delete_field(record, source)
    for target, moved_value in moved:
        set_field(record, target, moved_value)
    for field in params.drop:
        delete_field(record, field)


def apply_dataguard(params: DataguardParams, record: JsonObject) -> None:
    """Apply DataGuard rules in place, in order."""
    for rule in params.rules:
        found, value = get_field(record, rule.field)
        if not found:
            continue
        if rule.action is RuleAction.drop:
            delete_field(record, rule.field)
            continue
        replaced = _redact(rule, value)
        if replaced is not _ABSENT:
            assert isinstance(replaced, str)
            set_field(record, rule.field, replaced)


def _redact(rule: DataguardRule, value: Json) -> object:
    if rule.action is RuleAction.replace_with:
        return rule.replacement
    if rule.action is RuleAction.hash:
        return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
    text = value if isinstance(value, str) else canonical_json(value)
    if rule.action is RuleAction.truncate:
        return text[: rule.length] if len(text) > rule.length else _ABSENT
    hidden = len(text) - rule.keep_start - rule.keep_end
    if hidden <= 0:
        return _ABSENT
    tail = text[len(text) - rule.keep_end :] if rule.keep_end else ""
    return text[: rule.keep_start] + rule.mask_char * hidden + tail


def route_target(params: RouteParams, record: JsonObject) -> str | None:
    """The target id a route stage sends a record to, or None to drop it."""
    found, value = get_field(record, params.field)
    if found and isinstance(value, str):
        for case, target in params.cases:
            if case == value:
                return target
    return params.default
