"""Decoding spec.kv text back into a PipelineSpecV1, strictly (canonical input only).

The text is read into a tree of key segments, then each part of the model takes the keys
it knows; a key left over, a list with a gap, a value of the wrong form or a line that is
out of canonical order makes the text invalid (`SpecDecodeError`, code `invalid_spec`).
With `strict=False` only the order and spelling checks are relaxed: the result is the
same spec, and re-encoding it gives the canonical bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from byteor_cloud.core.errors import InvalidInput
from byteor_cloud.spec.jsonvalues import Json, JsonValue, canonical_json, parse_json_text
from byteor_cloud.spec.kv import SPEC_VERSION, SpecEncodeError, encode_spec
from byteor_cloud.spec.model import (
    Boundary,
    DataguardParams,
    ExecParams,
    FilterOp,
    FilterParams,
    HttpPostParams,
    IdentityParams,
    Lane,
    LaneGraphSpec,
    LaneKind,
    MapParams,
    OnFull,
    Op,
    Ordering,
    PipelineSpecV1,
    Role,
    RoleKind,
    RouteParams,
    SingleRingSpec,
    Stage,
    StageParams,
    Target,
)
from byteor_cloud.spec.rules import InvalidRuleError, parse_rule
from byteor_cloud.spec.syntax import (
    INTEGER_RE,
    KEY_SEGMENT_RE,
)

E = TypeVar("E", bound=StrEnum)
_C0 = re.compile("[\x00-\x1f]")


class SpecDecodeError(InvalidInput):
    """spec.kv text that is not a valid canonical PipelineSpecV1."""

    default_code = "invalid_spec"


class _Node:
    """One key segment: a value (leaf) or children (inner node), never both."""

    __slots__ = ("children", "key", "value")

    def __init__(self, key: str) -> None:
        self.key = key
        self.value: str | None = None
        self.children: dict[str, _Node] = {}

    def take(self, name: str) -> _Node | None:
        return self.children.pop(name, None)

    def text(self, name: str, *, required: bool = True) -> str | None:
        node = self.take(name)
        if node is None:
            if required:
                raise SpecDecodeError(f"missing key {self._sub(name)}")
            return None
        if node.value is None:
            raise SpecDecodeError(f"{node.key} must be a value, not a group of keys")
        return node.value

    def required(self, name: str) -> str:
        value = self.text(name)
        assert value is not None
        return value

    def items(self, name: str) -> list[_Node]:
        node = self.take(name)
        if node is None:
            return []
        if node.value is not None:
            raise SpecDecodeError(f"{node.key} must be a list of indexed keys")
        count = len(node.children)
        if set(node.children) != {str(i) for i in range(count)}:
            raise SpecDecodeError(f"{node.key} must be indexed 0..{count - 1} without gaps")
        return [node.children[str(i)] for i in range(count)]

    def done(self) -> None:
        if self.children:
            extra = ", ".join(sorted(self._sub(name) for name in self.children))
            raise SpecDecodeError(f"unknown keys: {extra}")

    def _sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name


def decode_spec(text: str | bytes, *, strict: bool = True) -> PipelineSpecV1:
    """Decode spec.kv; raises SpecDecodeError. Strict mode accepts canonical text only."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecDecodeError("spec.kv must be UTF-8 text") from None
    lines = _lines(text)
    if [key for key, _ in lines[:3]] != ["spec.v", "spec.model", "spec.name"]:
        raise SpecDecodeError("spec.kv starts with spec.v, spec.model and spec.name")
    if lines[0][1] != str(SPEC_VERSION):
        raise SpecDecodeError(f"unsupported spec version {lines[0][1]!r}")
    model = _enum(Target, lines[1][1], "spec.model")
    root = _tree(lines[3:])
    spec = _spec(root, model, lines[2][1])
    try:
        canonical = encode_spec(spec)
    except SpecEncodeError as exc:
        raise SpecDecodeError(str(exc)) from None
    if strict and canonical != text:
        raise SpecDecodeError(f"not canonical spec.kv ({_first_difference(text, canonical)})")
    return spec


def _lines(text: str) -> list[tuple[str, str]]:
    if not text.endswith("\n"):
        raise SpecDecodeError("spec.kv must end with a newline")
    out: list[tuple[str, str]] = []
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        key, sep, value = line.partition("=")
        if not sep:
            raise SpecDecodeError(f"line {number}: expected key=value")
        if not all(KEY_SEGMENT_RE.fullmatch(seg) for seg in key.split(".")):
            raise SpecDecodeError(f"line {number}: {key!r} is not a dotted key")
        if _C0.search(value):
            raise SpecDecodeError(f"line {number}: control character in the value")
        out.append((key, value))
    return out


def _tree(lines: list[tuple[str, str]]) -> _Node:
    root = _Node("")
    for key, value in lines:
        node = root
        for segment in key.split("."):
            if node.value is not None:
                raise SpecDecodeError(f"{node.key} is both a value and a group of keys")
            node = node.children.setdefault(segment, _Node(node._sub(segment)))
        if node.value is not None or node.children:
            raise SpecDecodeError(f"{key} appears twice or is also a group of keys")
        node.value = value
    return root


def _first_difference(actual: str, canonical: str) -> str:
    for number, (a, b) in enumerate(
        zip(actual.split("\n"), canonical.split("\n"), strict=False), 1
    ):
        if a != b:
            return f"line {number} should be {b!r}"
    return "line count differs"


def _spec(root: _Node, model: Target, name: str) -> PipelineSpecV1:
    block = root.take(str(model))
    if block is None:
        raise SpecDecodeError(f"no {model}.* keys")
    root.done()
    ingress = tuple(_boundary(node) for node in block.items("ingress"))
    egress = tuple(_boundary(node) for node in block.items("egress"))
    body = _ring(block) if model is Target.single_ring else _graph(block)
    block.done()
    return PipelineSpecV1(name=name, ingress=ingress, egress=egress, body=body)


def _boundary(node: _Node) -> Boundary:
    config = node.text("config", required=False)
    boundary = Boundary(
        node.required("id"),
        node.required("adapter"),
        _json(config, node, "config", dict) if config is not None else JsonValue("{}"),
    )
    node.done()
    return boundary


def _ring(block: _Node) -> SingleRingSpec:
    shards = _int(block.required("shards"), "single_ring.shards")
    ordering = _enum(Ordering, block.required("ordering"), "single_ring.ordering")
    if block.required("producer") != "single" or block.required("scheduling") != "dedicated":
        raise SpecDecodeError("single_ring.producer must be single and scheduling dedicated")
    shard_key = block.text("shard_key", required=False)
    stages = tuple(_ring_stage(node) for node in block.items("stages"))
    return SingleRingSpec(stages=stages, shards=shards, ordering=ordering, shard_key=shard_key)


def _ring_stage(node: _Node) -> Stage:
    stage_id = node.required("id")
    op = _enum(Op, node.required("op"), f"{node.key}.op")
    depends = tuple(_int(_leaf(d), d.key) for d in node.items("depends_on"))
    params = _params(op, node)
    node.done()
    return Stage(stage_id, params, depends)


def _graph(block: _Node) -> LaneGraphSpec:
    on_full = _enum(OnFull, block.required("on_full"), "lane_graph.on_full")
    features = tuple(_enum(LaneKind, _leaf(n), n.key) for n in block.items("features"))
    roles = tuple(_role(node) for node in block.items("roles"))
    lanes = tuple(_lane(node) for node in block.items("lanes"))
    return LaneGraphSpec(roles=roles, lanes=lanes, on_full=on_full, features=features)


def _role(node: _Node) -> Role:
    role_id = node.required("id")
    kind = _enum(RoleKind, node.required("kind"), f"{node.key}.kind")
    params: StageParams | None = None
    if kind is RoleKind.stage:
        params = _params(_enum(Op, node.required("op"), f"{node.key}.op"), node)
    node.done()
    return Role(role_id, kind, params)


def _lane(node: _Node) -> Lane:
    consumers = node.text("consumers", required=False)
    lane = Lane(
        source=node.required("from"),
        target=node.required("to"),
        kind=_enum(LaneKind, node.required("kind"), f"{node.key}.kind"),
        capacity=_int(node.required("capacity"), f"{node.key}.capacity"),
        consumers=_int(consumers, f"{node.key}.consumers") if consumers is not None else None,
    )
    node.done()
    return lane


def _params(op: Op, stage: _Node) -> StageParams:
    node = stage.take("params") or _Node(f"{stage.key}.params")
    if node.value is not None:
        raise SpecDecodeError(f"{node.key} must be a group of keys")
    params = _PARAMS[op](node)
    node.done()
    return params


def _filter(node: _Node) -> StageParams:
    value = node.text("value", required=False)
    return FilterParams(
        node.required("field"),
        _enum(FilterOp, node.required("op"), f"{node.key}.op"),
        _json(value, node, "value", object) if value is not None else None,
    )


def _map(node: _Node) -> StageParams:
    set_text = node.text("set", required=False)
    rename_text = node.text("rename", required=False)
    set_value = _load(_json(set_text, node, "set", dict)) if set_text else {}
    rename = _load(_json(rename_text, node, "rename", dict)) if rename_text else {}
    assert isinstance(set_value, dict)
    assert isinstance(rename, dict)
    if not all(isinstance(v, str) for v in rename.values()):
        raise SpecDecodeError(f"{node.key}.rename must map fields to fields")
    return MapParams(
        tuple((k, JsonValue.of(v)) for k, v in set_value.items()),
        tuple((k, str(v)) for k, v in rename.items()),
        tuple(_leaf(n) for n in node.items("drop")),
    )


def _dataguard(node: _Node) -> StageParams:
    rules = []
    for item in node.items("rules"):
        try:
            rules.append(parse_rule(_leaf(item)))
        except InvalidRuleError as exc:
            raise SpecDecodeError(f"{item.key}: {exc}") from None
    return DataguardParams(tuple(rules))


def _route(node: _Node) -> StageParams:
    cases_text = node.text("cases", required=False)
    cases = _load(_json(cases_text, node, "cases", dict)) if cases_text else {}
    assert isinstance(cases, dict)
    if not all(isinstance(v, str) for v in cases.values()):
        raise SpecDecodeError(f"{node.key}.cases must map values to target ids")
    return RouteParams(
        node.required("field"),
        tuple((k, str(v)) for k, v in cases.items()),
        node.text("default", required=False),
    )


def _exec(node: _Node) -> StageParams:
    args_text = node.text("args", required=False)
    args = _load(_json(args_text, node, "args", list)) if args_text else []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SpecDecodeError(f"{node.key}.args must be an array of strings")
    return ExecParams(node.required("program"), tuple(str(a) for a in args))


_PARAMS: dict[Op, Callable[[_Node], StageParams]] = {
    Op.identity: lambda node: IdentityParams(),
    Op.filter: _filter,
    Op.map: _map,
    Op.dataguard: _dataguard,
    Op.route: _route,
    Op.http_post: lambda node: HttpPostParams(node.required("url")),
    Op.exec: _exec,
}


def _leaf(node: _Node) -> str:
    if node.value is None:
        raise SpecDecodeError(f"{node.key} must be a value")
    return node.value


def _int(text: str, key: str) -> int:
    if INTEGER_RE.fullmatch(text) is None or len(text) > 4000:
        raise SpecDecodeError(f"{key} must be a decimal integer, not {text!r}")
    return int(text)


def _enum(kind: type[E], text: str, key: str) -> E:
    try:
        return kind(text)
    except ValueError:
        raise SpecDecodeError(f"{key}: unknown value {text!r}") from None


def _json(text: str | None, node: _Node, name: str, kind: type) -> JsonValue:
    assert text is not None
    try:
        value = parse_json_text(text)
    except (ValueError, RecursionError):
        raise SpecDecodeError(f"{node.key}.{name} is not valid JSON") from None
    if not isinstance(value, kind):
        wanted = "object" if kind is dict else "array" if kind is list else "value"
        raise SpecDecodeError(f"{node.key}.{name} must be a JSON {wanted}")
    return JsonValue(canonical_json(value))


def _load(value: JsonValue) -> Json:
    return value.load()
