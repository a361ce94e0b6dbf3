"""What an event step author writes against: the `EventStep` base class and the `Event` it receives.

The shape follows XOS (reference section 8.2): a step declares `technology = "kafka"` and the
`topics` it listens to, and the engine calls `process_event(event)` once per message, on a new
instance built as `Step(model_accessor=..., log=...)`. The event carries `topic`, `key`, `value`
and `timestamp` like XOS's `XOSKafkaMessage`; `partition` and `offset` are extra, for logging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence


@dataclass(frozen=True, slots=True)
class Event:
    """One message taken from the event bus.

    `key` and `value` are the raw bytes (None when absent): decoding is the step's business,
    as in XOS, where the documented example calls `json.loads(event.value)`. `timestamp` is in
    milliseconds since the epoch, or None when the broker does not record one (Kafka 0.9).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    partition: int = 0
    offset: int = -1


class EventStep:
    """Base class for steps that change the model in response to external events.

    Subclass it (directly or through your own base), set `topics`, and override
    `process_event`. Raising from `process_event` makes the engine retry the event under its
    bounded policy; returning lets the engine commit the event's offset. Saves meant to trigger
    the sync steps should pass `always_update_timestamp=True`.
    """

    technology: ClassVar[str] = "kafka"
    topics: ClassVar[Sequence[str]] = ()
    # Seconds one call into this class may take (None: the config's step_timeout_seconds);
    # past it the call is abandoned and counts as a failure.
    timeout_seconds: ClassVar[float | None] = None

    def __init__(
        self, model_accessor: Any = None, log: logging.Logger | None = None, **kwargs: Any
    ) -> None:
        self.model_accessor = model_accessor
        self.log = (
            log if log is not None else logging.getLogger(f"xsync.events.{type(self).__name__}")
        )
        # XOS passes arbitrary extras through the constructor; keep them reachable the same way.
        for name, value in kwargs.items():
            setattr(self, name, value)

    def process_event(self, event: Event) -> None:
        """Handle one event. The base class only warns, as XOS's does."""
        self.log.warning("There is no default process_event, please provide a process_event method")
