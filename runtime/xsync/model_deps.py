"""The model dependency graph a synchronizer runs by: its `dependency_graph` file, or derived."""

from __future__ import annotations

import json
from typing import Any, Callable, Collection, Sequence

from .config import Config
from .planner import ModelDeps


class ModelDepsError(Exception):
    """The dependency_graph file cannot be read or is not model-deps JSON; the message says which."""


def load_model_deps(
    config: Config,
    schema: Any,
    synced: Collection[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ModelDeps:
    """The config's dependency_graph file, checked against the models, or, when the config
    names none, the graph `xsgen deps` gives for the models.

    Unknown models and fields are an error. A `synced` model (one the steps observe) with
    links but no entry would not wait for its peers: its entry is taken from the models and
    `warn` says so (XOS ships synchronizers with `{}` here, so this cannot be an error)."""
    from xprotogen.targets.deps import model_deps

    path = config.dependency_graph
    if path is None:
        return model_deps(schema)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelDepsError(
            f"{config.path}: dependency_graph: cannot read {path}: {exc}"
        ) from None
    if not _is_model_deps(data):
        raise ModelDepsError(
            f'{path}: not a model-deps file: expected {{"Model": [["Peer", "src", "dst"], ...]}}'
        )
    derived = model_deps(schema)
    problems = mismatches(data, schema, derived)
    if problems:
        raise ModelDepsError(
            f"{path}: does not match the models ({'; '.join(problems)}); "
            "regenerate it with `xsgen deps` or leave dependency_graph out to derive it"
        )
    missing = missing_models(data, derived, synced or ())
    if missing and warn is not None:
        warn(
            f"{path}: no entry for {_names(missing)}, whose objects link to others; "
            "their order is taken from the models (regenerate the file with `xsgen deps`)"
        )
    return {**data, **{name: derived[name] for name in missing}}


def missing_models(deps: ModelDeps, derived: ModelDeps, synced: Collection[str]) -> list[str]:
    """The `synced` models with links (`derived` gives them edges) that `deps` leaves out."""
    return sorted(
        name
        for name, edges in derived.items()
        if name in synced and name not in deps and _links_elsewhere(name, edges)
    )


def mismatches(deps: ModelDeps, schema: Any, derived: ModelDeps) -> list[str]:
    """What in `deps` the schema contradicts: unknown models, peers and fields."""
    unknown_models = sorted({m for m in deps if schema.get(m) is None})
    # Links the models themselves leave unresolved (xsgen lints them) are not the file's fault.
    dangling = {
        edge[0] for edges in derived.values() for edge in edges if schema.get(edge[0]) is None
    }
    unknown_peers: set[str] = set()
    unknown_fields: set[str] = set()
    for name, edges in deps.items():
        model = schema.get(name)
        for peer, src, _dst in edges:
            if schema.get(peer) is None and peer not in dangling:
                unknown_peers.add(peer)
            elif model is not None and src != "None" and not _has_field(model, src):
                unknown_fields.add(f"{name}.{src}")
    problems = []
    if unknown_models:
        problems.append(f"unknown models: {_names(unknown_models)}")
    if unknown_peers - set(unknown_models):
        problems.append(
            f"unknown peer models: {_names(sorted(unknown_peers - set(unknown_models)))}"
        )
    if unknown_fields:
        problems.append(f"unknown fields: {_names(sorted(unknown_fields))}")
    return problems


def _names(names: list[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _has_field(model: Any, name: str) -> bool:
    """A field, link or reverse link of `model` or of a model it inherits from."""
    return model.field(name) is not None or any(
        reverse.name == name for reverse in model.reverse_links
    )


def _links_elsewhere(model: str, edges: Sequence[Sequence[str]]) -> bool:
    # Self-links do not order objects (see LinkFields), so a model with only those may be left out.
    return any(edge[0] != model for edge in edges)


def _is_model_deps(data: object) -> bool:
    return isinstance(data, dict) and all(
        isinstance(edges, list)
        and all(
            isinstance(e, list) and len(e) == 3 and all(isinstance(s, str) for s in e)
            for e in edges
        )
        for edges in data.values()
    )
