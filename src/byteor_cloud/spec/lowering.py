"""Deterministic lowering of a validated plan into PipelineSpecV1 (§6 "Lowering").

LaneGraph lowering runs three passes in the order §6 fixes — bridges, then merges, then
routers — each insertion reported as an `info` diagnostic. Within a pass, bridges follow
connection order and merges/routers follow the id of the node they serve; the order only
affects the order of the diagnostics, since roles and lanes are sorted when encoded.
Ingress and egress boundaries are not roles (they are written under `ingress`/`egress`);
routers count only `events` outputs, so `fanout_broadcast`, `journal` and
`sequenced_slots` lanes keep leaving their node directly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from byteor_cloud.spec.diagnostics import DiagnosticCode as C
from byteor_cloud.spec.diagnostics import Sink
from byteor_cloud.spec.model import (
    Boundary,
    Lane,
    LaneGraphSpec,
    LaneKind,
    PipelineSpecV1,
    Role,
    RoleKind,
    SingleRingSpec,
    Stage,
)
from byteor_cloud.spec.plan import GraphOptions, PipelinePlanV2, PlanBoundary, RingOptions

NEW_LINK_CAPACITY = 1024


def lower(plan: PipelinePlanV2, sink: Sink) -> PipelineSpecV1:
    """Lower a validated plan; LaneGraph insertions are reported into `sink`."""
    body: SingleRingSpec | LaneGraphSpec
    if plan.lane_graph is not None:
        body = _lane_graph(plan, plan.lane_graph, sink)
    else:
        body = _single_ring(plan, plan.single_ring or RingOptions())
    return PipelineSpecV1(
        name=plan.name,
        ingress=tuple(_boundary(b) for b in plan.ingress),
        egress=tuple(_boundary(b) for b in plan.egress),
        body=body,
    )


def _boundary(boundary: PlanBoundary) -> Boundary:
    return Boundary(boundary.id, boundary.adapter, boundary.config)


def _single_ring(plan: PipelinePlanV2, options: RingOptions) -> SingleRingSpec:
    index_of = {stage.id: i for i, stage in enumerate(plan.stages)}
    stages = tuple(
        Stage(stage.id, stage.params, tuple(index_of[d] for d in stage.depends_on))
        for stage in plan.stages
    )
    return SingleRingSpec(
        stages=stages,
        shards=options.shards,
        ordering=options.ordering,
        shard_key=options.shard_key,
    )


def _lane_graph(plan: PipelinePlanV2, options: GraphOptions, sink: Sink) -> LaneGraphSpec:
    paths = {b.id: b.path for b in (*plan.ingress, *plan.egress)}
    paths.update((s.id, s.path) for s in plan.stages)
    roles = [Role(stage.id, RoleKind.stage, stage.params) for stage in plan.stages]
    lanes = _bridges(plan, options, roles, sink)
    lanes = _merges(lanes, {b.id for b in plan.ingress}, paths, roles, sink)
    lanes = _routers(lanes, paths, roles, sink)
    return LaneGraphSpec(
        roles=tuple(roles),
        lanes=tuple(lanes),
        on_full=options.on_full,
        features=options.features,
    )


def _bridges(
    plan: PipelinePlanV2, options: GraphOptions, roles: list[Role], sink: Sink
) -> list[Lane]:
    ingress = {b.id for b in plan.ingress}
    egress = {b.id for b in plan.egress}
    lanes: list[Lane] = []
    for conn in options.connections:
        lane = Lane(conn.source, conn.target, conn.kind, conn.capacity, conn.consumers)
        if conn.source not in ingress and conn.target not in egress:
            lanes.append(lane)
            continue
        bridge = f"bridge:{conn.source}:{conn.target}"
        roles.append(Role(bridge, RoleKind.bridge))
        lanes += [replace(lane, target=bridge), replace(lane, source=bridge)]
        sink.info(
            C.bridge_inserted,
            conn.path,
            f"bridge `{bridge}` inserted on {conn.source} -> {conn.target}",
        )
    return lanes


def _merges(
    lanes: list[Lane], ingress: set[str], paths: dict[str, str], roles: list[Role], sink: Sink
) -> list[Lane]:
    inputs = Counter(lane.target for lane in lanes)
    merged = sorted(n for n, count in inputs.items() if count > 1 and n not in ingress)
    chosen = set(merged)
    lanes = [replace(x, target=f"merge:{x.target}") if x.target in chosen else x for x in lanes]
    for node in merged:
        merge = f"merge:{node}"
        roles.append(Role(merge, RoleKind.merge))
        lanes.append(Lane(merge, node, LaneKind.events, NEW_LINK_CAPACITY))
        sink.info(
            C.merge_inserted,
            paths.get(node, ""),
            f"merge `{merge}` inserted in front of {node} ({inputs[node]} inputs)",
        )
    return lanes


def _routers(lanes: list[Lane], paths: dict[str, str], roles: list[Role], sink: Sink) -> list[Lane]:
    outputs = Counter(lane.source for lane in lanes if lane.kind is LaneKind.events)
    routed = sorted(n for n, count in outputs.items() if count > 1)
    chosen = set(routed)
    lanes = [
        replace(x, source=f"router:{x.source}")
        if x.source in chosen and x.kind is LaneKind.events
        else x
        for x in lanes
    ]
    for node in routed:
        router = f"router:{node}"
        roles.append(Role(router, RoleKind.router))
        lanes.append(Lane(node, router, LaneKind.events, NEW_LINK_CAPACITY))
        sink.info(
            C.router_inserted,
            paths.get(node, ""),
            f"router `{router}` inserted behind {node} ({outputs[node]} events outputs)",
        )
    return lanes
