"""What a pull-step author writes against: the `PullStep` base class.

A pull step polls an external system every `requested_interval` seconds and writes what it
finds into the model. Objects it creates should set `no_sync = True`, so that the sync steps
do not push them straight back (reference section 8.1).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar


class PullStep:
    """Base of every pull step; the engine makes a fresh instance for each run."""

    requested_interval: ClassVar[float] = 60.0
    # Seconds one call into this class may take (None: the config's step_timeout_seconds);
    # past it the call is abandoned and counts as a failure.
    timeout_seconds: ClassVar[float | None] = None

    def __init__(
        self, *, model_accessor: Any = None, log: logging.Logger | None = None, **extra: Any
    ) -> None:
        self.model_accessor = model_accessor
        self.log = (
            log if log is not None else logging.getLogger(f"xsync.pullstep.{type(self).__name__}")
        )
        self.extra = extra

    def pull_records(self) -> None:
        """Read the external system and update the model."""
