"""LaneGraph semantic rules (§6): boundaries, connections, lane kinds, acyclicity, reach.

Readings of §6 taken here: the `lane_graph` block and its `connections` are required
(`missing_field`), `on_full` and `features` optional; a feature must name a gated kind
(`journal`, `sequenced_slots`) and may not repeat (`invalid_value`); a connection's kind
is its `lane` member (as in the §6 example). Ends: an unknown id is `unknown_reference`;
leaving an egress or entering an ingress is `invalid_connection`; a stage connected to
itself is a `cycle`. `consumers` is only for `fanout_broadcast` (elsewhere, or outside
1–64, `invalid_consumers`). Graph checks (cycles, reach, route targets) run only once
every connection resolves, so one typo gives one error; each cycle is reported once, at
its lowest-numbered connection. A route's `cases`/`default` naming something it has no
connection to is `unknown_reference`.
"""

from __future__ import annotations

from collections import defaultdict

from byteor_cloud.spec.diagnostics import DiagnosticCode as C
from byteor_cloud.spec.diagnostics import Sink
from byteor_cloud.spec.jsonvalues import Json, JsonObject, pointer, pointer_child
from byteor_cloud.spec.model import LaneKind, OnFull, RouteParams
from byteor_cloud.spec.plan import (
    GraphOptions,
    PlanBoundary,
    PlanConnection,
    StageDraft,
    TargetPart,
)
from byteor_cloud.spec.reader import ObjectReader, as_object, type_name

MAX_CAPACITY = 1_048_576
MAX_CONSUMERS = 64
GATED_KINDS = frozenset({LaneKind.journal, LaneKind.sequenced_slots})
_GRAPH_FIELDS = ("connections", "on_full", "features")
_CONNECTION_FIELDS = ("from", "to", "lane", "capacity", "consumers")


class _Ends:
    """The ids a connection may name, by role."""

    def __init__(
        self,
        ingress: list[PlanBoundary | None] | None,
        egress: list[PlanBoundary | None] | None,
        drafts: list[StageDraft] | None,
    ) -> None:
        self.ingress = {b.id for b in ingress or [] if b is not None}
        self.egress = {b.id for b in egress or [] if b is not None}
        self.stages = {d.id for d in drafts or [] if d.id is not None}


def check_lane_graph(
    document: JsonObject,
    ingress: list[PlanBoundary | None] | None,
    egress: list[PlanBoundary | None] | None,
    drafts: list[StageDraft] | None,
    sink: Sink,
) -> TargetPart | None:
    """Apply the LaneGraph rules; the typed stages and options when they hold."""
    for name, items in (("ingress", ingress), ("egress", egress)):
        if items is not None and not items:
            sink.error(
                C.boundary_count, pointer(name), f"a lane_graph plan needs at least one {name}"
            )
    path = pointer("lane_graph")
    if "lane_graph" not in document:
        sink.error(C.missing_field, path, "a lane_graph plan needs a `lane_graph` block")
        return None
    block = as_object(document["lane_graph"], path, sink, "`lane_graph`")
    if block is None:
        return None
    before = sink.error_count()
    reader = ObjectReader(block, path, sink, _GRAPH_FIELDS)
    on_full = reader.enum("on_full", OnFull, OnFull.block)
    features = _features(reader)
    ends = _Ends(ingress, egress, drafts)
    connections = _connections(reader, ends, features, sink)
    if connections is not None and sink.error_count() == before:
        _graph_checks(connections, ends, drafts or [], sink)
    stages = [d.finished() for d in drafts or []]
    typed = tuple(s for s in stages if s is not None)
    if connections is None or on_full is None or len(typed) != len(stages):
        return None
    return typed, GraphOptions(tuple(connections), on_full, tuple(sorted(features)))


def _features(reader: ObjectReader) -> set[LaneKind]:
    items = reader.array("features", required=False) or []
    found: set[LaneKind] = set()
    for i, item in enumerate(items):
        path = pointer_child(reader.at("features"), i)
        if not isinstance(item, str):
            reader.sink.error(
                C.wrong_type, path, f"a feature must be a string, not {type_name(item)}"
            )
        elif item not in GATED_KINDS:
            reader.sink.error(
                C.invalid_value, path, f"unknown feature {item!r} (journal, sequenced_slots)"
            )
        elif LaneKind(item) in found:
            reader.sink.error(C.invalid_value, path, f"feature {item!r} is listed twice")
        else:
            found.add(LaneKind(item))
    return found


def _connections(
    reader: ObjectReader, ends: _Ends, features: set[LaneKind], sink: Sink
) -> list[PlanConnection] | None:
    items = reader.array("connections")
    if items is None:
        return None
    out: list[PlanConnection] = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        path = pointer_child(reader.at("connections"), i)
        connection = _connection(item, path, ends, features, sink)
        if connection is None:
            continue
        pair = (connection.source, connection.target)
        if pair in seen:
            sink.error(
                C.duplicate_connection,
                path,
                f"{pair[0]} -> {pair[1]} is already connection {seen[pair]}",
            )
            continue
        seen[pair] = i
        out.append(connection)
    return out


def _connection(
    raw: Json, path: str, ends: _Ends, features: set[LaneKind], sink: Sink
) -> PlanConnection | None:
    obj = as_object(raw, path, sink, "a connection")
    if obj is None:
        return None
    before = sink.error_count()
    reader = ObjectReader(obj, path, sink, _CONNECTION_FIELDS)
    source = reader.string("from")
    target = reader.string("to")
    _check_ends(reader, source, target, ends)
    kind = reader.enum("lane", LaneKind, LaneKind.events)
    if kind in GATED_KINDS and kind not in features:
        sink.error(
            C.feature_not_enabled,
            reader.at("lane"),
            f"lane kind {kind} needs `{kind}` in lane_graph.features",
        )
    capacity = reader.integer("capacity", 1024)
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        sink.error(
            C.invalid_capacity,
            reader.at("capacity"),
            f"capacity must be 1–{MAX_CAPACITY}, not {capacity}",
        )
    consumers = _consumers(reader, kind)
    if sink.error_count() != before or source is None or target is None or kind is None:
        return None
    assert capacity is not None
    return PlanConnection(source, target, kind, capacity, consumers, path)


def _check_ends(reader: ObjectReader, source: str | None, target: str | None, ends: _Ends) -> None:
    sink = reader.sink
    if source is not None:
        if source in ends.egress:
            sink.error(
                C.invalid_connection,
                reader.at("from"),
                f"{source!r} is an egress; nothing leaves it",
            )
        elif source not in ends.ingress and source not in ends.stages:
            sink.error(
                C.unknown_reference, reader.at("from"), f"no ingress or stage has id {source!r}"
            )
    if target is not None:
        if target in ends.ingress:
            sink.error(
                C.invalid_connection,
                reader.at("to"),
                f"{target!r} is an ingress; nothing enters it",
            )
        elif target not in ends.egress and target not in ends.stages:
            sink.error(
                C.unknown_reference, reader.at("to"), f"no stage or egress has id {target!r}"
            )
    if source is not None and source == target and source in ends.stages:
        sink.error(C.cycle, reader.path, f"stage {source!r} is connected to itself")


def _consumers(reader: ObjectReader, kind: LaneKind | None) -> int | None:
    if not reader.has("consumers"):
        return 1 if kind is LaneKind.fanout_broadcast else None
    consumers = reader.integer("consumers", None)
    if consumers is None:
        return None
    if kind is not LaneKind.fanout_broadcast:
        reader.sink.error(
            C.invalid_consumers,
            reader.at("consumers"),
            "`consumers` is only for fanout_broadcast lanes",
        )
    elif not 1 <= consumers <= MAX_CONSUMERS:
        reader.sink.error(
            C.invalid_consumers,
            reader.at("consumers"),
            f"consumers must be 1–{MAX_CONSUMERS}, not {consumers}",
        )
    return consumers


def _graph_checks(
    connections: list[PlanConnection], ends: _Ends, drafts: list[StageDraft], sink: Sink
) -> None:
    _cycles(connections, sink)
    forward = _reach(ends.ingress, [(c.source, c.target) for c in connections])
    backward = _reach(ends.egress, [(c.target, c.source) for c in connections])
    for draft in drafts:
        if draft.id is None:
            continue
        if draft.id not in forward:
            sink.error(
                C.unreachable_stage,
                draft.path,
                f"stage {draft.id!r} is not reachable from any ingress",
            )
        elif draft.id not in backward:
            sink.error(
                C.unreachable_stage, draft.path, f"stage {draft.id!r} does not reach any egress"
            )
    for draft in drafts:
        if isinstance(draft.params, RouteParams) and draft.id is not None:
            _route_targets(draft.id, draft.params, draft.path, connections, sink)


def _reach(starts: set[str], edges: list[tuple[str, str]]) -> set[str]:
    after: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        after[a].append(b)
    seen = set(starts)
    todo = sorted(starts)
    while todo:
        node = todo.pop()
        for nxt in after[node]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycles(connections: list[PlanConnection], sink: Sink) -> None:
    edges = [(c.source, c.target) for c in connections if c.source != c.target]
    component = strongly_connected(edges)
    reported: set[int] = set()
    for connection in connections:
        a, b = connection.source, connection.target
        if a == b or component.get(a) != component.get(b):
            continue
        group = component[a]
        if group in reported:
            continue
        reported.add(group)
        members = sorted(n for n, g in component.items() if g == group)
        sink.error(C.cycle, connection.path, f"the graph has a cycle through {', '.join(members)}")


def strongly_connected(edges: list[tuple[str, str]]) -> dict[str, int]:
    """Component number of every node (iterative Kosaraju; nodes in one cycle share one)."""
    after: dict[str, list[str]] = defaultdict(list)
    before: dict[str, list[str]] = defaultdict(list)
    nodes: set[str] = set()
    for a, b in edges:
        after[a].append(b)
        before[b].append(a)
        nodes.update((a, b))
    order: list[str] = []
    visited: set[str] = set()
    for root in sorted(nodes):
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(after[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in visited:
                visited.add(child)
                stack.append((child, iter(after[child])))
    component: dict[str, int] = {}
    for number, root in enumerate(reversed(order)):
        if root in component:
            continue
        component[root] = number
        todo = [root]
        while todo:
            for prev in before[todo.pop()]:
                if prev not in component:
                    component[prev] = number
                    todo.append(prev)
    return component


def _route_targets(
    stage_id: str, params: RouteParams, path: str, connections: list[PlanConnection], sink: Sink
) -> None:
    targets = {c.target for c in connections if c.source == stage_id}
    params_path = pointer_child(path, "params")
    for value, target in params.cases:
        if target not in targets:
            sink.error(
                C.unknown_reference,
                pointer_child(pointer_child(params_path, "cases"), value),
                f"case {value!r} names {target!r}, which this route has no connection to",
            )
    if params.default is not None and params.default not in targets:
        sink.error(
            C.unknown_reference,
            pointer_child(params_path, "default"),
            f"default names {params.default!r}, which this route has no connection to",
        )
