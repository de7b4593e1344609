"""PipelineSpecV1: the compiled, canonical pipeline model that spec.kv encodes.

Every value of these classes is canonical by construction: lists that §6 sorts are sorted
in `__post_init__` (boundaries and roles by id, lanes by (from, to), `features`,
`depends_on`, map `set`/`rename` by field, map `drop` sorted and de-duplicated), so two
equal specs always encode to the same bytes and `decode(encode(spec)) == spec`.
JSON values are held as `JsonValue` (their canonical text), so `"1"`, `1` and `true` are
three different values here, as they are in the hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, TypeAlias

from byteor_cloud.spec.jsonvalues import JsonValue


class Target(StrEnum):
    """The execution target a plan selects; also the spec's `spec.model`."""

    single_ring = "single_ring"
    lane_graph = "lane_graph"


class Op(StrEnum):
    """Stage operations (§6)."""

    identity = "identity"
    filter = "filter"
    map = "map"
    dataguard = "dataguard"
    route = "route"
    http_post = "http_post"
    exec = "exec"


class FilterOp(StrEnum):
    """Comparisons a `filter` stage can make."""

    eq = "eq"
    ne = "ne"
    in_ = "in"
    exists = "exists"
    gt = "gt"
    lt = "lt"


class Ordering(StrEnum):
    """SingleRing ordering."""

    strict = "strict"
    per_key = "per_key"


class LaneKind(StrEnum):
    """LaneGraph lane kinds; `journal` and `sequenced_slots` need a feature flag."""

    events = "events"
    fanout_broadcast = "fanout_broadcast"
    journal = "journal"
    sequenced_slots = "sequenced_slots"


class OnFull(StrEnum):
    """LaneGraph backpressure policy."""

    block = "block"
    drop = "drop"


class RoleKind(StrEnum):
    """LaneGraph role kinds after lowering."""

    stage = "stage"
    bridge = "bridge"
    merge = "merge"
    router = "router"


class RuleAction(StrEnum):
    """DataGuard rule actions."""

    drop = "drop"
    replace_with = "replace_with"
    hash = "hash"
    mask = "mask"
    truncate = "truncate"


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True)
class IdentityParams:
    """`identity`: passes records on."""

    op: ClassVar[Op] = Op.identity


@dataclass(frozen=True, slots=True)
class FilterParams:
    """`filter`: keeps records whose `field` passes `operator` against `value`."""

    op: ClassVar[Op] = Op.filter
    field: str
    operator: FilterOp
    value: JsonValue | None = None


@dataclass(frozen=True, slots=True)
class MapParams:
    """`map`: `set`, then `rename`, then `drop`."""

    op: ClassVar[Op] = Op.map
    set_fields: tuple[tuple[str, JsonValue], ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "set_fields", tuple(sorted(dict(self.set_fields).items())))
        _set(self, "rename", tuple(sorted(dict(self.rename).items())))
        _set(self, "drop", tuple(sorted(set(self.drop))))


@dataclass(frozen=True, slots=True)
class DataguardRule:
    """One parsed DataGuard rule; `str(rule)` is its canonical text."""

    field: str
    action: RuleAction
    replacement: str = ""
    keep_start: int = 0
    keep_end: int = 0
    mask_char: str = ""
    length: int = 0

    def __str__(self) -> str:
        if self.action is RuleAction.replace_with:
            return f"{self.field}:replace_with={self.replacement}"
        if self.action is RuleAction.mask:
            return f"{self.field}:mask={self.keep_start}:{self.keep_end}:{self.mask_char}"
        if self.action is RuleAction.truncate:
            return f"{self.field}:truncate={self.length}"
        return f"{self.field}:{self.action}"


@dataclass(frozen=True, slots=True)
class DataguardParams:
    """`dataguard`: redaction rules, applied in order."""

    op: ClassVar[Op] = Op.dataguard
    rules: tuple[DataguardRule, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteParams:
    """`route`: sends a record to `cases[record[field]]`, else `default`, else drops it."""

    op: ClassVar[Op] = Op.route
    field: str
    cases: tuple[tuple[str, str], ...] = ()
    default: str | None = None

    def __post_init__(self) -> None:
        _set(self, "cases", tuple(sorted(dict(self.cases).items())))


@dataclass(frozen=True, slots=True)
class HttpPostParams:
    """`http_post`: posts the record to a normalised `url`."""

    op: ClassVar[Op] = Op.http_post
    url: str


@dataclass(frozen=True, slots=True)
class ExecParams:
    """`exec`: runs `program` with `args`, the record on stdin."""

    op: ClassVar[Op] = Op.exec
    program: str
    args: tuple[str, ...] = ()


StageParams: TypeAlias = (
    IdentityParams
    | FilterParams
    | MapParams
    | DataguardParams
    | RouteParams
    | HttpPostParams
    | ExecParams
)


def capability_of(params: StageParams) -> str | None:
    """The side-effect capability a stage needs, if any (`http_post:<url>`, `exec:<prog>`)."""
    if isinstance(params, HttpPostParams):
        return f"http_post:{params.url}"
    if isinstance(params, ExecParams):
        return f"exec:{params.program}"
    return None


@dataclass(frozen=True, slots=True)
class Boundary:
    """An ingress or egress: an adapter name and its free-form config object."""

    id: str
    adapter: str
    config: JsonValue = field(default_factory=lambda: JsonValue("{}"))


@dataclass(frozen=True, slots=True)
class Stage:
    """A stage: id, op parameters and (SingleRing only) ascending dependency indices."""

    id: str
    params: StageParams
    depends_on: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "depends_on", tuple(sorted(self.depends_on)))

    @property
    def op(self) -> Op:
        """The stage's op."""
        return self.params.op


@dataclass(frozen=True, slots=True)
class SingleRingSpec:
    """The SingleRing body: constraints and stages in plan (topological) order."""

    stages: tuple[Stage, ...]
    shards: int = 1
    ordering: Ordering = Ordering.strict
    producer: Literal["single"] = "single"
    scheduling: Literal["dedicated"] = "dedicated"
    shard_key: str | None = None

    model: ClassVar[Target] = Target.single_ring


@dataclass(frozen=True, slots=True)
class Role:
    """A LaneGraph role: a stage (with its params) or an inserted bridge, merge or router."""

    id: str
    kind: RoleKind
    params: StageParams | None = None


@dataclass(frozen=True, slots=True)
class Lane:
    """A lowered LaneGraph lane from `source` to `target` (spec.kv keys `from`, `to`)."""

    source: str
    target: str
    kind: LaneKind = LaneKind.events
    capacity: int = 1024
    consumers: int | None = None

    @property
    def name(self) -> str:
        """The lane's display name, `from->to`."""
        return f"{self.source}->{self.target}"


@dataclass(frozen=True, slots=True)
class LaneGraphSpec:
    """The LaneGraph body after lowering: roles sorted by id, lanes by (from, to)."""

    roles: tuple[Role, ...]
    lanes: tuple[Lane, ...]
    on_full: OnFull = OnFull.block
    features: tuple[LaneKind, ...] = ()

    model: ClassVar[Target] = Target.lane_graph

    def __post_init__(self) -> None:
        _set(self, "roles", tuple(sorted(self.roles, key=lambda r: r.id)))
        _set(self, "lanes", tuple(sorted(self.lanes, key=lambda x: (x.source, x.target))))
        _set(self, "features", tuple(sorted(self.features)))


@dataclass(frozen=True, slots=True)
class PipelineSpecV1:
    """A compiled pipeline: name, boundaries sorted by id, and the target body."""

    name: str
    ingress: tuple[Boundary, ...]
    egress: tuple[Boundary, ...]
    body: SingleRingSpec | LaneGraphSpec

    def __post_init__(self) -> None:
        _set(self, "ingress", tuple(sorted(self.ingress, key=lambda b: b.id)))
        _set(self, "egress", tuple(sorted(self.egress, key=lambda b: b.id)))

    @property
    def model(self) -> Target:
        """`single_ring` or `lane_graph`."""
        return self.body.model

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages, whatever the target (LaneGraph stages in role order, no deps)."""
        if isinstance(self.body, SingleRingSpec):
            return self.body.stages
        return tuple(
            Stage(role.id, role.params) for role in self.body.roles if role.params is not None
        )

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Required capabilities: sorted, de-duplicated side-effect capabilities."""
        found = {capability_of(stage.params) for stage in self.stages}
        return tuple(sorted(cap for cap in found if cap is not None))
