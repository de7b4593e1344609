"""Human views: describe, DOT, SVG and the diff of two specs."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from byteor_cloud.spec import PipelineSpecV1, compile_plan
from byteor_cloud.spec.diff import diff_specs
from byteor_cloud.spec.svg import layers, to_svg
from byteor_cloud.spec.topology import topology
from byteor_cloud.spec.views import describe, to_dot

FIXTURES = Path(__file__).parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"


def _spec(source: Any) -> PipelineSpecV1:
    report = compile_plan(source)
    assert report.spec is not None, report.diagnostics
    return report.spec


def _golden(name: str) -> PipelineSpecV1:
    path = next((FIXTURES / "golden").glob(f"{name}.plan.*"))
    return _spec(path.read_bytes())


def test_describe_names_everything_a_reader_needs() -> None:
    spec = _spec((FIXTURES / "worked_example.plan.json").read_bytes())

    text = describe(spec)

    assert "orders-enrich (single_ring)" in text
    assert "sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657" in text
    assert "http_post:https://hooks.example.com/orders" in text
    assert 'region eq "eu"' in text
    assert "card:mask=4:4:*; email:hash  (after only-eu)" in text


def test_describe_lists_lowered_roles_and_lanes() -> None:
    text = describe(_golden("lg_route"))

    assert ["router:by-region", "router"] in [line.split() for line in text.splitlines()]
    assert "by-region -> router:by-region  [events 1024]" in text
    assert "by region: 1->us, eu->eu, us->us else dead" in text


def test_dot_is_a_digraph_with_every_node_and_lane() -> None:
    spec = _golden("lg_fanout_features")

    text = to_dot(spec)

    assert text.startswith('digraph "lg-fanout" {')
    assert text.rstrip().endswith("}")
    assert '"router:b" [label="router:b", shape=triangle' in text
    assert '"b" -> "bridge:b:tap" [label="fanout_broadcast 256 x4"];' in text
    assert text.count(" -> ") == len(spec.body.lanes)  # type: ignore[union-attr]


def test_dot_quotes_awkward_text() -> None:
    plan = json.loads((FIXTURES / "golden" / "sr_effects.plan.json").read_text())
    plan["stages"][3]["params"]["program"] = 'say "hi" \\ there'

    assert '"audit" [label="audit\\nexec"' in to_dot(_spec(plan))


def test_svg_is_well_formed_and_draws_every_node_and_edge() -> None:
    spec = _golden("lg_diamond_ops")
    nodes, edges = topology(spec)

    root = ET.fromstring(to_svg(spec))  # noqa: S314 - parses our own SVG output

    assert root.tag == f"{SVG}svg"
    assert len(root.findall(f"{SVG}g")) == len(nodes)
    assert len(root.findall(f"{SVG}path")) == len(edges)
    titles = {g.find(f"{SVG}title").text for g in root.findall(f"{SVG}g")}  # type: ignore[union-attr]
    assert titles == {node.id for node in nodes}


def test_svg_layout_puts_every_edge_left_to_right() -> None:
    spec = _golden("lg_route")
    nodes, edges = topology(spec)

    columns = layers(nodes, edges)

    column_of = {node_id: i for i, column in enumerate(columns) for node_id in column}
    assert all(column_of[e.source] < column_of[e.target] for e in edges)
    assert sorted(column_of) == sorted(n.id for n in nodes)


def test_svg_is_deterministic_and_escapes_text() -> None:
    plan = json.loads((FIXTURES / "golden" / "sr_effects.plan.json").read_text())
    plan["name"] = "x"
    plan["stages"][3]["params"]["program"] = "<script>&"
    spec = _spec(plan)

    first, second = to_svg(spec), to_svg(copy.deepcopy(spec))

    assert first == second
    assert "<script>" not in first
    ET.fromstring(first)  # noqa: S314 - parses our own SVG output


def test_diff_of_equal_specs_is_identical() -> None:
    spec = _golden("sr_effects")

    result = diff_specs(spec, spec)

    assert result.identical
    assert result.lines == ()
    assert result.to_text().startswith("identical (sha256:")


def test_diff_summarises_stage_and_capability_changes() -> None:
    old = json.loads((FIXTURES / "golden" / "sr_effects.plan.json").read_text())
    new = copy.deepcopy(old)
    new["stages"][1]["params"]["url"] = "https://other.example.com/"
    del new["stages"][2]
    new["stages"][2]["depends_on"] = ["hook-a", "big"]
    new["stages"].insert(1, {"id": "note", "op": "identity"})

    result = diff_specs(_spec(old), _spec(new), old_label="a", new_label="b")

    assert result.stages_added == ("note",)
    assert result.stages_removed == ("hook-b",)
    assert result.stages_changed == ("audit", "hook-a")
    assert result.capabilities_added == ("http_post:https://other.example.com/",)
    assert result.capabilities_removed == ("http_post:https://hooks.example.com/",)
    assert result.lines[:2] == ("--- a", "+++ b")
    assert "+single_ring.stages.1.id=note" in result.lines
    text = result.to_text()
    assert "stages added: note" in text
    assert "capabilities removed: http_post:https://hooks.example.com/" in text
    assert result.as_dict()["stages"]["changed"] == ["audit", "hook-a"]


def test_diff_sees_rewiring_in_a_lane_graph() -> None:
    old = json.loads((FIXTURES / "golden" / "lg_chain.plan.json").read_text())
    new = copy.deepcopy(old)
    new["lane_graph"]["connections"][2]["capacity"] = 128

    result = diff_specs(_spec(old), _spec(new))

    assert result.stages_changed == ("keep", "shape")
    assert result.stages_added == result.stages_removed == ()


def test_diff_across_models_reports_the_model_change() -> None:
    result = diff_specs(_golden("sr_minimal"), _golden("lg_passthrough"))

    assert result.old_model == "single_ring"
    assert result.new_model == "lane_graph"
    assert "model: single_ring -> lane_graph" in result.to_text()
