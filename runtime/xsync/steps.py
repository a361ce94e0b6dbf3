"""`SyncStep` and the exceptions steps raise; they live in `authoring`, with the other bases.

Kept so that `xsync.steps` stays importable for code written against it.
"""

from .authoring import (
    DeferredException,
    InnocuousException,
    PendingSource,
    SyncStep,
    is_step_class,
    observed_names,
)

__all__ = [
    "DeferredException",
    "InnocuousException",
    "PendingSource",
    "SyncStep",
    "is_step_class",
    "observed_names",
]
