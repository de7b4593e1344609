"""The reference executor: runs a PipelineSpecV1 over JSON records, deterministically.

Side effects go through an `EffectHandler`: `DryRunHandler` (records, performs nothing)
or `LiveHandler` (allow-listed `http_post` and `exec`). Used by dry-run replay in the
worker and by the reference agent.
"""

from byteor_cloud.spec.executor.effects import (
    DENIED,
    DRY_RUN,
    EXECUTED,
    FAILED,
    DryRunHandler,
    EffectHandler,
    SideEffect,
)
from byteor_cloud.spec.executor.engine import Executor, run_spec
from byteor_cloud.spec.executor.live import LiveHandler
from byteor_cloud.spec.executor.records import (
    apply_dataguard,
    apply_map,
    get_field,
    passes,
    route_target,
)
from byteor_cloud.spec.executor.results import (
    MAX_ACTIONS,
    MAX_INPUT_BYTES,
    AuditAction,
    Emitted,
    ExecutionError,
    ExecutionLimits,
    ExecutionResult,
    InvalidRecord,
    LimitExceeded,
    read_records,
)

__all__ = [
    "DENIED",
    "DRY_RUN",
    "EXECUTED",
    "FAILED",
    "MAX_ACTIONS",
    "MAX_INPUT_BYTES",
    "AuditAction",
    "DryRunHandler",
    "EffectHandler",
    "Emitted",
    "ExecutionError",
    "ExecutionLimits",
    "ExecutionResult",
    "Executor",
    "InvalidRecord",
    "LimitExceeded",
    "LiveHandler",
    "SideEffect",
    "apply_dataguard",
    "apply_map",
    "get_field",
    "passes",
    "read_records",
    "route_target",
    "run_spec",
]
