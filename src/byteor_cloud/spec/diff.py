"""Differences between two specs: a unified line diff of spec.kv plus a summary.

A stage is matched by id. It counts as changed when its op or params differ, when (in
a SingleRing) the *ids* it depends on differ — indices alone shift when a stage is
inserted — or when (in a LaneGraph) the lowered lanes into or out of it differ.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from byteor_cloud.spec.kv import encode_spec, params_pairs, spec_hash_of_text
from byteor_cloud.spec.model import PipelineSpecV1, SingleRingSpec, StageParams


@dataclass(frozen=True, slots=True)
class SpecDiff:
    """What changed from `old` to `new`."""

    old_hash: str
    new_hash: str
    old_model: str
    new_model: str
    lines: tuple[str, ...]
    stages_added: tuple[str, ...]
    stages_removed: tuple[str, ...]
    stages_changed: tuple[str, ...]
    capabilities_added: tuple[str, ...]
    capabilities_removed: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """Whether the two specs are the same (same hash)."""
        return self.old_hash == self.new_hash

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "identical": self.identical,
            "old_hash": self.old_hash,
            "new_hash": self.new_hash,
            "old_model": self.old_model,
            "new_model": self.new_model,
            "stages": {
                "added": list(self.stages_added),
                "removed": list(self.stages_removed),
                "changed": list(self.stages_changed),
            },
            "capabilities": {
                "added": list(self.capabilities_added),
                "removed": list(self.capabilities_removed),
            },
            "diff": "".join(line + "\n" for line in self.lines),
        }

    def to_text(self) -> str:
        """Summary first, then the line diff."""
        if self.identical:
            return f"identical ({self.new_hash})\n"
        out = [f"{self.old_hash} -> {self.new_hash}"]
        if self.old_model != self.new_model:
            out.append(f"model: {self.old_model} -> {self.new_model}")
        for label, items in (
            ("stages added", self.stages_added),
            ("stages removed", self.stages_removed),
            ("stages changed", self.stages_changed),
            ("capabilities added", self.capabilities_added),
            ("capabilities removed", self.capabilities_removed),
        ):
            if items:
                out.append(f"{label}: {', '.join(items)}")
        return "\n".join([*out, "", *self.lines]) + "\n"


def diff_specs(
    old: PipelineSpecV1, new: PipelineSpecV1, *, old_label: str = "old", new_label: str = "new"
) -> SpecDiff:
    """Compare two specs."""
    old_kv, new_kv = encode_spec(old), encode_spec(new)
    lines = difflib.unified_diff(
        old_kv.splitlines(), new_kv.splitlines(), old_label, new_label, lineterm=""
    )
    old_stages, new_stages = _signatures(old), _signatures(new)
    changed = [s for s in old_stages if s in new_stages and old_stages[s] != new_stages[s]]
    old_caps, new_caps = set(old.capabilities), set(new.capabilities)
    return SpecDiff(
        old_hash=spec_hash_of_text(old_kv),
        new_hash=spec_hash_of_text(new_kv),
        old_model=str(old.model),
        new_model=str(new.model),
        lines=tuple(lines),
        stages_added=tuple(sorted(set(new_stages) - set(old_stages))),
        stages_removed=tuple(sorted(set(old_stages) - set(new_stages))),
        stages_changed=tuple(sorted(changed)),
        capabilities_added=tuple(sorted(new_caps - old_caps)),
        capabilities_removed=tuple(sorted(old_caps - new_caps)),
    )


def _signatures(spec: PipelineSpecV1) -> dict[str, tuple[object, ...]]:
    body = spec.body
    if isinstance(body, SingleRingSpec):
        return {
            stage.id: (
                *_params_key(stage.params),
                tuple(body.stages[d].id for d in stage.depends_on),
            )
            for stage in body.stages
        }
    wiring: dict[str, list[tuple[str, ...]]] = {}
    for lane in body.lanes:
        text = (lane.source, lane.target, str(lane.kind), str(lane.capacity), str(lane.consumers))
        wiring.setdefault(lane.source, []).append(text)
        wiring.setdefault(lane.target, []).append(text)
    return {
        role.id: (*_params_key(role.params), tuple(sorted(wiring.get(role.id, []))))
        for role in body.roles
        if role.params is not None
    }


def _params_key(params: StageParams) -> tuple[object, ...]:
    return (str(params.op), tuple(params_pairs(params)))
