"""PipelinePlanV2: the typed authoring document, as it stands once validation has passed.

Only the active target's block is kept (the inactive one is ignored by the compiler), and
every default is filled in. Each element remembers its JSON pointer in the source
document so later phases (lowering) can point their diagnostics at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from byteor_cloud.spec.jsonvalues import Json, JsonValue
from byteor_cloud.spec.model import (
    LaneKind,
    OnFull,
    Op,
    Ordering,
    StageParams,
    Target,
)


@dataclass(frozen=True, slots=True)
class PlanBoundary:
    """An ingress or egress of the plan."""

    id: str
    adapter: str
    config: JsonValue
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class PlanStage:
    """A stage of the plan; `depends_on` names stages (SingleRing plans only)."""

    id: str
    params: StageParams
    depends_on: tuple[str, ...] = ()
    path: str = field(default="", compare=False)

    @property
    def op(self) -> Op:
        """The stage's op."""
        return self.params.op


@dataclass(frozen=True, slots=True)
class RingOptions:
    """The `single_ring` block with defaults filled in."""

    shards: int = 1
    ordering: Ordering = Ordering.strict
    shard_key: str | None = None


@dataclass(frozen=True, slots=True)
class PlanConnection:
    """One LaneGraph connection with defaults filled in."""

    source: str
    target: str
    kind: LaneKind = LaneKind.events
    capacity: int = 1024
    consumers: int | None = None
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class GraphOptions:
    """The `lane_graph` block with defaults filled in."""

    connections: tuple[PlanConnection, ...]
    on_full: OnFull = OnFull.block
    features: tuple[LaneKind, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelinePlanV2:
    """A validated plan: catalog metadata, boundaries, stages and the active target block."""

    name: str
    target: Target
    ingress: tuple[PlanBoundary, ...]
    egress: tuple[PlanBoundary, ...]
    stages: tuple[PlanStage, ...]
    single_ring: RingOptions | None = None
    lane_graph: GraphOptions | None = None
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class StageDraft:
    """A stage as read by the structural pass, before the target rules (internal)."""

    index: int
    path: str
    id: str | None
    op: Op | None
    params: StageParams | None
    has_depends_on: bool = False
    depends_on_raw: Json = None

    def finished(self, depends_on: tuple[str, ...] = ()) -> PlanStage | None:
        """The typed stage, when every part of it was valid."""
        if self.id is None or self.params is None:
            return None
        return PlanStage(self.id, self.params, depends_on, self.path)


#: What a target's rules produce: the typed stages and the target block's options.
TargetPart: TypeAlias = tuple[tuple[PlanStage, ...], RingOptions | GraphOptions]
