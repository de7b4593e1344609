"""The reference executor: op semantics, routing, determinism, dry-run recording, limits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from byteor_cloud.spec import PipelineSpecV1, compile_plan
from byteor_cloud.spec.executor import (
    DryRunHandler,
    ExecutionError,
    ExecutionLimits,
    Executor,
    InvalidRecord,
    LimitExceeded,
    run_spec,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _ring(*stages: dict[str, Any]) -> PipelineSpecV1:
    listed = []
    for i, stage in enumerate(stages):
        item = {"id": f"s{i}", **stage}
        if i:
            item["depends_on"] = [f"s{i - 1}"]
        listed.append(item)
    report = compile_plan(
        {
            "plan": 2,
            "name": "t",
            "target": "single_ring",
            "ingress": [{"id": "in", "adapter": "memory"}],
            "egress": [{"id": "out", "adapter": "memory"}],
            "stages": listed,
        }
    )
    assert report.spec is not None, report.diagnostics
    return report.spec


def _outputs(spec: PipelineSpecV1, records: list[Any]) -> list[Any]:
    return [emitted.record for emitted in run_spec(spec, records).outputs]


def _filter(op: str, **value: Any) -> dict[str, Any]:
    return {"op": "filter", "params": {"field": "a.b", "op": op, **value}}


RECORDS: list[dict[str, Any]] = [
    {"a": {"b": 1}},
    {"a": {"b": 1.0}},
    {"a": {"b": "1"}},
    {"a": {"b": True}},
    {"a": {"b": None}},
    {"a": {"b": 5}},
    {"a": {"b": "zz"}},
    {"a": {"c": 1}},
    {"a": 7},
    {},
]


@pytest.mark.parametrize(
    ("stage", "kept"),
    [
        (_filter("eq", value=1), [0, 1]),
        (_filter("eq", value="1"), [2]),
        (_filter("eq", value=True), [3]),
        (_filter("ne", value=1), [2, 3, 4, 5, 6, 7, 8, 9]),
        (_filter("in", value=[True, "zz", None]), [3, 4, 6]),
        (_filter("exists"), [0, 1, 2, 3, 4, 5, 6]),
        (_filter("gt", value=1), [5]),
        (_filter("lt", value=5), [0, 1]),
        (_filter("gt", value="a"), [6]),
        (_filter("lt", value="2"), [2]),
    ],
)
def test_filter_keeps_exactly_the_documented_records(
    stage: dict[str, Any], kept: list[int]
) -> None:
    assert _outputs(_ring(stage), RECORDS) == [RECORDS[i] for i in kept]


def test_map_sets_then_renames_simultaneously_then_drops() -> None:
    spec = _ring(
        {
            "op": "map",
            "params": {
                "set": {"meta.src": "x", "n.deep": 1, "scalar.child": True},
                "rename": {"a": "b", "b": "a", "missing": "here", "meta.src": "source"},
                "drop": ["drop_me", "meta", "nope.nothing"],
            },
        }
    )

    (out,) = _outputs(spec, [{"a": 1, "b": 2, "drop_me": 3, "scalar": 9}])

    assert out == {"a": 2, "b": 1, "scalar": {"child": True}, "n": {"deep": 1}, "source": "x"}


def test_dataguard_rules_produce_the_documented_values() -> None:
    spec = _ring(
        {
            "op": "dataguard",
            "params": {
                "rules": [
                    "ssn:drop",
                    "note:replace_with=[redacted: a=b]",
                    "email:hash",
                    "card:mask=4:4:*",
                    "pin:mask=2:2:#",
                    "num:mask=0:2:x",
                    "comment:truncate=5",
                    "short:truncate=10",
                    "obj:hash",
                    "user.name:mask=1:0:*",
                    "absent:replace_with=x",
                ]
            },
        }
    )
    record = {
        "ssn": "123",
        "note": "secret",
        "email": "a@b.c",
        "card": "4111111111111111",
        "pin": "123",
        "num": 123456,
        "comment": "héllo wörld",
        "short": 42,
        "obj": {"b": 1, "a": [1.0]},
        "user": {"name": "Zoë"},
    }

    (out,) = _outputs(spec, [record])

    assert out == {
        "note": "[redacted: a=b]",
        "email": hashlib.sha256(b'"a@b.c"').hexdigest(),
        "card": "4111********1111",
        "pin": "123",
        "num": "xxxx56",
        "comment": "héllo",
        "short": 42,
        "obj": hashlib.sha256(b'{"a":[1],"b":1}').hexdigest(),
        "user": {"name": "Z**"},
    }


def test_single_ring_drop_ends_the_record_and_later_stages_do_not_see_it() -> None:
    spec = _ring(_filter("exists"), {"op": "map", "params": {"set": {"seen": 1}}})

    result = run_spec(spec, [{"a": {"b": 0}}, {"x": 1}])

    assert [e.record for e in result.outputs] == [{"a": {"b": 0}, "seen": 1}]
    assert [(a.stage, a.decision) for a in result.actions] == [
        ("s0", "pass"),
        ("s1", "pass"),
        ("s0", "drop"),
    ]
    assert result.actions[0].input_lane == "in->s0"
    assert result.actions[1].output_lane == "s1->out"
    assert result.actions[2].output_lane == ""


def _golden(name: str) -> PipelineSpecV1:
    path = next((FIXTURES / "golden").glob(f"{name}.plan.*"))
    spec = compile_plan(path.read_bytes()).spec
    assert spec is not None
    return spec


def test_route_sends_each_record_down_the_one_connection_to_its_target() -> None:
    spec = _golden("lg_route")
    records = [
        {"region": "eu", "email": "a@b.c"},
        {"region": "us"},
        {"region": 1},
        {"region": "1"},
        {"region": "mars"},
    ]

    result = run_spec(spec, records)

    assert [(e.egress, e.record) for e in result.outputs] == [
        ("out", {"region": "eu", "email": hashlib.sha256(b'"a@b.c"').hexdigest()}),
        ("out", {"region": "us"}),
        ("dead", {"region": 1}),
        ("out", {"region": "1"}),
        ("dead", {"region": "mars"}),
    ]
    route_actions = [a for a in result.actions if a.action == "route"]
    assert [(a.target, a.decision) for a in route_actions] == [
        ("eu", "route"),
        ("us", "route"),
        ("dead", "route"),
        ("us", "route"),
        ("dead", "route"),
    ]
    assert route_actions[0].input_lane == "bridge:in:by-region->by-region"
    assert route_actions[0].output_lane == "by-region->router:by-region"


def test_route_without_match_or_default_drops() -> None:
    plan = json.loads((FIXTURES / "golden" / "lg_route.plan.json").read_text())
    del plan["stages"][0]["params"]["default"]
    spec = compile_plan(plan).spec
    assert spec is not None

    result = run_spec(spec, [{"region": "mars"}])

    assert result.outputs == ()
    assert [(a.action, a.decision, a.output_lane) for a in result.actions] == [
        ("route", "drop", "")
    ]


def test_fan_out_copies_records_and_merges_bring_them_together() -> None:
    spec = _golden("lg_diamond_ops")

    result = run_spec(spec, [{"card": "4111111111111111"}])

    assert [e.record for e in result.outputs] == [
        {"card": "4111********1111", "done": True},
        {"card": "4111********1111", "done": True},
    ]
    assert [(a.stage, a.decision) for a in result.actions] == [
        ("split", "pass"),
        ("archive", "dry_run"),
        ("notify", "dry_run"),
        ("join", "pass"),
        ("join", "pass"),
    ]
    assert result.actions[0].output_lane == "split->router:split"
    assert {a.input_lane for a in result.actions if a.stage == "join"} == {"merge:join->join"}


def test_dry_run_records_side_effects_and_performs_none() -> None:
    handler = DryRunHandler()
    spec = _golden("sr_effects")

    result = run_spec(spec, ['{"amount": 150}', '{"amount": 5}'], handler=handler)

    assert [(e.kind, e.target, e.args) for e in handler.effects] == [
        ("http_post", "https://hooks.example.com/", ()),
        ("http_post", "https://hooks.example.com/", ()),
        ("exec", "/usr/local/bin/audit-log", ("--topic", "orders", "a b")),
    ]
    assert handler.effects[0].body == b'{"amount":150}'
    side_effects = [a for a in result.actions if a.action in ("http_post", "exec")]
    assert {a.decision for a in side_effects} == {"dry_run"}
    assert [e.record for e in result.outputs] == [{"amount": 150}]


def test_the_same_input_gives_byte_identical_audit_actions() -> None:
    spec = _golden("lg_fanout_features")
    records = [json.dumps({"i": i, "v": [i, str(i)]}) for i in range(20)]

    first = run_spec(spec, records)
    second = Executor(spec).run(list(records))

    assert json.dumps(first.actions_json()).encode() == json.dumps(second.actions_json()).encode()
    assert first.outputs == second.outputs
    assert len(first.outputs) == 20 * 4


def test_audit_actions_have_the_replay_audit_shape() -> None:
    (action,) = run_spec(_ring({"op": "identity"}), [{}]).actions_json()

    assert action == {
        "action": "identity",
        "role": "s0",
        "input_lane": "in->s0",
        "output_lane": "s0->out",
        "stage": "s0",
        "target": "",
        "decision": "pass",
    }


def test_action_limit_stops_the_run_before_the_next_side_effect() -> None:
    handler = DryRunHandler()
    spec = _golden("sr_effects")
    limits = ExecutionLimits(max_actions=5)

    with pytest.raises(LimitExceeded) as caught:
        run_spec(spec, [{"amount": 500}] * 3, handler=handler, limits=limits)

    assert caught.value.code == "too_many_actions"
    assert len(caught.value.actions) == 5
    assert len(handler.effects) == 3
    assert "5 actions" in caught.value.message


def test_default_limits_are_those_of_section_11() -> None:
    limits = ExecutionLimits()

    assert limits.max_actions == 10_000
    assert limits.max_input_bytes == 128 * 1024 * 1024


def test_ten_thousand_actions_are_allowed_and_one_more_is_not() -> None:
    spec = _ring({"op": "identity"})

    assert len(run_spec(spec, [{}] * 10_000).actions) == 10_000
    with pytest.raises(LimitExceeded):
        run_spec(spec, [{}] * 10_001)


def test_input_limit_refuses_before_anything_runs() -> None:
    handler = DryRunHandler()
    spec = _golden("sr_effects")

    with pytest.raises(LimitExceeded) as caught:
        run_spec(
            spec,
            ['{"amount": 500}'] * 10,
            handler=handler,
            limits=ExecutionLimits(max_input_bytes=50),
        )

    assert caught.value.code == "input_too_large"
    assert handler.effects == []


def test_input_bytes_are_counted() -> None:
    result = run_spec(_ring({"op": "identity"}), [b'{"a": 1}', {"b": 2}])

    assert result.input_bytes == len(b'{"a": 1}') + len(b'{"b":2}')
    assert result.records_in == 2


@pytest.mark.parametrize(
    "record", ["[1]", "not json", b"\xff", 5, "NaN", '{"a": 1e999}', "\ud800", '{"a": "\\ud800"}']
)
def test_bad_records_are_refused(record: Any) -> None:
    with pytest.raises(InvalidRecord):
        run_spec(_ring({"op": "identity"}), [record])


def test_several_ingresses_need_a_choice() -> None:
    spec = _golden("lg_merge")

    with pytest.raises(ExecutionError):
        run_spec(spec, [{}])
    with pytest.raises(ExecutionError):
        run_spec(spec, [{}], ingress="north")
    result = run_spec(spec, [{"x": 1}], ingress="east")
    assert sorted(e.egress for e in result.outputs) == ["copy", "main"]


def test_input_records_are_not_mutated() -> None:
    record = {"a": {"b": 1}, "card": "1234567890"}
    spec = _ring({"op": "dataguard", "params": {"rules": ["card:mask=0:0:*", "a.b:drop"]}})

    run_spec(spec, [record])

    assert record == {"a": {"b": 1}, "card": "1234567890"}
