"""The model dependency graph as an SVG picture, laid out here without Graphviz.

A small layered layout: a model sits one row below the lowest of the models it links to
(so the arrows point up, towards what syncs first), rows are ordered by the mean position
of each model's neighbours in the row above to keep crossings down, and each arrow carries
the name of the link field. Every name is XML-escaped: a dependency-graph file is user data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

from ..planner import ModelDeps, model_order

CHAR_WIDTH = 7.5  # px per character at the 13px sans-serif the picture uses
NODE_HEIGHT = 30.0
NODE_PADDING = 16.0
H_GAP = 36.0
V_GAP = 70.0
MARGIN = 20.0
LABEL_AT = 0.3  # where along an arrow its label sits, from the source


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` links to `target` through `field` (seen back from the target as `reverse`)."""

    source: str
    target: str
    field: str
    reverse: str


@dataclass(frozen=True, slots=True)
class Box:
    name: str
    layer: int
    x: float
    y: float
    width: float

    @property
    def center(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: dict[str, Box]
    edges: list[Edge]
    width: float
    height: float


def graph_edges(deps: ModelDeps) -> list[Edge]:
    edges: list[Edge] = []
    for model, links in deps.items():
        for link in links:
            if len(link) >= 2:
                reverse = link[2] if len(link) >= 3 else ""
                edges.append(Edge(model, link[0], link[1], reverse))
    return edges


def layout(deps: ModelDeps) -> Layout:
    """Positions for every model named in `deps` (as a key or as a peer)."""
    edges = graph_edges(deps)
    order = model_order(deps)  # peers before the models that link to them
    layer_of = _layers(order, edges)
    rows: dict[int, list[str]] = {}
    for name in order:
        rows.setdefault(layer_of[name], []).append(name)
    _reduce_crossings(rows, edges)
    row_widths = {
        layer: sum(_box_width(n) for n in row) + H_GAP * (len(row) - 1)
        for layer, row in rows.items()
    }
    width = max(row_widths.values(), default=0.0) + 2 * MARGIN
    boxes: dict[str, Box] = {}
    for layer, row in rows.items():
        x = (width - row_widths[layer]) / 2  # each row centred
        y = MARGIN + layer * (NODE_HEIGHT + V_GAP)
        for name in row:
            boxes[name] = Box(name, layer, x, y, _box_width(name))
            x += _box_width(name) + H_GAP
    layers = len(rows)
    height = 2 * MARGIN + max(layers, 1) * NODE_HEIGHT + max(layers - 1, 0) * V_GAP
    return Layout(boxes, edges, max(width, 2 * MARGIN), height)


def _box_width(name: str) -> float:
    return len(name) * CHAR_WIDTH + 2 * NODE_PADDING


def _layers(order: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    # One pass in dependency order is the longest-path layering; an edge that closes a cycle
    # meets a peer not placed yet and is simply not counted.
    peers: dict[str, list[str]] = {}
    for edge in edges:
        if edge.source != edge.target:
            peers.setdefault(edge.source, []).append(edge.target)
    layer_of: dict[str, int] = {}
    for name in order:
        placed = [layer_of[p] for p in peers.get(name, ()) if p in layer_of]
        layer_of[name] = 1 + max(placed) if placed else 0
    return layer_of


def _reduce_crossings(rows: dict[int, list[str]], edges: Sequence[Edge]) -> None:
    neighbours: dict[str, list[str]] = {}
    for edge in edges:
        if edge.source != edge.target:
            neighbours.setdefault(edge.source, []).append(edge.target)
            neighbours.setdefault(edge.target, []).append(edge.source)
    # One sweep down and one up of the barycenter heuristic: cheap, and enough for
    # schema-sized graphs. Neighbours in the row itself do not pull.
    position = {name: float(i) for row in rows.values() for i, name in enumerate(row)}
    layers = sorted(rows)
    for sweep in (layers[1:], layers[::-1][1:]):
        for layer in sweep:
            row = rows[layer]
            others = {name: p for name, p in position.items() if name not in row}
            row.sort(key=lambda n: _barycenter(n, neighbours, others, position[n]))
            position.update((name, float(i)) for i, name in enumerate(row))


def _barycenter(
    name: str, neighbours: dict[str, list[str]], position: dict[str, float], fallback: float
) -> float:
    placed = [position[n] for n in neighbours.get(name, ()) if n in position]
    return sum(placed) / len(placed) if placed else float(fallback)


def _bezier(
    p0: tuple[float, float],
    p1: tuple[float, float],
    p2: tuple[float, float],
    p3: tuple[float, float],
    t: float,
) -> tuple[float, float]:
    u = 1 - t
    weights = (u**3, 3 * u * u * t, 3 * u * t * t, t**3)
    points = (p0, p1, p2, p3)
    return (
        sum(w * p[0] for w, p in zip(weights, points)),
        sum(w * p[1] for w, p in zip(weights, points)),
    )


def render_svg(deps: ModelDeps) -> str:
    """The dependency graph as a standalone SVG document."""
    plan = layout(deps)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="model dependency graph" '
        f'width="{plan.width:.0f}" height="{plan.height:.0f}" '
        f'viewBox="0 0 {plan.width:.0f} {plan.height:.0f}" '
        'font-family="sans-serif" font-size="13">',
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
        "</marker></defs>",
    ]
    for edge in plan.edges:
        parts.append(_edge_svg(plan, edge))
    for box in plan.boxes.values():
        parts.append(_box_svg(box))
    parts.append("</svg>")
    return "\n".join(parts)


def _box_svg(box: Box) -> str:
    return (
        f'<g class="model" data-model={quoteattr(box.name)}>'
        f"<title>{escape(box.name)}</title>"
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{NODE_HEIGHT:.0f}" '
        'rx="6" fill="#eef3fb" stroke="#4a6fa5"/>'
        f'<text x="{box.center:.1f}" y="{box.y + NODE_HEIGHT / 2 + 4.5:.1f}" '
        f'text-anchor="middle">{escape(box.name)}</text></g>'
    )


def _edge_svg(plan: Layout, edge: Edge) -> str:
    source, target = plan.boxes[edge.source], plan.boxes[edge.target]
    title = f"{edge.source}.{edge.field} -> {edge.target}" + (
        f" (back: {edge.reverse})" if edge.reverse else ""
    )
    label = escape(edge.field)
    if source.name == target.name:
        # A self-link: a loop on the right-hand side of the box.
        x, y = source.x + source.width, source.y
        path = f"M{x:.1f},{y + 8:.1f} C{x + 40:.1f},{y - 10:.1f} {x + 40:.1f},{y + 40:.1f} {x:.1f},{y + 22:.1f}"
        lx, ly = x + 34, y + NODE_HEIGHT / 2 + 4
    else:
        x1, x2 = source.center, target.center
        if source.layer > target.layer:
            y1, y2 = source.y, target.y + NODE_HEIGHT
        elif source.layer < target.layer:
            y1, y2 = source.y + NODE_HEIGHT, target.y
        else:
            # Same row (a cycle): bow the arrow over the boxes.
            y1 = y2 = source.y
        bend = (y1 + y2) / 2 if y1 != y2 else y1 - V_GAP / 2
        path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{bend:.1f} {x2:.1f},{bend:.1f} {x2:.1f},{y2:.1f}"
        # Near the source end: the arrows into a popular model do not pile their labels up.
        lx, ly = _bezier((x1, y1), (x1, bend), (x2, bend), (x2, y2), LABEL_AT)
        ly += 4
    return (
        f'<g class="link" data-source={quoteattr(edge.source)} data-target={quoteattr(edge.target)}>'
        f"<title>{escape(title)}</title>"
        f'<path d="{path}" fill="none" stroke="#555" marker-end="url(#arrow)"/>'
        f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" fill="#333" '
        f'stroke="#fff" stroke-width="3" paint-order="stroke">{label}</text></g>'
    )
