"""Loading plans: JSON and YAML, refusals, limits — always a diagnostic, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from byteor_cloud.spec import MAX_DOCUMENT_BYTES, compile_plan, parse_plan


def _codes(source: Any) -> list[tuple[str, str]]:
    return [(str(d.code), d.path) for d in compile_plan(source).diagnostics]


def test_json_yaml_and_mapping_inputs_compile_to_the_same_hash(ring_plan: dict[str, Any]) -> None:
    as_json = json.dumps(ring_plan)
    hashes = {
        compile_plan(ring_plan).spec_hash,
        compile_plan(as_json).spec_hash,
        compile_plan(as_json.encode()).spec_hash,
        compile_plan(yaml.safe_dump(ring_plan)).spec_hash,
        compile_plan("\ufeff" + as_json).spec_hash,
    }
    assert len(hashes) == 1
    assert None not in hashes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        '{"plan": 2,',
        "[1, 2",
        "a: [1, 2\n",
        "plan: 2\n---\nplan: 2\n",
        '{"plan": 2, "plan": 2}',
        "plan: 2\nplan: 2\n",
        '{"plan": NaN}',
        "plan: 2\n1: x\n",
        "plan: !!binary aGVsbG8=\n",
        "when: !!timestamp 2024-01-01\n",
        "x: &a 1\ny: *a\n",
        "x: &a 1\n",
        "plan: !!python/object:os.system {}\n",
    ],
)
def test_bad_documents_are_unparseable(text: str) -> None:
    assert [code for code, _ in _codes(text)] == ["unparseable"]


def test_invalid_utf8_is_unparseable() -> None:
    assert _codes(b'{"name": "\xff"}') == [("unparseable", "")]


def test_non_object_roots_are_wrong_type() -> None:
    assert _codes("[1, 2]") == [("wrong_type", "")]
    assert _codes("42") == [("wrong_type", "")]
    assert _codes("just a string") == [("wrong_type", "")]


def test_size_limit_is_bytes_not_characters(ring_plan: dict[str, Any]) -> None:
    base = len(json.dumps({**ring_plan, "description": ""}, ensure_ascii=False).encode())
    ring_plan["description"] = "é" * ((MAX_DOCUMENT_BYTES - base) // 2 + 1)
    text = json.dumps(ring_plan, ensure_ascii=False)

    assert len(text) <= MAX_DOCUMENT_BYTES < len(text.encode())
    assert _codes(text) == [("plan_too_large", "")]


def test_a_document_of_exactly_one_mib_is_accepted(ring_plan: dict[str, Any]) -> None:
    base = len(json.dumps({**ring_plan, "description": ""}).encode())
    ring_plan["description"] = "x" * (MAX_DOCUMENT_BYTES - base)
    text = json.dumps(ring_plan)

    assert len(text.encode()) == MAX_DOCUMENT_BYTES
    assert compile_plan(text).ok


def test_oversized_mapping_is_refused(ring_plan: dict[str, Any]) -> None:
    ring_plan["description"] = "x" * MAX_DOCUMENT_BYTES
    assert _codes(ring_plan) == [("plan_too_large", "")]


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_nesting_is_refused_without_crashing(opener: str) -> None:
    text = opener * 100_000
    assert _codes(text)[0][0] in {"plan_too_large", "unparseable"}


def test_deep_but_bounded_nesting_is_too_large(ring_plan: dict[str, Any]) -> None:
    value: Any = 1
    for _ in range(200):
        value = [value]
    ring_plan["ingress"][0]["config"] = {"deep": value}

    # The root is level 1; level 101 is the 96th array inside `deep`.
    assert _codes(json.dumps(ring_plan)) == [
        ("plan_too_large", "/ingress/0/config/deep" + "/0" * 96)
    ]


def test_mapping_with_non_json_values_is_unparseable(ring_plan: dict[str, Any]) -> None:
    ring_plan["ingress"][0]["config"] = {"bad": float("nan")}
    assert _codes(ring_plan) == [("unparseable", "/ingress/0/config/bad")]
    ring_plan["ingress"][0]["config"] = {"bad": (1, 2)}
    assert _codes(ring_plan) == [("unparseable", "/ingress/0/config/bad")]
    ring_plan["ingress"][0]["config"] = {1: "x"}
    assert _codes(ring_plan) == [("unparseable", "/ingress/0/config")]


def test_yaml_dates_stay_strings_and_yaml_scalars_follow_yaml_rules(
    ring_plan: dict[str, Any],
) -> None:
    text = yaml.safe_dump(ring_plan) + "description: on\n"
    report = parse_plan(
        text.replace("adapter: memory", "adapter: memory\n  config: {day: 2024-01-02}", 1)
    )

    assert [(str(d.code), d.path) for d in report.diagnostics] == [("wrong_type", "/description")]


def test_lone_surrogates_are_unparseable_where_they_occur() -> None:
    assert _codes('{"s": "\\ud800"}') == [("unparseable", "/s")]


def test_huge_integer_literals_are_unparseable() -> None:
    assert _codes('{"plan": ' + "9" * 5000 + "}") == [("unparseable", "")]


def test_parse_plan_returns_the_typed_plan_with_defaults(ring_plan: dict[str, Any]) -> None:
    ring_plan["description"] = "hello"
    ring_plan["labels"] = {"team": "data"}

    result = parse_plan(ring_plan)

    assert result.ok
    assert result.plan is not None
    assert result.plan.description == "hello"
    assert result.plan.labels == (("team", "data"),)
    assert result.plan.single_ring is not None
    assert result.plan.single_ring.shards == 1
    assert [s.id for s in result.plan.stages] == ["keep", "tag"]
