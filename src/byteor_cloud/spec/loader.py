"""Loading a plan document: size limits, strict JSON, YAML without aliases, never a crash.

Readings of §6 taken here: the 1 MiB limit counts the UTF-8 bytes of the text (for a
mapping handed in directly, the bytes of its canonical JSON); a leading UTF-8 byte-order
mark is ignored; JSON is tried first and YAML (1.1, `yaml.safe_load` rules) only if the
text is not JSON. YAML anchors and aliases, duplicate keys, non-string keys, non-finite
numbers, lone surrogates and values JSON cannot hold (dates, binary, sets) make the
document `unparseable`; YAML timestamps are read as plain strings so a date-like config
value survives as written. Nesting deeper than 100 levels is `plan_too_large`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import yaml

from byteor_cloud.spec.diagnostics import Diagnostic, DiagnosticCode, Severity
from byteor_cloud.spec.jsonvalues import (
    Json,
    JsonObject,
    NotJsonError,
    canonical_json,
    normalise,
    pointer,
)

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_STAGES = 10_000
MAX_CONNECTIONS = 10_000

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PlanLoader(_BaseLoader):  # type: ignore[misc]
    """safe_load rules, minus timestamps, refusing duplicate and non-string keys."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, "expected a mapping", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be strings", key_node.start_mark
                )
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


class _Refused(Exception):
    def __init__(self, code: DiagnosticCode, message: str, path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def load_plan_document(
    source: str | bytes | Mapping[str, Any],
) -> tuple[JsonObject | None, list[Diagnostic]]:
    """Turn plan input into a checked JSON object, or say why not (one error diagnostic)."""
    try:
        document = _load(source)
        if not isinstance(document, dict):
            raise _Refused(DiagnosticCode.wrong_type, "a plan must be a JSON object")
        _check_counts(document)
    except _Refused as refused:
        return None, [Diagnostic(Severity.error, refused.code, refused.path, refused.message)]
    return document, []


def _load(source: object) -> Json:
    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
        _check_size(len(raw))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(DiagnosticCode.unparseable, f"not UTF-8 text: {exc.reason}") from None
        return _parse_text(text)
    if isinstance(source, str):
        if len(source) > MAX_DOCUMENT_BYTES:
            _check_size(len(source))
        _check_size(len(source.encode("utf-8", "surrogatepass")))
        return _parse_text(source)
    value = _checked(source)
    _check_size(len(canonical_json(value).encode("utf-8")))
    return value


def _check_size(size: int) -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise _Refused(
            DiagnosticCode.plan_too_large,
            f"the document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES} (1 MiB)",
        )


def _checked(value: object) -> Json:
    try:
        return normalise(value)
    except NotJsonError as exc:
        code = DiagnosticCode.plan_too_large if exc.too_deep else DiagnosticCode.unparseable
        raise _Refused(code, f"not a JSON value: {exc.reason}", exc.path) from None
    except RecursionError:
        raise _Refused(DiagnosticCode.plan_too_large, "the document is nested too deeply") from None


def _parse_text(text: str) -> Json:
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        json_error = f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    except RecursionError:
        raise _Refused(DiagnosticCode.plan_too_large, "the document is nested too deeply") from None
    except ValueError as exc:
        raise _Refused(DiagnosticCode.unparseable, f"invalid JSON: {exc}") from None
    else:
        return _checked(value)
    return _checked(_parse_yaml(text, json_error))


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse_yaml(text: str, json_error: str) -> object:
    looks_like_json = text.lstrip()[:1] in ("{", "[")
    try:
        for event in yaml.parse(text, Loader=_PlanLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _Refused(DiagnosticCode.unparseable, "YAML anchors and aliases are refused")
        value = yaml.load(text, Loader=_PlanLoader)  # noqa: S506 - a safe_load loader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        message = json_error if looks_like_json else f"invalid YAML: {exc.problem}{where}"
        raise _Refused(DiagnosticCode.unparseable, message) from None
    except RecursionError:
        raise _Refused(DiagnosticCode.plan_too_large, "the document is nested too deeply") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        message = json_error if looks_like_json else f"invalid YAML: {exc}"
        raise _Refused(DiagnosticCode.unparseable, message) from None
    if value is None:
        raise _Refused(DiagnosticCode.unparseable, "the document is empty")
    return value


def _check_counts(document: JsonObject) -> None:
    stages = document.get("stages")
    if isinstance(stages, list) and len(stages) > MAX_STAGES:
        raise _Refused(
            DiagnosticCode.plan_too_large,
            f"{len(stages)} stages; the limit is {MAX_STAGES}",
            pointer("stages"),
        )
    block = document.get("lane_graph")
    connections = block.get("connections") if isinstance(block, dict) else None
    if isinstance(connections, list) and len(connections) > MAX_CONNECTIONS:
        raise _Refused(
            DiagnosticCode.plan_too_large,
            f"{len(connections)} connections; the limit is {MAX_CONNECTIONS}",
            pointer("lane_graph", "connections"),
        )
