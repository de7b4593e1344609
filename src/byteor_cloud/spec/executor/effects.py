"""Side effects of a run: what a stage asks for, and the handler protocol that decides.

The executor itself performs no I/O: every `http_post` and `exec` becomes a `SideEffect`
handed to an `EffectHandler`, whose answer is the action's `decision` in the audit.
`DryRunHandler` performs nothing and answers `dry_run` (replay `dry_run` mode); the real
handler is `byteor_cloud.spec.executor.live.LiveHandler`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

DRY_RUN = "dry_run"
EXECUTED = "executed"
FAILED = "failed"
DENIED = "denied"


@dataclass(frozen=True, slots=True)
class SideEffect:
    """One requested side effect: `kind` is the op, `target` the URL or program."""

    kind: str
    stage: str
    target: str
    body: bytes
    args: tuple[str, ...] = ()


class EffectHandler(Protocol):
    """Decides (and possibly performs) side effects; returns the audit decision."""

    def perform(self, effect: SideEffect) -> str:
        """Handle one effect and return its decision (e.g. `dry_run`, `executed`)."""
        ...


@dataclass
class DryRunHandler:
    """Records every effect and performs none: decision `dry_run`."""

    effects: list[SideEffect] = field(default_factory=list)

    def perform(self, effect: SideEffect) -> str:
        """Record the effect."""
        self.effects.append(effect)
        return DRY_RUN
