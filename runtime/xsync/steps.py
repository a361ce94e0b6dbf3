"""The step API that synchronizer authors subclass: `SyncStep`, and the exceptions steps raise.

Names follow the XOS synchronizer documentation so that existing steps port with few edits.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, ClassVar, Sequence

# Fetches the pending objects of the named models: (model names, deleted) -> objects.
PendingSource = Callable[[Sequence[str], bool], list[Any]]


class DeferredException(Exception):
    """Raised by a step that cannot finish yet: no error state, no backoff, retried next pass."""


class InnocuousException(Exception):
    """Raised by a step whose object is not done but not in error either (XOS's meaning): the
    object keeps `backend_code` 1 with the message as its status, and is retried with backoff."""


class SyncStep:
    """Base of every sync step.

    `observes` names the model(s) the step keeps in sync: a model class, a model name, or a
    list of either. A class without `observes` is a base for other steps, not a step.
    The engine makes one instance per object, as XOS does, so a step may keep per-object
    state on `self`.
    """

    observes: ClassVar[Any] = None
    # Read by pull steps in the next engine; kept here so XOS steps that set it still load.
    requested_interval: ClassVar[float] = 0
    # Seconds one call into this class may take (None: the config's step_timeout_seconds);
    # past it the call is abandoned and counts as a failure.
    timeout_seconds: ClassVar[float | None] = None

    def __init__(
        self, *, model_accessor: Any = None, log: logging.Logger | None = None, **extra: Any
    ) -> None:
        self.model_accessor = model_accessor
        self.log = (
            log if log is not None else logging.getLogger(f"xsync.step.{type(self).__name__}")
        )
        # Set by the engine; the default fetch_pending reads through it.
        self.pending_source: PendingSource | None = extra.pop("pending_source", None)
        self.extra = extra

    @classmethod
    def observed_model_names(cls) -> list[str]:
        """`observes` as a list of model names."""
        return observed_names(cls.observes)

    def fetch_pending(self, deleted: bool = False) -> list[Any]:
        """Objects to sync (or, with `deleted`, to delete). Override to narrow the selection."""
        if self.pending_source is None:
            raise RuntimeError(
                f"{type(self).__name__} has no pending source: it was not created by the engine"
            )
        return self.pending_source(self.observed_model_names(), deleted)

    def sync_record(self, obj: Any) -> None:
        """Make the backend match `obj`. Raise to report a failure."""

    def delete_record(self, obj: Any) -> None:
        """Remove whatever `sync_record` created for `obj`. Raise to report a failure."""


def observed_names(observes: Any) -> list[str]:
    """Normalise an `observes` value (class, name or a list of them) to model names."""
    if not observes:
        return []
    items = observes if isinstance(observes, (list, tuple)) else [observes]
    return [
        item if isinstance(item, str) else str(getattr(item, "__name__", item)) for item in items
    ]


def is_step_class(value: object) -> bool:
    """True for a concrete step: a subclass of `SyncStep` that declares what it observes."""
    return (
        isinstance(value, type)
        and issubclass(value, SyncStep)
        and value is not SyncStep
        and bool(value.observes)
    )
