"""Fixtures for the compiler tests: small valid plans to mutate (a fresh copy per test)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

RING_PLAN: dict[str, Any] = {
    "plan": 2,
    "name": "ring",
    "target": "single_ring",
    "ingress": [{"id": "in", "adapter": "memory"}],
    "egress": [{"id": "out", "adapter": "memory"}],
    "stages": [
        {"id": "keep", "op": "filter", "params": {"field": "ok", "op": "eq", "value": True}},
        {"id": "tag", "op": "map", "params": {"set": {"seen": 1}}, "depends_on": ["keep"]},
    ],
}

GRAPH_PLAN: dict[str, Any] = {
    "plan": 2,
    "name": "graph",
    "target": "lane_graph",
    "ingress": [{"id": "in", "adapter": "memory"}],
    "egress": [{"id": "out", "adapter": "memory"}],
    "stages": [
        {"id": "a", "op": "identity"},
        {"id": "b", "op": "map", "params": {"set": {"b": True}}},
    ],
    "lane_graph": {
        "connections": [
            {"from": "in", "to": "a"},
            {"from": "a", "to": "b"},
            {"from": "b", "to": "out"},
        ]
    },
}


@pytest.fixture
def ring_plan() -> dict[str, Any]:
    """A fresh valid single_ring plan."""
    return copy.deepcopy(RING_PLAN)


@pytest.fixture
def graph_plan() -> dict[str, Any]:
    """A fresh valid lane_graph plan."""
    return copy.deepcopy(GRAPH_PLAN)
