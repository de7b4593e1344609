"""`byteor-cloud spec …` through Typer's CliRunner: exit codes, human and --json output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from byteor_cloud.cli.spec import app

FIXTURES = Path(__file__).parent / "fixtures"
WORKED = str(FIXTURES / "worked_example.plan.json")
HASH = "sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657"

runner = CliRunner()


@pytest.fixture
def bad_plan(tmp_path: Path) -> str:
    path = tmp_path / "bad.json"
    plan = json.loads(Path(WORKED).read_text())
    plan["stages"][0]["op"] = "explode"
    path.write_text(json.dumps(plan))
    return str(path)


@pytest.fixture
def spec_kv(tmp_path: Path) -> str:
    path = tmp_path / "spec.kv"
    path.write_bytes((FIXTURES / "golden" / "sr_effects.spec.kv").read_bytes())
    return str(path)


def test_validate_ok_prints_the_hash() -> None:
    result = runner.invoke(app, ["validate", WORKED])

    assert result.exit_code == 0
    assert HASH in result.stdout


def test_validate_json_prints_the_compile_report() -> None:
    result = runner.invoke(app, ["validate", "--json", WORKED])

    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) == {"spec_kv", "spec_hash", "capabilities", "diagnostics"}
    assert report["spec_hash"] == HASH


def test_validate_shows_lowering_notes() -> None:
    result = runner.invoke(app, ["validate", str(FIXTURES / "golden" / "lg_merge.plan.json")])

    assert result.exit_code == 0
    assert "merge_inserted" in result.stdout


def test_validate_errors_exit_1_with_diagnostics(bad_plan: str) -> None:
    result = runner.invoke(app, ["validate", bad_plan])

    assert result.exit_code == 1
    assert "unknown_op" in result.stderr
    assert "/stages/0/op" in result.stderr


def test_validate_errors_in_json(bad_plan: str) -> None:
    result = runner.invoke(app, ["validate", bad_plan, "--json"])

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["spec_kv"] is None
    assert [d["code"] for d in report["diagnostics"]] == ["unknown_op"]


@pytest.mark.parametrize("command", ["describe", "dot", "svg", "hash"])
def test_commands_fail_with_exit_1_on_a_bad_plan(command: str, bad_plan: str) -> None:
    assert runner.invoke(app, [command, bad_plan]).exit_code == 1
    result = runner.invoke(app, [command, bad_plan, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["diagnostics"][0]["code"] == "unknown_op"


def test_hash_prints_only_the_hash() -> None:
    result = runner.invoke(app, ["hash", WORKED])

    assert result.exit_code == 0
    assert result.stdout == HASH + "\n"


def test_hash_json_has_capabilities() -> None:
    result = runner.invoke(app, ["hash", WORKED, "--json"])

    payload = json.loads(result.stdout)
    assert payload["spec_hash"] == HASH
    assert payload["capabilities"] == ["http_post:https://hooks.example.com/orders"]


def test_hash_of_a_spec_kv_file_is_the_hash_of_its_bytes(spec_kv: str) -> None:
    expected = json.loads((FIXTURES / "golden" / "sr_effects.expected.json").read_text())

    result = runner.invoke(app, ["hash", spec_kv])

    assert result.exit_code == 0
    assert result.stdout.strip() == expected["spec_hash"]


def test_a_non_canonical_spec_kv_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.kv"
    path.write_text("spec.v=1\nspec.model=single_ring\nspec.name=x\nzzz=1\n")

    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "error:" in result.stderr
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert json.loads(result.stdout)["error"]["code"] == "invalid_spec"


def test_describe_in_text_and_json() -> None:
    text = runner.invoke(app, ["describe", WORKED])
    payload = json.loads(runner.invoke(app, ["describe", WORKED, "--json"]).stdout)

    assert text.exit_code == 0
    assert "orders-enrich (single_ring)" in text.stdout
    assert payload["model"] == "single_ring"
    assert [s["id"] for s in payload["stages"]] == ["only-eu", "redact", "notify"]


def test_dot_and_svg() -> None:
    dot = runner.invoke(app, ["dot", WORKED])
    svg = runner.invoke(app, ["svg", WORKED])

    assert dot.exit_code == svg.exit_code == 0
    assert dot.stdout.startswith('digraph "orders-enrich"')
    ET.fromstring(svg.stdout)  # noqa: S314 - parses our own SVG output
    assert json.loads(runner.invoke(app, ["svg", WORKED, "--json"]).stdout)["svg"] == svg.stdout


def test_diff_of_a_plan_and_its_own_spec_kv_is_identical(tmp_path: Path) -> None:
    kv = tmp_path / "worked.kv"
    kv.write_text(json.loads(runner.invoke(app, ["hash", WORKED, "--json"]).stdout)["spec_kv"])

    result = runner.invoke(app, ["diff", WORKED, str(kv)])

    assert result.exit_code == 0
    assert result.stdout.startswith("identical")


def test_diff_shows_summary_and_lines(tmp_path: Path) -> None:
    plan = json.loads(Path(WORKED).read_text())
    plan["stages"][2]["params"]["url"] = "https://new.example.com/"
    new = tmp_path / "new.json"
    new.write_text(json.dumps(plan))

    text = runner.invoke(app, ["diff", WORKED, str(new)])
    payload = json.loads(runner.invoke(app, ["diff", WORKED, str(new), "--json"]).stdout)

    assert text.exit_code == 0
    assert "stages changed: notify" in text.stdout
    assert "+single_ring.stages.2.params.url=https://new.example.com/" in text.stdout
    assert payload["capabilities"]["added"] == ["http_post:https://new.example.com/"]
    assert payload["identical"] is False


def test_stdin_is_read_for_dash() -> None:
    result = runner.invoke(app, ["hash", "-"], input=Path(WORKED).read_bytes())

    assert result.exit_code == 0
    assert result.stdout.strip() == HASH


def test_yaml_plans_are_accepted() -> None:
    result = runner.invoke(app, ["validate", str(FIXTURES / "golden" / "sr_defaults.plan.yaml")])

    assert result.exit_code == 0


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.json")])

    assert result.exit_code == 2
    assert "cannot read" in result.stderr
