"""The model-deps JSON that orders synchronization: `{"Model": [["Peer", "src", "dst"], ...]}`."""

from __future__ import annotations

import json

from ..schema import Field, Model, Schema

# xosgenx leaves these two out of model-deps by name.
SKIPPED_MODELS = frozenset({"Controller", "XOSBase"})

Edge = list[str]


def model_deps(schema: Schema) -> dict[str, list[Edge]]:
    """Each model's dependencies in the order xosgenx 4.0.4 lists them.

    A model depends on the peers of its links, inherited links first. A `ControllerX`
    model that links back to X also makes X depend on it, with the ports reversed.
    A model name that appears twice keeps its first position and its last entry.
    """
    deps: dict[str, list[Edge]] = {}
    for model in schema.models:
        if model.name in SKIPPED_MODELS:
            continue
        edges = _controller_edges(schema, model)
        edges.extend(_edge(link) for link in model.links)
        deps[model.name] = edges
    return deps


def _edge(field: Field) -> Edge:
    assert field.link is not None
    return [field.link.peer_name, field.name, _port(field.link.reverse_name)]


def _controller_edges(schema: Schema, model: Model) -> list[Edge]:
    controller = schema.get("Controller" + model.name) or schema.get("Controller" + model.plural)
    if controller is None:
        return []
    return [
        [controller.name, _port(link.link.reverse_name), link.name]
        for link in controller.links
        if link.link is not None and link.link.peer_ref.text == model.name
    ]


def _port(name: str | None) -> str:
    return name if name is not None else "None"


def render_model_deps(schema: Schema) -> str:
    """The JSON text: 4-space indent, a final newline, byte-identical across runs."""
    return json.dumps(model_deps(schema), indent=4) + "\n"
