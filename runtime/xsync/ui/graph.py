"""The service's models as a picture: its own models and their direct neighbours, laid out by
Graphviz (`xprotogen.targets.graph.dot_to_svg`), each model filled with the colour of its worst
state and labelled with its counts. The other models are collapsed into the caption.

Graphviz escapes every label it writes; the names also go through `dot_id`. Each model's group
in the SVG has the id `model-<name>` and the classes `model state-<worst>` (`state-none` for a
model without objects; Graphviz adds `node`), which the page uses to colour (light and dark) and to filter on a click.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Mapping, Sequence

from xprotogen.diagnostics import TargetError
from xprotogen.targets.graph import dot_id, dot_to_svg

from ..backend_state import State
from ..planner import ModelDeps
from .index import SEVERITY

GraphError = TargetError  # Graphviz missing, or refusing the graph: the message says which

# Light-scheme fills; the page's style sheet overrides them by class for the dark scheme.
FILLS: dict[str | None, str] = {
    State.ERROR.value: "#f6c9c5",
    State.HELD.value: "#ecd3bf",
    State.BACKING_OFF.value: "#f7e2b0",
    State.DEFERRED.value: "#f7e2b0",
    State.PENDING.value: "#e3e6eb",
    State.OK.value: "#cfe8d5",
    None: "#ffffff",
}
SHORT = {"ok": "ok", "pending": "pending", "deferred": "deferred", "held": "held",
         "backing_off": "backing off", "error": "error"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` links to `target` through `field`."""

    source: str
    target: str
    field: str


def graph_edges(deps: ModelDeps) -> list[Edge]:
    return [
        Edge(model, link[0], link[1]) for model, links in deps.items() for link in links
        if len(link) >= 2
    ]  # fmt: skip


class ServiceGraph:
    """The picture of `service` and its neighbours among `shown`, rendered per counts."""

    def __init__(self, deps: ModelDeps, service: Sequence[str], *, shown: Sequence[str]) -> None:
        everything = list(dict.fromkeys([*deps, *shown]))
        edges = graph_edges(deps)
        own = list(service) or list(shown)
        near = set(own)
        for e in edges:
            if e.source in own or e.target in own:
                near.update((e.source, e.target))
        self.own = own
        self.nodes = [*own, *sorted(n for n in near if n not in own)]
        self.edges = [e for e in edges if e.source in near and e.target in near]
        self.collapsed = len([m for m in everything if m not in near])
        self._lock = threading.Lock()
        self._cache: tuple[tuple[object, ...], str] | None = None

    def dot(self, counts: Mapping[str, Mapping[str, int]]) -> str:
        lines = [
            "digraph service {",
            "  rankdir=LR; nodesep=0.35; ranksep=0.7; bgcolor=transparent;",
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, '
            'margin="0.15,0.06"];',
            '  edge [fontname="Helvetica", fontsize=10];',
        ]
        if self.collapsed:
            lines.append(
                f"  label={dot_id(f'{self.collapsed} more models not linked to these are not drawn')};"
                ' labelloc=b; fontname="Helvetica"; fontsize=10;'
            )
        for name in self.nodes:
            tally = counts.get(name, {})
            worst = next((s.value for s in SEVERITY if tally.get(s.value)), None)
            parts = [f"{tally[s.value]} {SHORT[s.value]}" for s in SEVERITY if tally.get(s.value)]
            label = name + "\n" + (", ".join(parts) if parts else "no objects")
            classes = f"model {'own' if name in self.own else 'neighbour'} state-{worst or 'none'}"
            lines.append(
                f"  {dot_id(name)} [label={dot_id(label)}, id={dot_id('model-' + name)}, "
                f"class={dot_id(classes)}, "
                f"fillcolor={dot_id(FILLS[worst])}, tooltip={dot_id(name)}"
                + (", penwidth=2" if name in self.own else "")
                + "];"
            )
        for e in self.edges:
            lines.append(
                f"  {dot_id(e.source)} -> {dot_id(e.target)} [label={dot_id(e.field)}, "
                f"tooltip={dot_id(f'{e.source}.{e.field} -> {e.target}')}];"
            )
        lines.append("}")
        return "\n".join(lines) + "\n"

    def render(self, counts: Mapping[str, Mapping[str, int]]) -> str:
        """The SVG for these counts; the last one is kept, since counts rarely change."""
        key = tuple(tuple(sorted(counts.get(n, {}).items())) for n in self.nodes)
        with self._lock:
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
        svg = dot_to_svg(self.dot(counts))
        svg = svg[svg.index("<svg") :]  # the XML prolog and doctype are not wanted inline
        with self._lock:
            self._cache = (key, svg)
        return svg
