"""xsync: the hybrid synchronizer runtime.

What synchronizer authors and scripts use: the step base classes, `connect` to reach the
models, the config, and the engines for embedding the runtime in a program of your own.
Everything else in the package is private.

The public names below load their module on first use, as `xprotogen`'s do, so that importing
one light part (a step base class, the config) does not load the store's SQL backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# `connect` is loaded now, not on first use: the function has its module's name, and importing
# the module `xsync.connect` (as the runner does) would rebind `xsync.connect` to the module.
from .connect import ModelAccessor as ModelAccessor
from .connect import connect as connect

if TYPE_CHECKING:
    # `X as X`: the explicit re-export mypy --strict looks for in a user's program.
    from .authoring import DeferredException as DeferredException
    from .authoring import Event as Event
    from .authoring import EventStep as EventStep
    from .authoring import InnocuousException as InnocuousException
    from .authoring import Policy as Policy
    from .authoring import PullStep as PullStep
    from .authoring import SyncStep as SyncStep
    from .config import Config as Config, ConfigError as ConfigError, load_config as load_config
    from .engines.policies import PolicyEngine as PolicyEngine
    from .engines.pull import PullScheduler as PullScheduler
    from .engines.sync import PassReport as PassReport, SyncEngine as SyncEngine
    from .orm import (
        Manager as Manager,
        ModelObject as ModelObject,
        RelatedManager as RelatedManager,
        make_model_classes as make_model_classes,
    )

_EXPORTS = {
    "Config": "config",
    "ConfigError": "config",
    "load_config": "config",
    "PolicyEngine": "engines.policies",
    "PullScheduler": "engines.pull",
    "PassReport": "engines.sync",
    "SyncEngine": "engines.sync",
    "Event": "authoring",
    "EventStep": "authoring",
    "Manager": "orm",
    "ModelObject": "orm",
    "RelatedManager": "orm",
    "make_model_classes": "orm",
    "Policy": "authoring",
    "PullStep": "authoring",
    "DeferredException": "authoring",
    "InnocuousException": "authoring",
    "SyncStep": "authoring",
}

__all__ = sorted([*_EXPORTS, "ModelAccessor", "connect"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xsync' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
