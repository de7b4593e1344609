"""The reference executor's vocabulary: limits, audit actions, results, errors, input.

Semantics (readings of §6/§11 documented here and in docs/spec-compiler.md):
- Records are taken one at a time, in input order, and each flows through the whole
  graph before the next one enters; nodes are visited in a fixed topological order (ties
  by id) and out-lanes in target-id order, so the same input always gives the same
  outputs and byte-identical audit actions.
- SingleRing: stages run in plan order over the one record (a linearisation of the DAG
  that respects every `depends_on`); a drop ends the record; survivors reach the egress.
  Its lanes are named `<previous>-><stage>` along that chain.
- LaneGraph: the lowered graph is executed. A node sends a record down every out-lane
  (a copy each); a `route` stage marks the record for one plan-level target, and the
  router and lanes after it forward it only towards that target. Capacity, `on_full`
  and `consumers` are runtime tuning and do not change what the reference executor does.
- One audit action per stage step: `action` the op, `role` and `stage` the stage id,
  `input_lane` the lane it came on, `output_lane` the lanes it left on (comma-joined,
  empty when dropped), `target` the URL / program / route target, `decision` one of
  `pass`, `drop`, `route`, or the side-effect handler's answer (`dry_run`, `executed`,
  `failed`, `denied`). Inserted bridge/merge/router roles do not act and are not audited.
- Limits (§11): input over `max_input_bytes` is refused before anything runs; a step that
  would be action number `max_actions + 1` stops the run before it acts (no side effect).
  Both raise `LimitExceeded` carrying the actions done so far.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from byteor_cloud.spec.executor.effects import DryRunHandler, EffectHandler, SideEffect
from byteor_cloud.spec.executor.records import (
    apply_dataguard,
    apply_map,
    copy_json,
    passes,
    route_target,
)
from byteor_cloud.spec.executor.results import (
    AuditAction,
    Emitted,
    ExecutionError,
    ExecutionLimits,
    ExecutionResult,
    LimitExceeded,
    read_records,
)
from byteor_cloud.spec.jsonvalues import Json, JsonObject, canonical_json
from byteor_cloud.spec.model import (
    DataguardParams,
    ExecParams,
    FilterParams,
    HttpPostParams,
    Lane,
    MapParams,
    PipelineSpecV1,
    RouteParams,
    SingleRingSpec,
    StageParams,
)


@dataclass(slots=True)
class _Item:
    record: JsonObject
    lane: str
    towards: str | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    record: JsonObject | None
    towards: str | None
    target: str
    decision: str


class _Graph:
    """The executable shape of a spec: node kinds, ordered out-lanes, visiting order."""

    def __init__(self, spec: PipelineSpecV1) -> None:
        self.kinds: dict[str, str] = {b.id: "ingress" for b in spec.ingress}
        self.kinds.update((b.id, "egress") for b in spec.egress)
        self.params: dict[str, StageParams] = {}
        if isinstance(spec.body, SingleRingSpec):
            lanes = self._ring(spec, spec.body)
        else:
            for role in spec.body.roles:
                self.kinds[role.id] = str(role.kind)
                if role.params is not None:
                    self.params[role.id] = role.params
            lanes = list(spec.body.lanes)
        self.out: dict[str, list[Lane]] = defaultdict(list)
        for lane in lanes:
            if lane.source not in self.kinds or lane.target not in self.kinds:
                raise ExecutionError(f"lane {lane.name} names an unknown node")
            self.out[lane.source].append(lane)
        for node_lanes in self.out.values():
            node_lanes.sort(key=lambda x: x.target)
        self.order = self._topological(lanes)
        self.expected: dict[str, Json] = {
            node: params.value.load() if params.value is not None else None
            for node, params in self.params.items()
            if isinstance(params, FilterParams)
        }

    def _ring(self, spec: PipelineSpecV1, body: SingleRingSpec) -> list[Lane]:
        if len(spec.ingress) != 1 or len(spec.egress) != 1:
            raise ExecutionError("a single_ring spec has exactly one ingress and one egress")
        chain = [spec.ingress[0].id, *(s.id for s in body.stages), spec.egress[0].id]
        for stage in body.stages:
            self.kinds[stage.id] = "stage"
            self.params[stage.id] = stage.params
        return [Lane(a, b) for a, b in itertools.pairwise(chain)]

    def _topological(self, lanes: list[Lane]) -> list[str]:
        indegree = dict.fromkeys(self.kinds, 0)
        for lane in lanes:
            indegree[lane.target] += 1
        ready = deque(sorted(node for node, degree in indegree.items() if degree == 0))
        order: list[str] = []
        while ready:
            node = ready.popleft()
            order.append(node)
            for lane in self.out.get(node, []):
                indegree[lane.target] -= 1
                if indegree[lane.target] == 0:
                    ready.append(lane.target)
        if len(order) != len(self.kinds):
            raise ExecutionError("the spec's graph has a cycle")
        return order

    def destination(self, node: str) -> str | None:
        """The plan-level node a lane into `node` leads to (None: a router decides)."""
        return _destination(self, node)

    def lanes_for(self, node: str, towards: str | None) -> list[Lane]:
        """The out-lanes a record takes from `node` (only towards a route target if set)."""
        lanes = self.out.get(node, [])
        if towards is None:
            return lanes
        return [x for x in lanes if self.destination(x.target) in (towards, None)]


def _destination(graph: _Graph, node: str) -> str | None:
    seen = 0
    while graph.kinds[node] in ("bridge", "merge") and seen < len(graph.kinds):
        lanes = graph.out.get(node, [])
        if len(lanes) != 1:
            return None
        node, seen = lanes[0].target, seen + 1
    return None if graph.kinds[node] == "router" else node


class Executor:
    """Runs one spec; reusable across runs (the handler and limits are fixed per executor)."""

    def __init__(
        self,
        spec: PipelineSpecV1,
        *,
        handler: EffectHandler | None = None,
        limits: ExecutionLimits | None = None,
    ) -> None:
        self.spec = spec
        self.handler: EffectHandler = handler if handler is not None else DryRunHandler()
        self.limits = limits if limits is not None else ExecutionLimits()
        self._graph = _Graph(spec)

    def run(
        self, records: Iterable[bytes | str | Mapping[str, Any]], *, ingress: str | None = None
    ) -> ExecutionResult:
        """Run records (JSON lines or mappings) entering at `ingress` (default: the only one)."""
        entry = self._entry(ingress)
        inputs, total = read_records(records, self.limits.max_input_bytes)
        run = _Run(self._graph, self.handler, self.limits.max_actions)
        for record in inputs:
            run.feed(entry, record)
        return ExecutionResult(tuple(run.outputs), tuple(run.actions), len(inputs), total)

    def _entry(self, ingress: str | None) -> str:
        ids = [b.id for b in self.spec.ingress]
        if ingress is None:
            if len(ids) != 1:
                raise ExecutionError(f"the spec has {len(ids)} ingresses; name the one to feed")
            return ids[0]
        if ingress not in ids:
            raise ExecutionError(f"no ingress {ingress!r}")
        return ingress


class _Run:
    """The state of one run: outputs and actions so far."""

    def __init__(self, graph: _Graph, handler: EffectHandler, max_actions: int) -> None:
        self.graph = graph
        self.handler = handler
        self.max_actions = max_actions
        self.outputs: list[Emitted] = []
        self.actions: list[AuditAction] = []

    def feed(self, entry: str, record: JsonObject) -> None:
        inbox: dict[str, list[_Item]] = defaultdict(list)
        inbox[entry].append(_Item(record, ""))
        for node in self.graph.order:
            items = inbox.pop(node, None)
            if not items:
                continue
            kind = self.graph.kinds[node]
            for item in items:
                if kind == "egress":
                    self.outputs.append(Emitted(node, item.record))
                elif kind == "stage":
                    self._step(node, item, inbox)
                else:
                    lanes = self.graph.lanes_for(node, item.towards)
                    _deliver(lanes, item.record, item.towards, inbox)

    def _step(self, node: str, item: _Item, inbox: dict[str, list[_Item]]) -> None:
        if len(self.actions) >= self.max_actions:
            raise LimitExceeded(
                f"the run reached {self.max_actions} actions",
                code="too_many_actions",
                actions=tuple(self.actions),
            )
        params = self.graph.params[node]
        outcome = self._apply(node, params, item.record)
        lanes = [] if outcome.record is None else self.graph.lanes_for(node, outcome.towards)
        self.actions.append(
            AuditAction(
                action=str(params.op),
                role=node,
                input_lane=item.lane,
                output_lane=",".join(lane.name for lane in lanes),
                stage=node,
                target=outcome.target,
                decision=outcome.decision,
            )
        )
        if outcome.record is not None:
            _deliver(lanes, outcome.record, outcome.towards, inbox)

    def _apply(self, node: str, params: StageParams, record: JsonObject) -> _Outcome:
        if isinstance(params, FilterParams):
            kept = passes(params, self.graph.expected[node], record)
            return _Outcome(record if kept else None, None, "", "pass" if kept else "drop")
        if isinstance(params, MapParams):
            apply_map(params, record)
        elif isinstance(params, DataguardParams):
            apply_dataguard(params, record)
        elif isinstance(params, RouteParams):
            target = route_target(params, record)
            if target is None:
                return _Outcome(None, None, "", "drop")
            return _Outcome(record, target, target, "route")
        elif isinstance(params, HttpPostParams | ExecParams):
            return self._effect(node, params, record)
        return _Outcome(record, None, "", "pass")

    def _effect(
        self, node: str, params: HttpPostParams | ExecParams, record: JsonObject
    ) -> _Outcome:
        body = canonical_json(record).encode("utf-8")
        if isinstance(params, HttpPostParams):
            effect = SideEffect("http_post", node, params.url, body)
        else:
            effect = SideEffect("exec", node, params.program, body, params.args)
        return _Outcome(record, None, effect.target, self.handler.perform(effect))


def _deliver(
    lanes: list[Lane], record: JsonObject, towards: str | None, inbox: dict[str, list[_Item]]
) -> None:
    for i, lane in enumerate(lanes):
        copy = record if i == len(lanes) - 1 else copy_json(record)
        assert isinstance(copy, dict)
        inbox[lane.target].append(_Item(copy, lane.name, towards))


def run_spec(
    spec: PipelineSpecV1,
    records: Iterable[bytes | str | Mapping[str, Any]],
    *,
    handler: EffectHandler | None = None,
    ingress: str | None = None,
    limits: ExecutionLimits | None = None,
) -> ExecutionResult:
    """Run a spec once over records; dry-run (nothing performed) unless a handler is given."""
    return Executor(spec, handler=handler, limits=limits).run(records, ingress=ingress)
