"""The model dependency graph as a picture: Graphviz DOT, Mermaid, or SVG through `dot`.

The graph is the one `xsgen deps` prints: a node per model, an edge from a model to each
model it links to, labelled with the link field. An edge points from the dependent to what
it depends on, so the synchronizer runs the targets of the arrows first.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Collection, Literal

from ..diagnostics import TargetError
from ..schema import Schema
from .deps import model_deps

GraphFormat = Literal["dot", "mermaid", "svg"]
_DOT_TIMEOUT_SECONDS = 60


class GraphvizMissing(TargetError):
    """SVG was asked for, but Graphviz's `dot` is not installed."""


class GraphvizFailed(TargetError):
    """`dot` ran and refused the graph; the message is its own."""


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` depends on `target` through the link field `label`."""

    source: str
    target: str
    label: str


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: tuple[str, ...]
    edges: tuple[Edge, ...]


def build_graph(schema: Schema, files: Collection[str] | None = None) -> Graph:
    """Nodes in schema order (then peers that are not models of the schema), edges as in model-deps.

    With `files`, only the models of those files and what they link to: the built-in core,
    read for a service file, would otherwise fill the picture.
    """
    deps = model_deps(schema)
    if files is not None:
        keep = {m.name for m in schema.models if m.file in files}
        deps = {name: links for name, links in deps.items() if name in keep}
    edges = tuple(
        Edge(model, peer, field) for model, links in deps.items() for peer, field, _ in links
    )
    nodes = dict.fromkeys(deps)
    nodes.update(dict.fromkeys(e.target for e in edges))
    return Graph(tuple(nodes), edges)


def render_dot(graph: Graph) -> str:
    lines = [
        "digraph model_deps {",
        "    rankdir=LR;",
        '    node [shape=box, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    lines.extend(f"    {dot_id(node)};" for node in graph.nodes)
    lines.extend(
        f"    {dot_id(e.source)} -> {dot_id(e.target)} [label={dot_id(e.label)}];"
        for e in graph.edges
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_id(text: str) -> str:
    """`text` as a quoted DOT id: any name or label, escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_mermaid(graph: Graph) -> str:
    # Node ids get a prefix: a model named `end` or `graph` would otherwise be a keyword.
    ids = {node: f"m{index}" for index, node in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    lines.extend(f'    {ids[node]}["{_mermaid_text(node)}"]' for node in graph.nodes)
    lines.extend(
        f'    {ids[e.source]} -->|"{_mermaid_text(e.label)}"| {ids[e.target]}' for e in graph.edges
    )
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def render_svg(graph: Graph) -> str:
    """The DOT text laid out by Graphviz; `GraphvizMissing` when `dot` is not installed."""
    return dot_to_svg(render_dot(graph))


def dot_to_svg(dot_text: str) -> str:
    """Any DOT text laid out by Graphviz's `dot` as SVG (`GraphvizMissing`, `GraphvizFailed`)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(
            "svg needs Graphviz's `dot`, which is not installed "
            "(apt-get install graphviz); --format dot or mermaid work without it"
        )
    done = subprocess.run(
        [dot, "-Tsvg"],
        input=dot_text,
        capture_output=True,
        text=True,
        timeout=_DOT_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise GraphvizFailed(f"dot failed: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def render_graph(
    schema: Schema, output_format: GraphFormat, files: Collection[str] | None = None
) -> str:
    """The graph of `schema` (of the models of `files`, if given) as text in `output_format`."""
    graph = build_graph(schema, files)
    if output_format == "svg":
        return render_svg(graph)
    if output_format == "mermaid":
        return render_mermaid(graph)
    return render_dot(graph)
