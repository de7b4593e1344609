"""The topology of a spec as plain nodes and edges, shared by the describe, DOT and SVG views.

SingleRing specs have no lanes; their picture draws the dependency DAG: the ingress feeds
every stage without dependencies, each dependency is an edge, and every stage nothing
depends on feeds the egress.
"""

from __future__ import annotations

from dataclasses import dataclass

from byteor_cloud.spec.model import (
    DataguardParams,
    ExecParams,
    FilterOp,
    FilterParams,
    HttpPostParams,
    IdentityParams,
    LaneKind,
    MapParams,
    PipelineSpecV1,
    RouteParams,
    SingleRingSpec,
    StageParams,
)


@dataclass(frozen=True, slots=True)
class Node:
    """A drawable node: `kind` is ingress, egress, stage, bridge, merge or router."""

    id: str
    kind: str
    title: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Edge:
    """A drawable edge with a short label."""

    source: str
    target: str
    label: str = ""


def summarise(params: StageParams) -> str:
    """A one-line human summary of a stage's parameters."""
    if isinstance(params, IdentityParams):
        return ""
    if isinstance(params, FilterParams):
        if params.operator is FilterOp.exists:
            return f"{params.field} exists"
        return f"{params.field} {params.operator} {params.value}"
    if isinstance(params, MapParams):
        parts = [f"set {k}={v}" for k, v in params.set_fields]
        parts += [f"rename {a}->{b}" for a, b in params.rename]
        parts += [f"drop {f}" for f in params.drop]
        return "; ".join(parts)
    if isinstance(params, DataguardParams):
        return "; ".join(str(rule) for rule in params.rules)
    if isinstance(params, RouteParams):
        cases = ", ".join(f"{value}->{target}" for value, target in params.cases)
        default = f" else {params.default}" if params.default is not None else ""
        return f"by {params.field}: {cases}{default}"
    if isinstance(params, HttpPostParams):
        return params.url
    assert isinstance(params, ExecParams)
    return " ".join([params.program, *params.args])


def lane_label(kind: LaneKind, capacity: int, consumers: int | None) -> str:
    """Short lane label, e.g. `events 1024` or `fanout_broadcast 64 x4`."""
    label = f"{kind} {capacity}"
    return f"{label} x{consumers}" if consumers is not None else label


def topology(spec: PipelineSpecV1) -> tuple[list[Node], list[Edge]]:
    """Nodes (boundaries first, then stages/roles in spec order) and edges of a spec."""
    nodes = [Node(b.id, "ingress", b.id, b.adapter) for b in spec.ingress]
    nodes += [Node(b.id, "egress", b.id, b.adapter) for b in spec.egress]
    if isinstance(spec.body, SingleRingSpec):
        return nodes + _ring_nodes(spec.body), _ring_edges(spec, spec.body)
    for role in spec.body.roles:
        if role.params is not None:
            nodes.append(Node(role.id, "stage", role.id, str(role.params.op)))
        else:
            nodes.append(Node(role.id, str(role.kind), role.id))
    edges = [
        Edge(lane.source, lane.target, lane_label(lane.kind, lane.capacity, lane.consumers))
        for lane in spec.body.lanes
    ]
    return nodes, edges


def _ring_nodes(body: SingleRingSpec) -> list[Node]:
    return [Node(stage.id, "stage", stage.id, str(stage.op)) for stage in body.stages]


def _ring_edges(spec: PipelineSpecV1, body: SingleRingSpec) -> list[Edge]:
    edges: list[Edge] = []
    depended = {d for stage in body.stages for d in stage.depends_on}
    for i, stage in enumerate(body.stages):
        if not stage.depends_on:
            edges += [Edge(b.id, stage.id, "ring") for b in spec.ingress]
        edges += [Edge(body.stages[d].id, stage.id, "ring") for d in stage.depends_on]
        if i not in depended:
            edges += [Edge(stage.id, b.id, "ring") for b in spec.egress]
    return edges
