"""Parsing and validating a PipelinePlanV2: structure, ids, stages, then the target's rules.

Readings of §6 taken here: `plan`, `name`, `target`, `ingress`, `egress` and `stages` are
required; `description`, `labels`, `config`, `params`, `depends_on` and the active
target's block (except LaneGraph `connections`) are optional with the defaults of §6.
A `plan` other than 2 stops validation with `unsupported_plan_version` alone (the rest of
the document may mean something else in another version). A `name` that breaks the id
pattern is `invalid_value` (it is a name, not an id: `invalid_id` is kept for ids).
`description` is free text (control characters allowed, never encoded) and `labels` an
object of strings. The inactive target block is not read at all, and `depends_on` is not
read in a LaneGraph plan (§6: the topology comes only from connections), so a draft can
switch target without edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from byteor_cloud.spec.diagnostics import Diagnostic, Sink
from byteor_cloud.spec.diagnostics import DiagnosticCode as C
from byteor_cloud.spec.jsonvalues import Json, JsonObject, JsonValue, pointer, pointer_child
from byteor_cloud.spec.lane_graph import check_lane_graph
from byteor_cloud.spec.loader import load_plan_document
from byteor_cloud.spec.model import Op, Target
from byteor_cloud.spec.params import check_params
from byteor_cloud.spec.plan import (
    GraphOptions,
    PipelinePlanV2,
    PlanBoundary,
    RingOptions,
    StageDraft,
    TargetPart,
)
from byteor_cloud.spec.reader import ObjectReader, as_object, type_name
from byteor_cloud.spec.single_ring import check_single_ring
from byteor_cloud.spec.syntax import ADAPTER_RE, is_id

PLAN_VERSION = 2
_ID_TEXT = "[a-z0-9][a-z0-9_-]{0,62}"
_TOP_FIELDS = (
    "plan",
    "name",
    "description",
    "labels",
    "target",
    "ingress",
    "egress",
    "stages",
    "single_ring",
    "lane_graph",
)


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The outcome of parsing: the typed plan when there is no error, and the diagnostics."""

    plan: PipelinePlanV2 | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """Whether the plan is valid (no error diagnostics)."""
        return self.plan is not None


def parse_plan(source: str | bytes | Mapping[str, Any]) -> PlanResult:
    """Load (JSON or YAML text, or a mapping) and validate a plan; never raises on input."""
    document, diagnostics = load_plan_document(source)
    if document is None:
        return PlanResult(None, tuple(diagnostics))
    return check_plan_document(document)


def check_plan_document(document: JsonObject) -> PlanResult:
    """Validate an already loaded, normalised plan document."""
    sink = Sink()
    version = document.get("plan")
    if isinstance(version, int) and not isinstance(version, bool) and version != PLAN_VERSION:
        sink.error(
            C.unsupported_plan_version,
            pointer("plan"),
            f"plan version {version} is not supported; this compiler reads version 2",
        )
        return PlanResult(None, tuple(sink.items))
    top = ObjectReader(document, "", sink, _TOP_FIELDS)
    top.integer("plan", None)
    name = top.string("name")
    if name is not None and not is_id(name):
        sink.error(C.invalid_value, top.at("name"), f"name {name!r} must match {_ID_TEXT}")
        name = None
    description = _description(top)
    labels = _labels(top)
    target = top.enum("target", Target, None)
    ingress = _boundaries(top, "ingress")
    egress = _boundaries(top, "egress")
    drafts = _stages(top, lane_graph=target is Target.lane_graph)
    _unique_ids(ingress or [], egress or [], drafts or [], sink)
    part = _target_rules(document, target, ingress, egress, drafts, sink)
    if sink.has_errors or part is None or name is None or target is None:
        return PlanResult(None, tuple(sink.items))
    stages, options = part
    plan = PipelinePlanV2(
        name=name,
        target=target,
        ingress=tuple(b for b in ingress or [] if b is not None),
        egress=tuple(b for b in egress or [] if b is not None),
        stages=stages,
        single_ring=options if isinstance(options, RingOptions) else None,
        lane_graph=options if isinstance(options, GraphOptions) else None,
        description=description,
        labels=labels,
    )
    return PlanResult(plan, tuple(sink.items))


def _description(top: ObjectReader) -> str:
    value = top.raw.get("description", "")
    if isinstance(value, str):
        return value
    top.sink.error(
        C.wrong_type,
        top.at("description"),
        f"`description` must be a string, not {type_name(value)}",
    )
    return ""


def _labels(top: ObjectReader) -> tuple[tuple[str, str], ...]:
    labels = top.obj("labels", required=False) or {}
    out: list[tuple[str, str]] = []
    for key, value in sorted(labels.items()):
        if isinstance(value, str):
            out.append((key, value))
        else:
            path = pointer_child(top.at("labels"), key)
            top.sink.error(
                C.wrong_type, path, f"a label value must be a string, not {type_name(value)}"
            )
    return tuple(out)


def _boundaries(top: ObjectReader, name: str) -> list[PlanBoundary | None] | None:
    items = top.array(name)
    if items is None:
        return None
    return [
        _boundary(item, pointer_child(top.at(name), i), top.sink) for i, item in enumerate(items)
    ]


def _boundary(raw: Json, path: str, sink: Sink) -> PlanBoundary | None:
    obj = as_object(raw, path, sink, "a boundary")
    if obj is None:
        return None
    before = sink.error_count()
    reader = ObjectReader(obj, path, sink, ("id", "adapter", "config"))
    boundary_id = _read_id(reader)
    adapter = reader.string("adapter")
    if adapter is not None and ADAPTER_RE.fullmatch(adapter) is None:
        sink.error(
            C.invalid_value, reader.at("adapter"), f"adapter {adapter!r} must match [a-z0-9_-]+"
        )
    config = reader.obj("config", required=False)
    if sink.error_count() != before or boundary_id is None or adapter is None:
        return None
    return PlanBoundary(boundary_id, adapter, JsonValue.of(config or {}), path)


def _read_id(reader: ObjectReader) -> str | None:
    value = reader.string("id")
    if value is not None and not is_id(value):
        reader.sink.error(C.invalid_id, reader.at("id"), f"id {value!r} must match {_ID_TEXT}")
        return None
    return value


def _stages(top: ObjectReader, *, lane_graph: bool) -> list[StageDraft] | None:
    items = top.array("stages")
    if items is None:
        return None
    drafts: list[StageDraft] = []
    for i, item in enumerate(items):
        path = pointer_child(top.at("stages"), i)
        obj = as_object(item, path, top.sink, "a stage")
        if obj is None:
            drafts.append(StageDraft(i, path, None, None, None))
            continue
        drafts.append(_stage(obj, i, path, top.sink, lane_graph=lane_graph))
    return drafts


def _stage(obj: JsonObject, index: int, path: str, sink: Sink, *, lane_graph: bool) -> StageDraft:
    reader = ObjectReader(obj, path, sink, ("id", "op", "params", "depends_on"))
    stage_id = _read_id(reader)
    op_name = reader.string("op")
    op: Op | None = None
    if op_name is not None:
        try:
            op = Op(op_name)
        except ValueError:
            ops = ", ".join(str(o) for o in Op)
            sink.error(C.unknown_op, reader.at("op"), f"unknown op {op_name!r} (ops: {ops})")
    params = check_params(op, obj.get("params", {}), path, sink) if op is not None else None
    draft = StageDraft(index, path, stage_id, op, params)
    if not lane_graph and "depends_on" in obj:
        draft.has_depends_on = True
        draft.depends_on_raw = obj["depends_on"]
    return draft


def _unique_ids(
    ingress: list[PlanBoundary | None],
    egress: list[PlanBoundary | None],
    drafts: list[StageDraft],
    sink: Sink,
) -> None:
    seen: dict[str, str] = {}
    located = [(b.id, b.path) for b in [*ingress, *egress] if b is not None]
    located += [(d.id, d.path) for d in drafts if d.id is not None]
    for item_id, path in located:
        if item_id in seen:
            sink.error(
                C.duplicate_id,
                pointer_child(path, "id"),
                f"id {item_id!r} is already used at {seen[item_id]}",
            )
        else:
            seen[item_id] = path


def _target_rules(
    document: JsonObject,
    target: Target | None,
    ingress: list[PlanBoundary | None] | None,
    egress: list[PlanBoundary | None] | None,
    drafts: list[StageDraft] | None,
    sink: Sink,
) -> TargetPart | None:
    if target is None:
        return None
    if target is Target.single_ring:
        return check_single_ring(document, ingress, egress, drafts, sink)
    return check_lane_graph(document, ingress, egress, drafts, sink)
