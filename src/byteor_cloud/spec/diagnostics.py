"""Compiler diagnostics: the normative codes of §6, severities and the collecting sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a diagnostic is; any `error` means the plan has no spec and no hash."""

    error = "error"
    warning = "warning"
    info = "info"


class DiagnosticCode(StrEnum):
    """The normative diagnostic codes (§6); no other code is ever emitted."""

    unparseable = "unparseable"
    plan_too_large = "plan_too_large"
    unsupported_plan_version = "unsupported_plan_version"
    missing_field = "missing_field"
    wrong_type = "wrong_type"
    invalid_value = "invalid_value"
    invalid_id = "invalid_id"
    duplicate_id = "duplicate_id"
    unknown_op = "unknown_op"
    invalid_params = "invalid_params"
    invalid_url = "invalid_url"
    invalid_rule = "invalid_rule"
    not_allowed_for_target = "not_allowed_for_target"
    boundary_count = "boundary_count"
    unknown_reference = "unknown_reference"
    invalid_connection = "invalid_connection"
    duplicate_connection = "duplicate_connection"
    self_dependency = "self_dependency"
    forward_dependency = "forward_dependency"
    duplicate_dependency = "duplicate_dependency"
    missing_dependency = "missing_dependency"
    too_many_stages = "too_many_stages"
    invalid_shards = "invalid_shards"
    unsupported_producer = "unsupported_producer"
    unsupported_scheduling = "unsupported_scheduling"
    strict_ordering_needs_one_shard = "strict_ordering_needs_one_shard"
    missing_shard_key = "missing_shard_key"
    cycle = "cycle"
    unreachable_stage = "unreachable_stage"
    feature_not_enabled = "feature_not_enabled"
    invalid_capacity = "invalid_capacity"
    invalid_consumers = "invalid_consumers"
    bridge_inserted = "bridge_inserted"
    merge_inserted = "merge_inserted"
    router_inserted = "router_inserted"


#: Codes reported with severity `info` (lowering insertions); every other code is an error.
INFO_CODES = frozenset(
    {
        DiagnosticCode.bridge_inserted,
        DiagnosticCode.merge_inserted,
        DiagnosticCode.router_inserted,
    }
)
ERROR_CODES = frozenset(set(DiagnosticCode) - INFO_CODES)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: `path` is a JSON pointer into the plan document (`""` is the root)."""

    severity: Severity
    code: DiagnosticCode
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The wire shape `{severity, code, path, message}`."""
        return {
            "severity": str(self.severity),
            "code": str(self.code),
            "path": self.path,
            "message": self.message,
        }


@dataclass
class Sink:
    """Collects diagnostics in the order the checks find them."""

    items: list[Diagnostic] = field(default_factory=list)
    _errors: int = 0

    def __post_init__(self) -> None:
        self._errors = sum(1 for d in self.items if d.severity is Severity.error)

    def error(self, code: DiagnosticCode, path: str, message: str) -> None:
        """Record an error."""
        self.items.append(Diagnostic(Severity.error, code, path, message))
        self._errors += 1

    def info(self, code: DiagnosticCode, path: str, message: str) -> None:
        """Record an informational note (lowering)."""
        self.items.append(Diagnostic(Severity.info, code, path, message))

    @property
    def has_errors(self) -> bool:
        """Whether any error was recorded."""
        return self._errors > 0

    def error_count(self) -> int:
        """How many errors were recorded so far."""
        return self._errors
