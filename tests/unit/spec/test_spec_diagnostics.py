"""One test per normative diagnostic code: the smallest plan change that triggers it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from byteor_cloud.spec import ERROR_CODES, INFO_CODES, compile_plan

Plan = dict[str, Any]


def _ring_stage(plan: Plan, stage: Plan) -> Plan:
    plan["stages"].append(stage)
    return plan


def _set(path: str, value: Any) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        node = plan
        *parents, last = path.split("/")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last) : int(last) + 1] = [value]
        else:
            node[last] = value
        return plan

    return change


def _delete(path: str) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        node = plan
        *parents, last = path.split("/")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]
        return plan

    return change


def _too_big(plan: Plan) -> str:
    plan["description"] = "x" * (1024 * 1024)
    return json.dumps(plan)


def _many_stages(plan: Plan) -> Plan:
    plan["stages"] = [{"id": f"s{i}", "op": "identity"} for i in range(10_001)]
    return plan


def _many_connections(plan: Plan) -> Plan:
    plan["lane_graph"]["connections"] = [{"from": "in", "to": "a"}] * 10_001
    return plan


def _five_stages(plan: Plan) -> Plan:
    for i in range(3):
        plan["stages"].append({"id": f"s{i}", "op": "identity"})
    return plan


def _connect(*pairs: tuple[str, str]) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        plan["lane_graph"]["connections"] += [{"from": a, "to": b} for a, b in pairs]
        return plan

    return change


def _fan(plan: Plan) -> Plan:
    plan["lane_graph"]["connections"] += [{"from": "in", "to": "b"}, {"from": "a", "to": "out"}]
    return plan


# (code, target, change, path)
CASES: list[tuple[str, str, Callable[[Plan], Any], str]] = [
    ("unparseable", "ring", lambda p: '{"plan": 2,', ""),
    ("plan_too_large", "ring", _too_big, ""),
    ("plan_too_large", "ring", _many_stages, "/stages"),
    ("plan_too_large", "graph", _many_connections, "/lane_graph/connections"),
    ("unsupported_plan_version", "ring", _set("plan", 3), "/plan"),
    ("missing_field", "ring", _delete("name"), "/name"),
    ("wrong_type", "ring", _set("stages", {}), "/stages"),
    ("invalid_value", "ring", _set("target", "ring"), "/target"),
    ("invalid_id", "ring", _set("egress/0/id", "Out"), "/egress/0/id"),
    ("duplicate_id", "ring", _set("stages/1/id", "in"), "/stages/1/id"),
    ("unknown_op", "ring", _set("stages/0/op", "explode"), "/stages/0/op"),
    ("invalid_params", "ring", _delete("stages/0/params/field"), "/stages/0/params/field"),
    (
        "invalid_url",
        "ring",
        _set(
            "stages/1",
            {"id": "tag", "op": "http_post", "params": {"url": "ftp://x/"}, "depends_on": ["keep"]},
        ),
        "/stages/1/params/url",
    ),
    (
        "invalid_rule",
        "ring",
        _set(
            "stages/1",
            {
                "id": "tag",
                "op": "dataguard",
                "params": {"rules": ["email"]},
                "depends_on": ["keep"],
            },
        ),
        "/stages/1/params/rules/0",
    ),
    (
        "not_allowed_for_target",
        "ring",
        _set(
            "stages/1",
            {
                "id": "tag",
                "op": "route",
                "params": {"field": "k", "cases": {}},
                "depends_on": ["keep"],
            },
        ),
        "/stages/1/op",
    ),
    ("boundary_count", "ring", _set("ingress/1", {"id": "in2", "adapter": "memory"}), "/ingress"),
    ("unknown_reference", "ring", _set("stages/1/depends_on", ["ghost"]), "/stages/1/depends_on/0"),
    ("invalid_connection", "graph", _connect(("out", "a")), "/lane_graph/connections/3/from"),
    ("duplicate_connection", "graph", _connect(("in", "a")), "/lane_graph/connections/3"),
    ("self_dependency", "ring", _set("stages/1/depends_on", ["tag"]), "/stages/1/depends_on/0"),
    ("forward_dependency", "ring", _set("stages/0/depends_on", ["tag"]), "/stages/0/depends_on/0"),
    (
        "duplicate_dependency",
        "ring",
        _set("stages/1/depends_on", ["keep", "keep"]),
        "/stages/1/depends_on/1",
    ),
    ("missing_dependency", "ring", _delete("stages/1/depends_on"), "/stages/1/depends_on"),
    ("too_many_stages", "ring", _five_stages, "/stages"),
    ("invalid_shards", "ring", _set("single_ring/shards", 0), "/single_ring/shards"),
    ("unsupported_producer", "ring", _set("single_ring/producer", "mpmc"), "/single_ring/producer"),
    (
        "unsupported_scheduling",
        "ring",
        _set("single_ring/scheduling", "work_queue"),
        "/single_ring/scheduling",
    ),
    (
        "strict_ordering_needs_one_shard",
        "ring",
        _set("single_ring/shards", 2),
        "/single_ring/shards",
    ),
    (
        "missing_shard_key",
        "ring",
        _set("single_ring", {"ordering": "per_key", "shards": 2}),
        "/single_ring/shard_key",
    ),
    ("cycle", "graph", _connect(("b", "a")), "/lane_graph/connections/1"),
    (
        "unreachable_stage",
        "graph",
        lambda p: _ring_stage(p, {"id": "c", "op": "identity"}),
        "/stages/2",
    ),
    (
        "feature_not_enabled",
        "graph",
        _set("lane_graph/connections/1/lane", "journal"),
        "/lane_graph/connections/1/lane",
    ),
    (
        "invalid_capacity",
        "graph",
        _set("lane_graph/connections/1/capacity", 0),
        "/lane_graph/connections/1/capacity",
    ),
    (
        "invalid_consumers",
        "graph",
        _set(
            "lane_graph/connections/1",
            {"from": "a", "to": "b", "lane": "fanout_broadcast", "consumers": 65},
        ),
        "/lane_graph/connections/1/consumers",
    ),
    ("bridge_inserted", "graph", lambda p: p, "/lane_graph/connections/0"),
    ("merge_inserted", "graph", _fan, "/egress/0"),
    ("router_inserted", "graph", _fan, "/ingress/0"),
]


@pytest.mark.parametrize(
    ("code", "target", "change", "path"),
    CASES,
    ids=[f"{c[0]}@{c[3] or 'root'}" for c in CASES],
)
def test_change_reports_exactly_its_code_at_its_path(
    code: str,
    target: str,
    change: Callable[[Plan], Any],
    path: str,
    ring_plan: Plan,
    graph_plan: Plan,
) -> None:
    source = change(ring_plan if target == "ring" else graph_plan)

    report = compile_plan(source)

    found = [(str(d.code), d.path) for d in report.diagnostics]
    assert (code, path) in found
    if code in ERROR_CODES:
        assert [c for c, _ in found if c in ERROR_CODES] == [code]
        assert report.spec_kv is None
        assert report.spec_hash is None
        assert report.capabilities == ()
        assert all(d.severity == "error" for d in report.errors)
    else:
        assert report.ok
        assert next(d for d in report.diagnostics if d.code == code).severity == "info"


def test_every_normative_code_has_a_case() -> None:
    covered = {case[0] for case in CASES}
    assert covered == {str(c) for c in ERROR_CODES | INFO_CODES}
    assert len(ERROR_CODES) == 32
    assert len(INFO_CODES) == 3


def test_diagnostics_have_the_wire_shape(ring_plan: Plan) -> None:
    ring_plan["stages"][0]["op"] = "explode"

    (diagnostic,) = compile_plan(ring_plan).as_dict()["diagnostics"]

    assert set(diagnostic) == {"severity", "code", "path", "message"}
    assert diagnostic["severity"] == "error"
    assert diagnostic["code"] == "unknown_op"
    assert diagnostic["path"] == "/stages/0/op"
    assert "explode" in diagnostic["message"]


def test_several_errors_are_all_reported_in_document_order(ring_plan: Plan) -> None:
    ring_plan["name"] = "Bad Name"
    ring_plan["stages"][0]["op"] = "explode"
    ring_plan["single_ring"] = {"shards": 0}

    codes = [(str(d.code), d.path) for d in compile_plan(ring_plan).diagnostics]

    assert codes == [
        ("invalid_value", "/name"),
        ("unknown_op", "/stages/0/op"),
        ("invalid_shards", "/single_ring/shards"),
    ]


def test_json_pointer_escapes_slash_and_tilde(graph_plan: Plan) -> None:
    graph_plan["stages"].append(
        {"id": "r", "op": "route", "params": {"field": "k", "cases": {"a/b~c": "ghost"}}}
    )
    graph_plan["lane_graph"]["connections"] += [
        {"from": "a", "to": "r"},
        {"from": "r", "to": "out"},
    ]

    paths = [d.path for d in compile_plan(graph_plan).errors]

    assert paths == ["/stages/2/params/cases/a~1b~0c"]


def test_unknown_fields_are_refused_not_ignored(ring_plan: Plan) -> None:
    ring_plan["stages"][1]["dependson"] = ["keep"]

    found = [(str(d.code), d.path) for d in compile_plan(ring_plan).errors]

    assert ("invalid_value", "/stages/1/dependson") in found


def test_control_characters_in_bare_values_are_invalid_value(ring_plan: Plan) -> None:
    ring_plan["stages"][1] = {
        "id": "tag",
        "op": "exec",
        "params": {"program": "run\nme"},
        "depends_on": ["keep"],
    }

    found = [(str(d.code), d.path) for d in compile_plan(ring_plan).errors]

    assert found == [("invalid_value", "/stages/1/params/program")]


def test_zero_ring_stages_is_invalid_value(ring_plan: Plan) -> None:
    ring_plan["stages"] = []

    found = [(str(d.code), d.path) for d in compile_plan(ring_plan).errors]

    assert found == [("invalid_value", "/stages")]


def test_route_naming_a_target_without_connection_is_unknown_reference(graph_plan: Plan) -> None:
    graph_plan["stages"][1] = {
        "id": "b",
        "op": "route",
        "params": {"field": "k", "cases": {"x": "a"}, "default": "ghost"},
    }

    found = [(str(d.code), d.path) for d in compile_plan(graph_plan).errors]

    assert found == [
        ("unknown_reference", "/stages/1/params/cases/x"),
        ("unknown_reference", "/stages/1/params/default"),
    ]


def test_yaml_aliases_are_unparseable() -> None:
    text = "plan: 2\nname: &n x\ntarget: single_ring\nlabels: {a: *n}\n"

    (diagnostic,) = compile_plan(text).diagnostics

    assert diagnostic.code == "unparseable"
    assert "alias" in diagnostic.message


def test_unsupported_version_stops_validation(ring_plan: Plan) -> None:
    ring_plan["plan"] = 1
    ring_plan["bogus"] = True

    assert [str(d.code) for d in compile_plan(ring_plan).diagnostics] == [
        "unsupported_plan_version"
    ]
