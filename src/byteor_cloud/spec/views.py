"""Text views of a spec: `describe` (for people) and Graphviz DOT (for tools)."""

from __future__ import annotations

from byteor_cloud.spec.kv import spec_hash
from byteor_cloud.spec.model import PipelineSpecV1, SingleRingSpec
from byteor_cloud.spec.topology import lane_label, summarise, topology


def describe(spec: PipelineSpecV1) -> str:
    """A plain-text description: identity, boundaries, options, stages and lanes."""
    lines = [
        f"pipeline      {spec.name} ({spec.model})",
        f"spec hash     {spec_hash(spec)}",
        f"capabilities  {', '.join(spec.capabilities) or '(none)'}",
    ]
    for kind, boundaries in (("ingress", spec.ingress), ("egress", spec.egress)):
        for b in boundaries:
            config = "" if b.config.text == "{}" else f" {b.config.text}"
            lines.append(f"{kind:<14}{b.id} ({b.adapter}){config}")
    body = spec.body
    if isinstance(body, SingleRingSpec):
        options = f"shards={body.shards} ordering={body.ordering}"
        options += f" shard_key={body.shard_key}" if body.shard_key else ""
        lines.append(f"{'ring':<14}{options} producer={body.producer} scheduling={body.scheduling}")
        lines.append("stages")
        width = max((len(s.id) for s in body.stages), default=0)
        for i, stage in enumerate(body.stages):
            after = ", ".join(body.stages[d].id for d in stage.depends_on)
            deps = f"  (after {after})" if after else ""
            summary = summarise(stage.params)
            lines.append(f"  {i:<3}{stage.id:<{width}}  {stage.op:<10}{summary}{deps}".rstrip())
        return "\n".join(lines) + "\n"
    features = ",".join(str(f) for f in body.features) or "(none)"
    lines.append(f"{'lane graph':<14}on_full={body.on_full} features={features}")
    lines.append("roles")
    width = max((len(r.id) for r in body.roles), default=0)
    for role in body.roles:
        op = f"{role.params.op:<10}{summarise(role.params)}" if role.params is not None else ""
        lines.append(f"  {role.id:<{width}}  {role.kind:<7}{op}".rstrip())
    lines.append("lanes")
    for lane in body.lanes:
        label = lane_label(lane.kind, lane.capacity, lane.consumers)
        lines.append(f"  {lane.source} -> {lane.target}  [{label}]")
    return "\n".join(lines) + "\n"


_SHAPES = {
    "ingress": 'shape=cds, style=filled, fillcolor="#dcefdc"',
    "egress": 'shape=cds, style=filled, fillcolor="#dce6f5"',
    "stage": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "bridge": 'shape=box, style="dashed", fontsize=8',
    "merge": "shape=invtriangle, fontsize=8",
    "router": "shape=triangle, fontsize=8",
}


def dot_quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(spec: PipelineSpecV1) -> str:
    """Graphviz DOT text of the spec's topology (lowered roles for LaneGraph)."""
    nodes, edges = topology(spec)
    lines = [
        f"digraph {dot_quote(spec.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    for node in nodes:
        label = dot_quote(f"{node.title}\n{node.detail}" if node.detail else node.title)
        lines.append(f"  {dot_quote(node.id)} [label={label}, {_SHAPES[node.kind]}];")
    for edge in edges:
        label = f" [label={dot_quote(edge.label)}]" if edge.label else ""
        lines.append(f"  {dot_quote(edge.source)} -> {dot_quote(edge.target)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"
