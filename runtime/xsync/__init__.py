"""xsync: the hybrid synchronizer runtime.

What synchronizer authors and scripts use: the step base classes, `connect` to reach the
models, the config, and the engines for embedding the runtime in a program of your own.
Everything else in the package is private.
"""

from xsync.config import Config, ConfigError, load_config
from xsync.connect import ModelAccessor, connect
from xsync.engines.policies import PolicyEngine
from xsync.engines.pull import PullScheduler
from xsync.engines.sync import PassReport, SyncEngine
from xsync.events import Event, EventStep
from xsync.orm import Manager, ModelObject, RelatedManager, make_model_classes
from xsync.policy import Policy
from xsync.pullstep import PullStep
from xsync.steps import DeferredException, InnocuousException, SyncStep

__all__ = [
    "Config",
    "ConfigError",
    "DeferredException",
    "Event",
    "EventStep",
    "InnocuousException",
    "Manager",
    "ModelAccessor",
    "ModelObject",
    "PassReport",
    "Policy",
    "PolicyEngine",
    "PullScheduler",
    "PullStep",
    "RelatedManager",
    "SyncEngine",
    "SyncStep",
    "connect",
    "load_config",
    "make_model_classes",
]
