"""The pipeline compiler: PipelinePlanV2 → PipelineSpecV1 → canonical spec.kv → spec hash.

Pure (no I/O, database or web framework); shared by the API, worker, agent and CLI. The
reference executor lives in `byteor_cloud.spec.executor`.
"""

from byteor_cloud.spec.compiler import CompileReport, compile_plan
from byteor_cloud.spec.diagnostics import (
    ERROR_CODES,
    INFO_CODES,
    Diagnostic,
    DiagnosticCode,
    Severity,
)
from byteor_cloud.spec.jsonvalues import JsonValue, canonical_json
from byteor_cloud.spec.kv import (
    SpecEncodeError,
    encode_spec,
    key_order,
    spec_hash,
    spec_hash_of_text,
)
from byteor_cloud.spec.kv_decode import SpecDecodeError, decode_spec
from byteor_cloud.spec.loader import MAX_CONNECTIONS, MAX_DOCUMENT_BYTES, MAX_STAGES
from byteor_cloud.spec.model import (
    Boundary,
    DataguardParams,
    DataguardRule,
    ExecParams,
    FilterOp,
    FilterParams,
    HttpPostParams,
    IdentityParams,
    Lane,
    LaneGraphSpec,
    LaneKind,
    MapParams,
    OnFull,
    Op,
    Ordering,
    PipelineSpecV1,
    Role,
    RoleKind,
    RouteParams,
    RuleAction,
    SingleRingSpec,
    Stage,
    StageParams,
    Target,
    capability_of,
)
from byteor_cloud.spec.plan import (
    GraphOptions,
    PipelinePlanV2,
    PlanBoundary,
    PlanConnection,
    PlanStage,
    RingOptions,
)
from byteor_cloud.spec.rules import InvalidRuleError, parse_rule
from byteor_cloud.spec.structure import PlanResult, parse_plan
from byteor_cloud.spec.urls import InvalidUrlError, normalise_url

__all__ = [
    "ERROR_CODES",
    "INFO_CODES",
    "MAX_CONNECTIONS",
    "MAX_DOCUMENT_BYTES",
    "MAX_STAGES",
    "Boundary",
    "CompileReport",
    "DataguardParams",
    "DataguardRule",
    "Diagnostic",
    "DiagnosticCode",
    "ExecParams",
    "FilterOp",
    "FilterParams",
    "GraphOptions",
    "HttpPostParams",
    "IdentityParams",
    "InvalidRuleError",
    "InvalidUrlError",
    "JsonValue",
    "Lane",
    "LaneGraphSpec",
    "LaneKind",
    "MapParams",
    "OnFull",
    "Op",
    "Ordering",
    "PipelinePlanV2",
    "PipelineSpecV1",
    "PlanBoundary",
    "PlanConnection",
    "PlanResult",
    "PlanStage",
    "RingOptions",
    "Role",
    "RoleKind",
    "RouteParams",
    "RuleAction",
    "Severity",
    "SingleRingSpec",
    "SpecDecodeError",
    "SpecEncodeError",
    "Stage",
    "StageParams",
    "Target",
    "canonical_json",
    "capability_of",
    "compile_plan",
    "decode_spec",
    "encode_spec",
    "key_order",
    "normalise_url",
    "parse_plan",
    "parse_rule",
    "spec_hash",
    "spec_hash_of_text",
]
