"""Canonical spec.kv: encoding, decoding, key order and the `sha256:` spec hash (§6).

Readings of §6 taken here: a JSON-valued field whose *type* is an object or array
(`config`, map `set`/`rename`, route `cases`, exec `args`) is omitted when empty, like any
empty list; a JSON value whose type is "any JSON" (filter `value`) is always written,
even as `{}` or `[]`. Decoding is strict by default: it refuses anything that would not
re-encode to the same bytes (unsorted lines, non-canonical JSON or integers, unknown or
duplicate keys), because a spec that is not canonical cannot match the hash it claims.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

from byteor_cloud.spec.jsonvalues import JsonValue, canonical_json
from byteor_cloud.spec.model import (
    Boundary,
    DataguardParams,
    FilterParams,
    HttpPostParams,
    IdentityParams,
    LaneGraphSpec,
    MapParams,
    PipelineSpecV1,
    RouteParams,
    SingleRingSpec,
    Stage,
    StageParams,
)
from byteor_cloud.spec.syntax import NUMERIC_SEGMENT_RE, has_control_chars

SPEC_VERSION = 1
#: Last key segments whose values are canonical JSON; every other value is bare.
#: (Canonical JSON escapes C0 controls but writes DEL and C1 controls as themselves.)
JSON_VALUED = frozenset({"config", "value", "set", "rename", "cases", "args"})
Pair = tuple[str, str]


class SpecEncodeError(ValueError):
    """A spec value that spec.kv cannot carry (a bare value with a control character)."""


@lru_cache(maxsize=4096)
def _segment_order(segment: str) -> tuple[int, int | bytes]:
    if NUMERIC_SEGMENT_RE.fullmatch(segment):
        return (0, int(segment))
    return (1, segment.encode("utf-8"))


def key_order(key: str) -> tuple[tuple[int, int | bytes], ...]:
    """Sort key of a spec.kv key: numeric segments as numbers, first; others as bytes."""
    return tuple(map(_segment_order, key.split(".")))


def encode_spec(spec: PipelineSpecV1) -> str:
    """The canonical spec.kv text of a spec."""
    header = [
        ("spec.v", str(SPEC_VERSION)),
        ("spec.model", str(spec.model)),
        ("spec.name", spec.name),
    ]
    body = sorted(spec_pairs(spec), key=lambda pair: key_order(pair[0]))
    return "".join(f"{key}={_bare(key, value)}\n" for key, value in [*header, *body])


def spec_hash_of_text(spec_kv: str | bytes) -> str:
    """`sha256:` + lowercase hex SHA-256 of spec.kv bytes."""
    data = spec_kv.encode("utf-8") if isinstance(spec_kv, str) else spec_kv
    return "sha256:" + hashlib.sha256(data).hexdigest()


def spec_hash(spec: PipelineSpecV1) -> str:
    """The spec hash of a spec (of its canonical encoding)."""
    return spec_hash_of_text(encode_spec(spec))


def _bare(key: str, value: str) -> str:
    if key.rpartition(".")[2] not in JSON_VALUED and has_control_chars(value):
        raise SpecEncodeError(f"{key}: a spec.kv value may not hold control characters")
    return value


def spec_pairs(spec: PipelineSpecV1) -> list[Pair]:
    """Every (key, value) of a spec except the three header lines, unsorted."""
    model = str(spec.model)
    pairs: list[Pair] = []
    for kind, boundaries in (("ingress", spec.ingress), ("egress", spec.egress)):
        for i, boundary in enumerate(boundaries):
            pairs += _boundary(f"{model}.{kind}.{i}", boundary)
    if isinstance(spec.body, SingleRingSpec):
        pairs += _ring(spec.body)
    else:
        pairs += _graph(spec.body)
    return pairs


def _boundary(prefix: str, boundary: Boundary) -> list[Pair]:
    pairs = [(f"{prefix}.id", boundary.id), (f"{prefix}.adapter", boundary.adapter)]
    if boundary.config.text != "{}":
        pairs.append((f"{prefix}.config", boundary.config.text))
    return pairs


def _ring(body: SingleRingSpec) -> list[Pair]:
    pairs = [
        ("single_ring.shards", str(body.shards)),
        ("single_ring.ordering", str(body.ordering)),
        ("single_ring.producer", body.producer),
        ("single_ring.scheduling", body.scheduling),
    ]
    if body.shard_key is not None:
        pairs.append(("single_ring.shard_key", body.shard_key))
    for i, stage in enumerate(body.stages):
        pairs += _stage(f"single_ring.stages.{i}", stage)
    return pairs


def _stage(prefix: str, stage: Stage) -> list[Pair]:
    pairs = [(f"{prefix}.id", stage.id), (f"{prefix}.op", str(stage.op))]
    pairs += _indexed(f"{prefix}.depends_on", (str(d) for d in stage.depends_on))
    pairs += [(f"{prefix}.params.{name}", value) for name, value in params_pairs(stage.params)]
    return pairs


def _graph(body: LaneGraphSpec) -> list[Pair]:
    pairs = [("lane_graph.on_full", str(body.on_full))]
    pairs += _indexed("lane_graph.features", (str(f) for f in body.features))
    for i, role in enumerate(body.roles):
        prefix = f"lane_graph.roles.{i}"
        pairs += [(f"{prefix}.id", role.id), (f"{prefix}.kind", str(role.kind))]
        if role.params is not None:
            pairs.append((f"{prefix}.op", str(role.params.op)))
            pairs += [
                (f"{prefix}.params.{name}", value) for name, value in params_pairs(role.params)
            ]
    for i, lane in enumerate(body.lanes):
        prefix = f"lane_graph.lanes.{i}"
        pairs += [
            (f"{prefix}.from", lane.source),
            (f"{prefix}.to", lane.target),
            (f"{prefix}.kind", str(lane.kind)),
            (f"{prefix}.capacity", str(lane.capacity)),
        ]
        if lane.consumers is not None:
            pairs.append((f"{prefix}.consumers", str(lane.consumers)))
    return pairs


def _indexed(prefix: str, values: Iterable[str]) -> list[Pair]:
    return [(f"{prefix}.{j}", value) for j, value in enumerate(values)]


def _json_object(items: Iterable[tuple[str, JsonValue]]) -> str:
    return canonical_json({key: value.load() for key, value in items})


def params_pairs(params: StageParams) -> list[Pair]:
    """The `params.<name>[.<j>]` entries of a stage, names without the prefix."""
    if isinstance(params, IdentityParams):
        return []
    if isinstance(params, FilterParams):
        pairs = [("field", params.field), ("op", str(params.operator))]
        return pairs + ([("value", params.value.text)] if params.value is not None else [])
    if isinstance(params, MapParams):
        pairs = []
        if params.set_fields:
            pairs.append(("set", _json_object(params.set_fields)))
        if params.rename:
            pairs.append(("rename", canonical_json(dict(params.rename))))
        return pairs + _indexed("drop", params.drop)
    if isinstance(params, DataguardParams):
        return _indexed("rules", (str(rule) for rule in params.rules))
    if isinstance(params, RouteParams):
        pairs = [("field", params.field)]
        if params.cases:
            pairs.append(("cases", canonical_json(dict(params.cases))))
        return pairs + ([("default", params.default)] if params.default is not None else [])
    if isinstance(params, HttpPostParams):
        return [("url", params.url)]
    pairs = [("program", params.program)]
    return pairs + ([("args", canonical_json(list(params.args)))] if params.args else [])
