"""Hypothesis properties: spec.kv round trips, hash invariance, totality of validation."""

from __future__ import annotations

import copy
import itertools
import json
import random
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byteor_cloud.spec import (
    ERROR_CODES,
    INFO_CODES,
    Boundary,
    DataguardParams,
    DataguardRule,
    ExecParams,
    FilterOp,
    FilterParams,
    HttpPostParams,
    IdentityParams,
    JsonValue,
    Lane,
    LaneGraphSpec,
    LaneKind,
    MapParams,
    OnFull,
    Ordering,
    PipelineSpecV1,
    Role,
    RoleKind,
    RouteParams,
    RuleAction,
    SingleRingSpec,
    Stage,
    StageParams,
    compile_plan,
    decode_spec,
    encode_spec,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)
fields = st.from_regex(r"[A-Za-z0-9_-]{1,4}(\.[A-Za-z0-9_-]{1,4}){0,2}", fullmatch=True)
bare = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=3)


@st.composite
def rules(draw: st.DrawFn) -> DataguardRule:
    action = draw(st.sampled_from(list(RuleAction)))
    field = draw(fields)
    small = st.integers(min_value=0, max_value=10**6)
    if action is RuleAction.replace_with:
        text = draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=8))
        return DataguardRule(field, action, replacement=text)
    if action is RuleAction.mask:
        char = draw(st.characters(blacklist_categories=("Cc", "Cs")))
        return DataguardRule(
            field, action, keep_start=draw(small), keep_end=draw(small), mask_char=char
        )
    if action is RuleAction.truncate:
        return DataguardRule(field, action, length=draw(small))
    return DataguardRule(field, action)


def params(*, route: bool) -> st.SearchStrategy[StageParams]:
    options: list[st.SearchStrategy[StageParams]] = [
        st.just(IdentityParams()),
        st.builds(
            FilterParams,
            fields,
            st.sampled_from([op for op in FilterOp if op is not FilterOp.exists]),
            json_values.map(JsonValue.of),
        ),
        st.builds(FilterParams, fields, st.just(FilterOp.exists)),
        st.builds(
            MapParams,
            st.lists(st.tuples(fields, json_values.map(JsonValue.of)), max_size=3).map(tuple),
            st.dictionaries(fields, fields, max_size=3).map(lambda d: tuple(d.items())),
            st.lists(fields, max_size=3).map(tuple),
        ),
        st.builds(DataguardParams, st.lists(rules(), max_size=4).map(tuple)),
        st.builds(
            HttpPostParams, st.sampled_from(["https://a.example/", "http://localhost:8080/x?y=1"])
        ),
        st.builds(ExecParams, bare, st.lists(st.text(max_size=6), max_size=3).map(tuple)),
    ]
    if route:
        options.append(
            st.builds(
                RouteParams,
                fields,
                st.dictionaries(st.text(max_size=4), ids, max_size=3).map(
                    lambda d: tuple(d.items())
                ),
                st.none() | ids,
            )
        )
    return st.one_of(options)


boundaries = st.lists(
    st.builds(
        Boundary,
        ids,
        st.from_regex(r"[a-z0-9_-]{1,6}", fullmatch=True),
        json_objects.map(JsonValue.of),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda b: b.id,
).map(tuple)


@st.composite
def ring_bodies(draw: st.DrawFn) -> SingleRingSpec:
    names = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    stages = []
    for i, name in enumerate(names):
        deps = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=i)) if i else set()
        stages.append(Stage(name, draw(params(route=False)), tuple(deps)))
    return SingleRingSpec(
        stages=tuple(stages),
        shards=draw(st.integers(min_value=1, max_value=2**40)),
        ordering=draw(st.sampled_from(list(Ordering))),
        shard_key=draw(st.none() | fields),
    )


@st.composite
def graph_bodies(draw: st.DrawFn) -> LaneGraphSpec:
    role_ids = draw(
        st.lists(ids | ids.map(lambda i: f"bridge:{i}:x"), min_size=1, max_size=5, unique=True)
    )
    roles = []
    for role_id in role_ids:
        if ":" in role_id:
            roles.append(
                Role(
                    role_id,
                    draw(st.sampled_from([RoleKind.bridge, RoleKind.merge, RoleKind.router])),
                )
            )
        else:
            roles.append(Role(role_id, RoleKind.stage, draw(params(route=True))))
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(role_ids), st.sampled_from(role_ids)), max_size=6, unique=True
        )
    )
    lanes = []
    for source, target in pairs:
        kind = draw(st.sampled_from(list(LaneKind)))
        consumers = draw(st.integers(1, 64)) if kind is LaneKind.fanout_broadcast else None
        lanes.append(Lane(source, target, kind, draw(st.integers(1, 1_048_576)), consumers))
    features = draw(st.sets(st.sampled_from([LaneKind.journal, LaneKind.sequenced_slots])))
    return LaneGraphSpec(
        tuple(roles), tuple(lanes), draw(st.sampled_from(list(OnFull))), tuple(features)
    )


specs = st.builds(PipelineSpecV1, ids, boundaries, boundaries, ring_bodies() | graph_bodies())


@SETTINGS
@given(specs)
def test_decode_of_encode_is_the_same_spec(spec: PipelineSpecV1) -> None:
    assert decode_spec(encode_spec(spec)) == spec


@SETTINGS
@given(specs)
def test_encode_of_decode_of_canonical_text_is_the_same_text(spec: PipelineSpecV1) -> None:
    text = encode_spec(spec)
    assert encode_spec(decode_spec(text)) == text
    assert encode_spec(decode_spec(text.encode("utf-8"))) == text


# ---- plans -----------------------------------------------------------------------------

_STAGE_PARAMS = st.sampled_from(
    [
        ("identity", {}),
        ("filter", {"field": "region", "op": "eq", "value": "eu"}),
        ("filter", {"field": "n", "op": "in", "value": [1, "1", 1.5]}),
        ("map", {"set": {"b": {"y": 1, "x": [2, 1]}, "a": None}, "drop": ["z", "c", "z"]}),
        ("dataguard", {"rules": ["card:mask=4:4:*", "email:hash"]}),
        ("http_post", {"url": "HTTPS://Hooks.Example.com:443/x#f"}),
        ("exec", {"program": "tool", "args": ["-v"]}),
    ]
)


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    target = draw(st.sampled_from(["single_ring", "lane_graph"]))
    count = draw(st.integers(min_value=1, max_value=4))
    stages: list[dict[str, Any]] = []
    for i in range(count):
        op, stage_params = draw(_STAGE_PARAMS)
        stage: dict[str, Any] = {"id": f"s{i}", "op": op, "params": copy.deepcopy(stage_params)}
        if i and target == "single_ring":
            stage["depends_on"] = [f"s{i - 1}"]
        stages.append(stage)
    plan: dict[str, Any] = {
        "plan": 2,
        "name": draw(ids),
        "target": target,
        "ingress": [{"id": "in", "adapter": "file", "config": draw(json_objects)}],
        "egress": [{"id": "out", "adapter": "memory"}],
        "stages": stages,
    }
    chain = ["in", *(s["id"] for s in stages), "out"]
    if target == "lane_graph":
        plan["lane_graph"] = {
            "connections": [{"from": a, "to": b} for a, b in itertools.pairwise(chain)]
        }
    else:
        plan["single_ring"] = {"shards": 1}
    return plan


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@st.composite
def spellings(draw: st.DrawFn, plan: dict[str, Any]) -> str | dict[str, Any]:
    shuffled = _shuffled(plan, draw(st.randoms(use_true_random=False)))
    style = draw(st.sampled_from(["mapping", "compact", "indented", "ascii", "yaml"]))
    if style == "mapping":
        return shuffled
    if style == "compact":
        return json.dumps(shuffled, separators=(",", ":"), ensure_ascii=False)
    if style == "indented":
        return json.dumps(shuffled, indent=draw(st.sampled_from([1, 2, 4, "\t"])))
    if style == "ascii":
        return json.dumps(shuffled, ensure_ascii=True)
    dumped = yaml.safe_dump(shuffled, sort_keys=False, allow_unicode=draw(st.booleans()))
    # PyYAML cannot round-trip some strings (e.g. holding U+0085); spell those as JSON.
    return dumped if yaml.safe_load(dumped) == shuffled else json.dumps(shuffled)


@SETTINGS
@given(st.data(), valid_plans())
def test_hash_ignores_key_order_formatting_metadata_and_inactive_block(
    data: st.DataObject, plan: dict[str, Any]
) -> None:
    base = compile_plan(plan)
    assert base.ok, base.diagnostics
    variant = copy.deepcopy(plan)
    variant["description"] = data.draw(st.text(max_size=20))
    variant["labels"] = data.draw(
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)
    )
    inactive = "lane_graph" if plan["target"] == "single_ring" else "single_ring"
    variant[inactive] = data.draw(json_values)

    report = compile_plan(data.draw(spellings(variant)))

    assert report.spec_kv == base.spec_kv
    assert report.spec_hash == base.spec_hash


@SETTINGS
@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans())
def test_a_string_and_the_number_it_spells_hash_differently(value: int | float | bool) -> None:
    def plan(filter_value: Any) -> dict[str, Any]:
        return {
            "plan": 2,
            "name": "p",
            "target": "single_ring",
            "ingress": [{"id": "in", "adapter": "memory"}],
            "egress": [{"id": "out", "adapter": "memory"}],
            "stages": [
                {
                    "id": "s",
                    "op": "filter",
                    "params": {"field": "f", "op": "eq", "value": filter_value},
                }
            ],
        }

    as_json = json.dumps(value)
    assert compile_plan(plan(value)).spec_hash != compile_plan(plan(as_json)).spec_hash


def test_quoted_one_and_one_hash_differently() -> None:
    base = {
        "plan": 2,
        "name": "p",
        "target": "single_ring",
        "ingress": [{"id": "in", "adapter": "memory", "config": {"n": 1}}],
        "egress": [{"id": "out", "adapter": "memory"}],
        "stages": [{"id": "s", "op": "identity"}],
    }
    quoted = copy.deepcopy(base)
    quoted["ingress"][0]["config"] = {"n": "1"}

    assert compile_plan(base).spec_hash != compile_plan(quoted).spec_hash


# ---- totality ----------------------------------------------------------------------------

_NORMATIVE = {str(c) for c in ERROR_CODES | INFO_CODES}


def _check_total(source: Any) -> None:
    report = compile_plan(source)
    assert {str(d.code) for d in report.diagnostics} <= _NORMATIVE
    assert all(d.path == "" or d.path.startswith("/") for d in report.diagnostics)
    if report.errors:
        assert report.spec_kv is None
        assert report.spec_hash is None
    else:
        assert report.spec is not None
        assert decode_spec(report.spec_kv or "") == report.spec


@SETTINGS
@given(json_values)
def test_validation_never_raises_on_arbitrary_json(value: Any) -> None:
    _check_total(value if isinstance(value, dict) else {"plan": 2, "stages": value})
    _check_total(json.dumps(value))


_PLAN_KEYS = st.sampled_from(
    ["plan", "name", "target", "ingress", "egress", "stages", "single_ring", "lane_graph", "labels"]
)


@SETTINGS
@given(st.dictionaries(_PLAN_KEYS, json_values, max_size=9))
def test_validation_never_raises_on_plan_shaped_noise(document: dict[str, Any]) -> None:
    _check_total(document)


@SETTINGS
@given(st.data(), valid_plans())
def test_validation_never_raises_when_any_part_of_a_valid_plan_is_replaced(
    data: st.DataObject, plan: dict[str, Any]
) -> None:
    node: Any = plan
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or data.draw(st.booleans()):
            node[key] = data.draw(json_values)
            break
        node = child

    _check_total(plan)


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_validation_never_raises_on_arbitrary_text(source: str | bytes) -> None:
    _check_total(source)
