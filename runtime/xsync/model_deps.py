"""The model dependency graph a synchronizer runs by: its `dependency_graph` file, or derived."""

from __future__ import annotations

import json
from typing import Any

from .config import Config
from .planner import ModelDeps


class ModelDepsError(Exception):
    """The dependency_graph file cannot be read or is not model-deps JSON; the message says which."""


def load_model_deps(config: Config, schema: Any) -> ModelDeps:
    """The config's dependency_graph file, or the graph `xsgen deps` would give for the models."""
    path = config.dependency_graph
    if path is None:
        from xprotogen.targets.deps import model_deps

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
    return data  # type: ignore[no-any-return]


def _is_model_deps(data: object) -> bool:
    return isinstance(data, dict) and all(
        isinstance(edges, list)
        and all(
            isinstance(e, list) and len(e) == 3 and all(isinstance(s, str) for s in e)
            for e in edges
        )
        for edges in data.values()
    )
