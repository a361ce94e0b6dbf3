"""What a model-policy author writes against: the `Policy` base class.

Names follow XOS (reference section 7): a policy names its model in `model_name` and reacts to
create, update and delete of that model's objects, usually by creating or changing other
objects. Saves made inside a handler are policy saves, which make changed objects due for sync.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar


class Policy:
    """Base of every model policy; a class without `model_name` is a base for other policies."""

    model_name: ClassVar[str | None] = None
    # Seconds one call into this class may take (None: the config's step_timeout_seconds);
    # past it the call is abandoned and counts as a failure.
    timeout_seconds: ClassVar[float | None] = None

    def __init__(
        self, *, model_accessor: Any = None, log: logging.Logger | None = None, **extra: Any
    ) -> None:
        self.model_accessor = model_accessor
        self.log = (
            log if log is not None else logging.getLogger(f"xsync.policy.{type(self).__name__}")
        )
        self.extra = extra

    def handle_create(self, obj: Any) -> None:
        """Called once for an object that was never policed."""

    def handle_update(self, obj: Any) -> None:
        """Called when a policed object changed (by a user, or by a sync step)."""

    def handle_delete(self, obj: Any) -> None:
        """Called for a deleted object before it is reaped."""
