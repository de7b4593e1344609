"""SingleRing semantic rules (§6): stage count, dependencies, boundaries and ring options.

Readings of §6 taken here: zero stages is `invalid_value` on `/stages` (`too_many_stages`
is kept for more than four); a `depends_on` entry is checked in this order —
`duplicate_dependency`, `self_dependency`, `forward_dependency` (a later stage),
`unknown_reference` (no such stage, including boundary ids); `missing_dependency` fires
only when `depends_on` is absent or empty, not when its entries are all wrong;
any `producer` other than `single` is `unsupported_producer` and any `scheduling` other
than `dedicated` is `unsupported_scheduling`; `shard_key` must be a field path and is kept
(and encoded) whenever it is given; `strict_ordering_needs_one_shard` points at `shards`.
"""

from __future__ import annotations

from byteor_cloud.spec.diagnostics import DiagnosticCode as C
from byteor_cloud.spec.diagnostics import Sink
from byteor_cloud.spec.jsonvalues import JsonObject, pointer, pointer_child
from byteor_cloud.spec.model import Op, Ordering
from byteor_cloud.spec.plan import PlanBoundary, PlanStage, RingOptions, StageDraft, TargetPart
from byteor_cloud.spec.reader import ObjectReader, as_object, type_name
from byteor_cloud.spec.syntax import is_field

MAX_RING_STAGES = 4
_RING_FIELDS = ("shards", "ordering", "shard_key", "producer", "scheduling")


def check_single_ring(
    document: JsonObject,
    ingress: list[PlanBoundary | None] | None,
    egress: list[PlanBoundary | None] | None,
    drafts: list[StageDraft] | None,
    sink: Sink,
) -> TargetPart | None:
    """Apply the SingleRing rules; the typed stages and options when they hold."""
    for name, items in (("ingress", ingress), ("egress", egress)):
        if items is not None and len(items) != 1:
            sink.error(
                C.boundary_count,
                pointer(name),
                f"a single_ring plan has exactly one {name}, not {len(items)}",
            )
    options = _options(document, sink)
    if drafts is None:
        return None
    if not drafts:
        sink.error(C.invalid_value, pointer("stages"), "a single_ring plan needs at least 1 stage")
    elif len(drafts) > MAX_RING_STAGES:
        sink.error(
            C.too_many_stages,
            pointer("stages"),
            f"a single_ring plan has at most {MAX_RING_STAGES} stages, not {len(drafts)}",
        )
    stages: list[PlanStage] = []
    index_of: dict[str, int] = {}
    for draft in drafts:
        if draft.id is not None:
            index_of.setdefault(draft.id, draft.index)
    for draft in drafts:
        if draft.op is Op.route:
            sink.error(
                C.not_allowed_for_target,
                pointer_child(draft.path, "op"),
                "`route` is a lane_graph op; a single_ring has one path",
            )
        depends_on = _dependencies(draft, index_of, sink)
        stage = draft.finished(depends_on)
        if stage is not None:
            stages.append(stage)
    if options is None or len(stages) != len(drafts):
        return None
    return tuple(stages), options


def _dependencies(draft: StageDraft, index_of: dict[str, int], sink: Sink) -> tuple[str, ...]:
    path = pointer_child(draft.path, "depends_on")
    raw = draft.depends_on_raw if draft.has_depends_on else []
    if not isinstance(raw, list):
        sink.error(C.wrong_type, path, f"`depends_on` must be an array, not {type_name(raw)}")
        return ()
    needs = draft.index > 0 and draft.op is not None and draft.op is not Op.identity
    if needs and not raw:
        sink.error(
            C.missing_dependency,
            path,
            f"stage {draft.index} is not the first and not `identity`: it must declare depends_on",
        )
    found: list[str] = []
    for j, item in enumerate(raw):
        item_path = pointer_child(path, j)
        if not isinstance(item, str):
            sink.error(
                C.wrong_type, item_path, f"a dependency must be a stage id, not {type_name(item)}"
            )
        elif item in found:
            sink.error(C.duplicate_dependency, item_path, f"{item!r} is listed twice")
        elif item == draft.id:
            sink.error(C.self_dependency, item_path, "a stage cannot depend on itself")
        elif item not in index_of:
            sink.error(C.unknown_reference, item_path, f"no stage has id {item!r}")
        elif index_of[item] > draft.index:
            sink.error(
                C.forward_dependency,
                item_path,
                f"{item!r} comes later; depends_on names earlier stages only",
            )
        else:
            found.append(item)
    return tuple(found)


def _options(document: JsonObject, sink: Sink) -> RingOptions | None:
    path = pointer("single_ring")
    block = as_object(document.get("single_ring", {}), path, sink, "`single_ring`")
    if block is None:
        return None
    before = sink.error_count()
    reader = ObjectReader(block, path, sink, _RING_FIELDS)
    shards = reader.integer("shards", 1)
    if shards is not None and shards < 1:
        sink.error(C.invalid_shards, reader.at("shards"), f"shards must be >= 1, not {shards}")
    ordering = reader.enum("ordering", Ordering, Ordering.strict)
    producer = reader.string("producer", required=False)
    if producer is not None and producer != "single":
        sink.error(
            C.unsupported_producer,
            reader.at("producer"),
            f"producer {producer!r} is not supported; only `single` is",
        )
    scheduling = reader.string("scheduling", required=False)
    if scheduling is not None and scheduling != "dedicated":
        sink.error(
            C.unsupported_scheduling,
            reader.at("scheduling"),
            f"scheduling {scheduling!r} is not supported; only `dedicated` is",
        )
    shard_key = reader.string("shard_key", required=False)
    if shard_key is not None and not is_field(shard_key):
        sink.error(C.invalid_value, reader.at("shard_key"), f"{shard_key!r} is not a field path")
    if shards is not None and shards > 1:
        if ordering is Ordering.strict:
            sink.error(
                C.strict_ordering_needs_one_shard,
                reader.at("shards"),
                f"strict ordering needs shards == 1 (got {shards}); use per_key ordering",
            )
        elif ordering is Ordering.per_key and not reader.has("shard_key"):
            sink.error(
                C.missing_shard_key,
                reader.at("shard_key"),
                "per_key ordering with more than one shard needs a shard_key field",
            )
    if sink.error_count() != before or shards is None or ordering is None:
        return None
    return RingOptions(shards=shards, ordering=ordering, shard_key=shard_key)
