"""Change-log retention: entries older than a window are deleted, by one runner, once a minute.

Every write adds to the store's change log (`Store.changes`), which readers follow to learn
what changed; nothing else removes entries. The leader (the single runner, or the one holding
the leader lease among several, as for `Claims.forget_ended`) calls `run_due` after each pass:
at most once a minute it asks the store to forget entries older than the window
(`Store.forget_changes`, through the core for a runner on `xsync core`). One runner is enough,
and several would only take turns at the same rows.

Why readers stay correct is told in `Store.changes`: only the oldest entries go, never the
newest, so a reader that is behind still sees that something changed, and can tell it missed
entries from the gap in `seq`.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from .backend_state import exception_message
from .store.base import Store

DEFAULT_RETENTION_SECONDS = 86400.0  # a day: far past any reader's lag but a long outage
PRUNE_EVERY_SECONDS = 60.0


class ChangeLogRetention:
    """Prunes `store`'s change log to `retention_seconds`, when `run_due` finds it due."""

    def __init__(
        self,
        store: Store,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        *,
        log: logging.Logger,
        every_seconds: float = PRUNE_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retention_seconds = retention_seconds
        self.every_seconds = every_seconds
        self.log = log
        self._clock = clock
        self._pruned_at: float | None = None

    def run_due(self) -> int:
        """Prune if the last time was `every_seconds` ago or more; how many entries went.

        A failure is logged and tried again next time: the entries only wait.
        """
        now = self._clock()
        if self._pruned_at is not None and now - self._pruned_at < self.every_seconds:
            return 0
        self._pruned_at = now
        try:
            forgotten = self.store.forget_changes(self.retention_seconds)
        except Exception as exc:  # noqa: BLE001 - housekeeping; tried again in a minute
            self.log.warning(
                "could not prune the change log", extra={"error": exception_message(exc)}
            )
            return 0
        if forgotten:
            self.log.info("change log pruned", extra={"entries": forgotten})
        return forgotten
