"""Golden fixtures: each plan compiles to exactly its committed spec.kv (the contract)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from byteor_cloud.spec import compile_plan, decode_spec, encode_spec

FIXTURES = Path(__file__).parent / "fixtures"

GOLDEN = FIXTURES / "golden"
PLANS = sorted(p for p in GOLDEN.iterdir() if ".plan." in p.name)


def _name(path: Path) -> str:
    return path.name.split(".plan.")[0]


def test_there_are_a_dozen_golden_plans_covering_both_targets() -> None:
    names = [_name(p) for p in PLANS]
    assert len(names) >= 12
    assert any(n.startswith("sr_") for n in names)
    assert any(n.startswith("lg_") for n in names)


@pytest.mark.parametrize("plan_path", PLANS, ids=_name)
def test_plan_compiles_to_its_committed_spec_kv(plan_path: Path) -> None:
    name = _name(plan_path)
    expected_kv = (GOLDEN / f"{name}.spec.kv").read_bytes().decode("utf-8")
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())

    report = compile_plan(plan_path.read_bytes())

    assert report.spec_kv == expected_kv
    assert report.spec_hash == "sha256:" + hashlib.sha256(expected_kv.encode()).hexdigest()
    assert report.spec_hash == expected["spec_hash"]
    assert list(report.capabilities) == expected["capabilities"]
    assert [f"{d.code} {d.path}" for d in report.diagnostics] == expected["info"]
    assert all(d.severity == "info" for d in report.diagnostics)


@pytest.mark.parametrize("plan_path", PLANS, ids=_name)
def test_committed_spec_kv_decodes_and_re_encodes_to_the_same_bytes(plan_path: Path) -> None:
    text = (GOLDEN / f"{_name(plan_path)}.spec.kv").read_bytes().decode("utf-8")

    spec = decode_spec(text)

    assert encode_spec(spec) == text
    assert spec == compile_plan(plan_path.read_bytes()).spec


def test_every_op_appears_in_the_golden_plans() -> None:
    ops = set()
    for path in PLANS:
        spec = compile_plan(path.read_bytes()).spec
        assert spec is not None
        ops |= {str(stage.op) for stage in spec.stages}
    assert ops == {"identity", "filter", "map", "dataguard", "route", "http_post", "exec"}


def test_every_lowering_insertion_appears_in_the_golden_plans() -> None:
    codes = set()
    for path in PLANS:
        codes |= {str(d.code) for d in compile_plan(path.read_bytes()).diagnostics}
    assert {"bridge_inserted", "merge_inserted", "router_inserted"} <= codes
