"""The compiler entry point: plan → diagnostics, PipelineSpecV1, spec.kv, hash, capabilities.

`compile_plan` is pure and total: whatever it is given, it returns a `CompileReport`
(`CompileReportV1` on the wire) and never raises for bad input. A plan with any error has
no spec, no spec.kv, no hash and no capabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from byteor_cloud.spec.diagnostics import Diagnostic, Severity, Sink
from byteor_cloud.spec.kv import encode_spec, spec_hash_of_text
from byteor_cloud.spec.lowering import lower
from byteor_cloud.spec.model import PipelineSpecV1
from byteor_cloud.spec.plan import PipelinePlanV2
from byteor_cloud.spec.structure import parse_plan


@dataclass(frozen=True, slots=True)
class CompileReport:
    """CompileReportV1 plus the typed plan and spec for callers inside the product."""

    spec_kv: str | None
    spec_hash: str | None
    capabilities: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...]
    spec: PipelineSpecV1 | None = None
    plan: PipelinePlanV2 | None = None

    @property
    def ok(self) -> bool:
        """Whether the plan compiled (no error diagnostics)."""
        return self.spec_kv is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The error diagnostics only."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.error)

    def as_dict(self) -> dict[str, Any]:
        """The wire shape: `{spec_kv, spec_hash, capabilities, diagnostics}`."""
        return {
            "spec_kv": self.spec_kv,
            "spec_hash": self.spec_hash,
            "capabilities": list(self.capabilities),
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }


def compile_plan(source: str | bytes | Mapping[str, Any]) -> CompileReport:
    """Compile a PipelinePlanV2 (JSON/YAML text or a mapping) into a CompileReport."""
    parsed = parse_plan(source)
    if parsed.plan is None:
        return CompileReport(None, None, (), parsed.diagnostics)
    sink = Sink(list(parsed.diagnostics))
    spec = lower(parsed.plan, sink)
    spec_kv = encode_spec(spec)
    return CompileReport(
        spec_kv=spec_kv,
        spec_hash=spec_hash_of_text(spec_kv),
        capabilities=spec.capabilities,
        diagnostics=tuple(sink.items),
        spec=spec,
        plan=parsed.plan,
    )
