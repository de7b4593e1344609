"""Compile time of a 1,000-stage LaneGraph plan, beside `json.loads` of the same document.

Run: `PYTHONPATH=src python bench/compile.py [--stages N] [--repeat R]`. Prints the best
of R runs of each and the ratio compile / json.loads (not run by the test suite).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from byteor_cloud.spec import compile_plan

_OPS: list[tuple[str, dict[str, Any]]] = [
    ("identity", {}),
    ("filter", {"field": "kind", "op": "in", "value": ["a", "b", 1]}),
    ("map", {"set": {"seen": True}, "rename": {"a": "b"}, "drop": ["tmp"]}),
    ("dataguard", {"rules": ["card:mask=4:4:*", "email:hash"]}),
]


def build_plan(stages: int) -> dict[str, Any]:
    """A chain of `stages` stages with a skip edge every tenth stage (merges and routers)."""
    ids = [f"s{i:04d}" for i in range(stages)]
    plan_stages = []
    for i, stage_id in enumerate(ids):
        op, params = _OPS[i % len(_OPS)]
        plan_stages.append({"id": stage_id, "op": op, "params": params})
    chain = ["in", *ids, "out"]
    connections: list[dict[str, Any]] = [{"from": a, "to": b} for a, b in itertools.pairwise(chain)]
    connections += [
        {"from": ids[i], "to": ids[i + 2], "capacity": 256} for i in range(0, stages - 2, 10)
    ]
    return {
        "plan": 2,
        "name": "bench",
        "target": "lane_graph",
        "ingress": [{"id": "in", "adapter": "memory"}],
        "egress": [{"id": "out", "adapter": "memory"}],
        "stages": plan_stages,
        "lane_graph": {"connections": connections},
    }


def best_of(repeat: int, action: Callable[[], object]) -> float:
    """The fastest of `repeat` timed runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text = json.dumps(build_plan(args.stages))
    report = compile_plan(text)
    assert report.ok, report.errors[:3]
    loads = best_of(args.repeat * 5, lambda: json.loads(text))
    compile_time = best_of(args.repeat, lambda: compile_plan(text))
    print(
        f"plan: {args.stages} stages, {len(text)} bytes, spec.kv {len(report.spec_kv or '')} bytes"
    )
    print(f"json.loads    {loads * 1000:9.3f} ms")
    print(f"compile_plan  {compile_time * 1000:9.3f} ms")
    print(f"ratio         {compile_time / loads:9.1f}x")


if __name__ == "__main__":
    main()
