"""What synchronizer authors subclass: the four kinds of step, their hooks, and what they raise.

* `SyncStep` keeps the objects of the models it `observes` in sync with a backend
  (`sync_record`, `delete_record`; optional `after_sync_save`).
* `Policy` reacts to the create, update and delete of its `model_name`'s objects
  (`handle_create`, `handle_update`, `handle_delete`; optional `after_policy_save`).
* `PullStep` polls an external system every `requested_interval` seconds (`pull_records`).
* `EventStep` handles the messages of its `topics` on the event bus (`process_event`).

Names follow the XOS synchronizer documentation so that existing code ports with few edits.
The engines make one instance per call, as XOS does, so an instance may keep per-call state
on `self`. A class that does not say what it works on (no `observes`, `model_name`, `topics`,
or for a pull step no `pull_records` of its own) is a base for other classes, not a step;
`loader.discover` applies these rules to every kind in the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence, TypeVar

# Fetches the pending objects of the named models: (model names, deleted) -> objects.
PendingSource = Callable[[Sequence[str], bool], list[Any]]
_Fetch = TypeVar("_Fetch", bound=Callable[..., Any])
# The `fetch_pending` methods that select exactly what the base's selects (see `default_fetch`).
_DEFAULT_FETCHES: set[Callable[..., Any]] = set()


def default_fetch(method: _Fetch) -> _Fetch:
    """Marks a `fetch_pending` that selects exactly the objects the base's does.

    The sync engine then reads the pending objects itself, with only the columns it plans
    with, and reads each whole just before its step runs; a step whose own `fetch_pending`
    narrows the selection gets whole objects from the start.
    """
    _DEFAULT_FETCHES.add(method)
    return method


def fetches_by_default(step_class: type[SyncStep]) -> bool:
    """Whether `step_class.fetch_pending` is one marked with `default_fetch`."""
    return step_class.fetch_pending in _DEFAULT_FETCHES


class DeferredException(Exception):
    """Raised by a step that cannot finish yet: no error state, no backoff, retried next pass."""


class InnocuousException(Exception):
    """Raised by a step whose object is not done but not in error either (XOS's meaning): the
    object keeps `backend_code` 1 with the message as its status, and is retried with backoff."""


@dataclass(frozen=True, slots=True)
class Event:
    """One message taken from the event bus.

    `key` and `value` are the raw bytes (None when absent): decoding is the step's business,
    as in XOS, where the documented example calls `json.loads(event.value)`. `timestamp` is in
    milliseconds since the epoch, or None when the broker does not record one (Kafka 0.9).
    `partition` and `offset` are extra, for logging.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    partition: int = 0
    offset: int = -1


class UserCode:
    """What every authored class has: the model accessor, a logger, and a time limit."""

    # Seconds one call into this class may take (None: the config's step_timeout_seconds);
    # past it the call is abandoned and counts as a failure.
    timeout_seconds: ClassVar[float | None] = None
    # The logger's name is "xsync.<kind>.<class name>".
    log_kind: ClassVar[str] = "code"

    def __init__(
        self, *, model_accessor: Any = None, log: logging.Logger | None = None, **extra: Any
    ) -> None:
        self.model_accessor = model_accessor
        self.log = (
            log
            if log is not None
            else logging.getLogger(f"xsync.{self.log_kind}.{type(self).__name__}")
        )
        self.extra = extra


class SyncStep(UserCode):
    """Base of every sync step.

    `observes` names the model(s) the step keeps in sync: a model class, a model name, or a
    list of either.
    """

    log_kind = "step"
    observes: ClassVar[Any] = None
    # Read by pull steps; kept here so XOS steps that set it still load.
    requested_interval: ClassVar[float] = 0

    def __init__(
        self, *, model_accessor: Any = None, log: logging.Logger | None = None, **extra: Any
    ) -> None:
        # Set by the engine; the default fetch_pending reads through it.
        self.pending_source: PendingSource | None = extra.pop("pending_source", None)
        super().__init__(model_accessor=model_accessor, log=log, **extra)

    @classmethod
    def observed_model_names(cls) -> list[str]:
        """`observes` as a list of model names."""
        return observed_names(cls.observes)

    @default_fetch
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

    def after_sync_save(self, obj: Any) -> None:
        """Optional: called after a sync of `obj` was recorded. A failure is logged only."""


class Policy(UserCode):
    """Base of every model policy; `model_name` names the model whose objects it handles.

    Saves made inside a handler are policy saves, which make changed objects due for sync.
    """

    log_kind = "policy"
    model_name: ClassVar[str | None] = None

    def handle_create(self, obj: Any) -> None:
        """Called once for an object that was never policed."""

    def handle_update(self, obj: Any) -> None:
        """Called when a policed object changed (by a user, or by a sync step)."""

    def handle_delete(self, obj: Any) -> None:
        """Called for a deleted object before it is reaped."""

    def after_policy_save(self, obj: Any) -> None:
        """Optional: called after `obj` was recorded as policed. A failure is logged only."""


class PullStep(UserCode):
    """Base of every pull step; the engine makes a fresh instance for each run.

    Objects a pull step creates should set `no_sync = True`, so that the sync steps do not
    push them straight back.
    """

    log_kind = "pullstep"
    requested_interval: ClassVar[float] = 60.0

    def pull_records(self) -> None:
        """Read the external system and update the model."""


class EventStep(UserCode):
    """Base class for steps that change the model in response to external events.

    Set `topics` and override `process_event`. Raising from `process_event` makes the engine
    retry the event under its bounded policy; returning lets the engine commit the event's
    offset. Saves meant to trigger the sync steps should pass `always_update_timestamp=True`.
    """

    log_kind = "events"
    technology: ClassVar[str] = "kafka"
    topics: ClassVar[Sequence[str]] = ()

    def __init__(
        self, model_accessor: Any = None, log: logging.Logger | None = None, **kwargs: Any
    ) -> None:
        super().__init__(model_accessor=model_accessor, log=log)
        # XOS passes arbitrary extras through the constructor; keep them reachable the same way.
        for name, value in kwargs.items():
            setattr(self, name, value)

    def process_event(self, event: Event) -> None:
        """Handle one event. The base class only warns, as XOS's does."""
        self.log.warning("There is no default process_event, please provide a process_event method")


# The optional hooks: the engines call one only where a subclass defines it.
_OPTIONAL_HOOKS: dict[str, type[UserCode]] = {
    "after_sync_save": SyncStep,
    "after_policy_save": Policy,
}


def optional_hook(target: object, name: str) -> Callable[..., Any] | None:
    """`target`'s (an instance's or class's) own optional hook `name`; None when it kept the
    base's empty one, or (for classes not derived from the bases, as some XOS code is) has none."""
    hook = getattr(target, name, None)
    if hook is None:
        return None
    base = _OPTIONAL_HOOKS[name]
    owner = target if isinstance(target, type) else type(target)
    if getattr(owner, name, None) is getattr(base, name):
        return None
    return hook  # type: ignore[no-any-return]


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
