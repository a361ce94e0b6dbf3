"""The sync engine's outcome writes, saved in batches (the executor's `Settle`).

A pass used to save each object's outcome in a transaction of its own; most of a pass went
into those commits. Outcomes now wait in a buffer and are saved many to a transaction, with
`Store.write_outcomes`, when the buffer is full, when its oldest outcome has waited
`seconds`, when something another object waits for is in it (the executor asks), and at the
end of every pass. A crash loses at most the buffer: its objects are still outdated in the
store, so they are synced again (at least once, as before).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

from ..backend_state import exception_message
from ..planner import Key
from ..store.base import STORE_DOWN, Actor, OutcomeWrite, Store, StoreError


class OutcomeBuffer:
    """Outcome writes of one pass, thread-safe; `flush` saves them in one store call."""

    def __init__(
        self,
        store: Store,
        *,
        actor: Actor,
        size: int,
        seconds: float,
        log: logging.Logger,
        on_saved: Callable[[list[Key]], None] | None = None,
        on_store_down: Callable[[StoreError], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._actor = actor
        self._size = max(1, size)
        self._seconds = seconds
        self._log = log
        # Called after each flush with every key it wrote or tried to (leases may then go).
        self._on_saved = on_saved
        self._on_store_down = on_store_down
        self._clock = clock
        self._lock = threading.Lock()
        # One flush at a time: two writes to one object are saved in the order they were made.
        self._flushing = threading.Lock()
        self._writes: list[OutcomeWrite] = []
        self._keys: set[Key] = set()
        self._oldest: float | None = None

    def add(self, key: Key, values: Mapping[str, Any]) -> None:
        with self._lock:
            if not self._writes:
                self._oldest = self._clock()
            self._writes.append(OutcomeWrite(key[0], key[1], dict(values)))
            self._keys.add(key)

    def holds(self, key: Key) -> bool:
        """Whether an outcome of `key` waits to be saved."""
        with self._lock:
            return key in self._keys

    def due(self) -> bool:
        with self._lock:
            if len(self._writes) >= self._size:
                return True
            return self._oldest is not None and self._clock() - self._oldest >= self._seconds

    def flush(self) -> set[Key]:
        """Save everything buffered; the keys whose write failed (logged here). Never raises:
        a store that is down is reported to `on_store_down`, and every key counts as failed."""
        with self._flushing:
            with self._lock:
                writes, self._writes = self._writes, []
                keys, self._keys = self._keys, set()
                self._oldest = None
            if not writes:
                return set()
            try:
                return self._save(writes)
            finally:
                if self._on_saved is not None:
                    self._on_saved(list(keys))

    def _save(self, writes: list[OutcomeWrite]) -> set[Key]:
        try:
            results = self._store.write_outcomes(writes, actor=self._actor)
        except STORE_DOWN as exc:
            if self._on_store_down is not None:
                self._on_store_down(exc)
            return {(w.model, w.id) for w in writes}
        except StoreError as exc:
            self._log.warning(
                "could not save outcomes",
                extra={"objects": len(writes), "error": exception_message(exc)},
            )
            return {(w.model, w.id) for w in writes}
        failed: set[Key] = set()
        for write, error in zip(writes, results):
            if error is None:
                continue
            failed.add((write.model, write.id))
            # The object may be gone (purged, or deleted under us); the next pass sees it again.
            self._log.warning(
                "could not save backend status",
                extra={"model": write.model, "id": write.id, "error": exception_message(error)},
            )
        return failed
