"""An SVG picture of a spec's topology, laid out by our own code (no Graphviz binary).

Layered (Sugiyama-style) layout, deterministic: a node's column is its longest distance
from a source, the order inside a column starts from the topological order and is
improved by a few barycentre sweeps (ties keep the previous order), and edges are cubic
curves from the right side of a node to the left side of the next. Labels longer than a
box are shortened with `…`; the full text is in the node's `<title>` tooltip.
"""

from __future__ import annotations

from collections import defaultdict, deque
from xml.sax.saxutils import escape, quoteattr

from byteor_cloud.spec.model import PipelineSpecV1
from byteor_cloud.spec.topology import Edge, Node, topology

NODE_W = 168
NODE_H = 44
SMALL_H = 26
GAP_X = 64
GAP_Y = 22
MARGIN = 20
MAX_CHARS = 24
_SWEEPS = 4
_FILL = {
    "ingress": "#dcefdc",
    "egress": "#dce6f5",
    "stage": "#ffffff",
    "bridge": "#f2f2f2",
    "merge": "#f2f2f2",
    "router": "#f2f2f2",
}
_STYLE = (
    "text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#222}"
    ".d{font-size:10px;fill:#666}.e{fill:none;stroke:#777;stroke-width:1.2}"
    "rect{stroke:#555;stroke-width:1}"
)


def layers(nodes: list[Node], edges: list[Edge]) -> list[list[str]]:
    """Columns of node ids, ordered to keep edges short and crossings few."""
    after: dict[str, list[str]] = defaultdict(list)
    before: dict[str, list[str]] = defaultdict(list)
    indegree = {node.id: 0 for node in nodes}
    for edge in edges:
        after[edge.source].append(edge.target)
        before[edge.target].append(edge.source)
        indegree[edge.target] = indegree.get(edge.target, 0) + 1
    rank = dict.fromkeys(indegree, 0)
    ready = deque(node.id for node in nodes if indegree[node.id] == 0)
    order: list[str] = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for nxt in after[node_id]:
            rank[nxt] = max(rank[nxt], rank[node_id] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    placed = set(order)
    order += [node.id for node in nodes if node.id not in placed]  # never for a DAG
    columns: list[list[str]] = [[] for _ in range(max(rank.values(), default=0) + 1)]
    for node_id in order:
        columns[rank[node_id]].append(node_id)
    position = {node_id: i for column in columns for i, node_id in enumerate(column)}
    for sweep in range(_SWEEPS):
        neighbours = before if sweep % 2 == 0 else after
        sequence = range(1, len(columns)) if sweep % 2 == 0 else range(len(columns) - 2, -1, -1)
        for c in sequence:
            _reorder(columns, c, neighbours, position)
    return columns


def _reorder(
    columns: list[list[str]], c: int, neighbours: dict[str, list[str]], position: dict[str, int]
) -> None:
    current = columns[c]

    def weight(item: tuple[int, str]) -> tuple[float, int]:
        index, node_id = item
        linked = [position[n] for n in neighbours[node_id] if n in position]
        return (sum(linked) / len(linked) if linked else float(index), index)

    columns[c] = [node_id for _, node_id in sorted(enumerate(current), key=weight)]
    position.update((node_id, i) for i, node_id in enumerate(columns[c]))


Box = tuple[float, float, float]


def layout(nodes: list[Node], edges: list[Edge]) -> tuple[dict[str, Box], float, float]:
    """(x, y, height) of every node, and the picture's width and height."""
    by_id = {node.id: node for node in nodes}
    columns = layers(nodes, edges)
    tallest = max((_column_height(col, by_id) for col in columns), default=0)
    boxes: dict[str, Box] = {}
    for c, column in enumerate(columns):
        y = MARGIN + (tallest - _column_height(column, by_id)) / 2
        for node_id in column:
            box_h = _height(by_id[node_id])
            boxes[node_id] = (MARGIN + c * (NODE_W + GAP_X), y, box_h)
            y += box_h + GAP_Y
    width = 2 * MARGIN + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    return boxes, width, 2 * MARGIN + tallest


def to_svg(spec: PipelineSpecV1) -> str:
    """A standalone SVG document of the spec's topology."""
    nodes, edges = topology(spec)
    boxes, width, height = layout(nodes, edges)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img">',
        f"<title>{escape(spec.name)} ({spec.model})</title>",
        f"<style>{_STYLE}</style>",
        '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#777"/></marker></defs>',
    ]
    out += [_edge(edge, boxes) for edge in edges if edge.source in boxes and edge.target in boxes]
    out += [_node(node, boxes[node.id]) for node in nodes]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _height(node: Node) -> int:
    return SMALL_H if node.kind in ("bridge", "merge", "router") else NODE_H


def _column_height(column: list[str], by_id: dict[str, Node]) -> float:
    return sum(_height(by_id[n]) for n in column) + GAP_Y * max(len(column) - 1, 0)


def _short(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _edge(edge: Edge, boxes: dict[str, Box]) -> str:
    sx, sy, sh = boxes[edge.source]
    tx, ty, th = boxes[edge.target]
    x1, y1, x2, y2 = sx + NODE_W, sy + sh / 2, tx, ty + th / 2
    bend = max((x2 - x1) / 2, 24)
    path = f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"
    title = escape(f"{edge.source} -> {edge.target} ({edge.label})")
    return f'<path class="e" d="{path}" marker-end="url(#a)"><title>{title}</title></path>'


def _node(node: Node, box: Box) -> str:
    x, y, h = box
    rx = 10 if node.kind == "stage" else 3
    parts = [
        f"<g><title>{escape(node.id)}</title>",
        f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{h:g}" rx="{rx}" '
        f"fill={quoteattr(_FILL[node.kind])}/>",
    ]
    if h == NODE_H:
        parts.append(f'<text x="{x + 10:g}" y="{y + 18:g}">{escape(_short(node.title))}</text>')
        detail = escape(_short(node.detail, MAX_CHARS + 4))
        parts.append(f'<text class="d" x="{x + 10:g}" y="{y + 34:g}">{detail}</text>')
    else:
        label = escape(_short(node.title, MAX_CHARS + 4))
        parts.append(f'<text class="d" x="{x + 8:g}" y="{y + 17:g}">{label}</text>')
    parts.append("</g>")
    return "".join(parts)
