"""The benchmarks still run end to end (briefly) and print a ratio for every path they
measure. Their figures are not judged here: the test suite has no timing asserts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RATIO = re.compile(r"ratio\s+([0-9]+\.[0-9]+)x")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        # Skips (or fails, with CI=true) like every PostgreSQL test when the server is away.
        request.getfixturevalue("postgres_schema")
    return str(request.param)


def run_bench(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHONPATH": "src"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def ratios(output: str) -> list[float]:
    return [float(match) for match in RATIO.findall(output)]


def test_the_agent_benchmark_measures_both_paths_against_the_hello_world(backend: str) -> None:
    output = run_bench("bench/agents.py", "--seconds", "1", "--rounds", "1", "--backend", backend)
    lines = [line.split()[:2] for line in output.splitlines() if "median ratio" in line]
    assert lines == [[backend, "heartbeat"], [backend, "desired"]]
    assert len(ratios(output)) == 2
    assert all(ratio > 0 for ratio in ratios(output))


def test_the_job_benchmark_prints_its_ratio(backend: str) -> None:
    output = run_bench("bench/jobs.py", "--jobs", "40", "--backend", backend)
    assert output.split()[0] == backend
    assert len(ratios(output)) == 1


def test_the_compiler_benchmark_prints_its_ratio() -> None:
    output = run_bench("bench/compile.py", "--stages", "20", "--repeat", "2")
    assert len(ratios(output)) == 1
