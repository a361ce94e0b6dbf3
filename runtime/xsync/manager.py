"""Starts and stops every part of a synchronizer the same way, as controller-runtime's Manager does.

A part is anything with `start()` and `stop()`: the store watcher, the pull scheduler, the
event engine, the metrics server, the runtime itself. A `Manager` starts its parts in the order
they were added and stops them in the reverse order; a part whose stop fails is logged and the
others still stop, and each part bounds its own stop (every one joins its thread with a time
limit). `xsync run` (`commands.run_synchronizer`) runs a synchronizer's parts under one
manager; `Runner.run_forever` runs its background parts (store watcher, pull scheduler, event
engine) under another.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from .store.base import Store

# How long a stopped watcher may take to notice (it waits on the store at most a second).
WATCHER_JOIN_SECONDS = 5.0


class Part(Protocol):
    """Starts in `start`, stops within its own time limit in `stop` (results are ignored)."""

    def start(self) -> object: ...

    def stop(self) -> object: ...


@dataclass(frozen=True, slots=True)
class Hooks:
    """A part made of two calls; either may be absent (a part someone else starts or stops)."""

    on_start: Callable[[], object] | None = None
    on_stop: Callable[[], object] | None = None

    def start(self) -> None:
        if self.on_start is not None:
            self.on_start()

    def stop(self) -> None:
        if self.on_stop is not None:
            self.on_stop()


class Manager:
    """Parts started in order, stopped in reverse order; usable as a context manager."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._waiting: list[tuple[str, Part]] = []
        self._started: list[tuple[str, Part]] = []

    def add(self, name: str, part: Part) -> None:
        """A part for the next `start`; parts may be added while others run."""
        self._waiting.append((name, part))

    def start(self) -> None:
        """Start the parts added since the last start; if one fails, every started one stops."""
        while self._waiting:
            name, part = self._waiting.pop(0)
            try:
                part.start()
            except BaseException:
                self.stop()
                raise
            self._started.append((name, part))

    def stop(self) -> None:
        """Stop the started parts, last first; each at most once."""
        while self._started:
            name, part = self._started.pop()
            try:
                part.stop()
            except Exception as exc:  # noqa: BLE001 - the other parts must still stop
                self._log.error("stopping the %s failed: %s: %s", name, type(exc).__name__, exc)

    def __enter__(self) -> Manager:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class StoreWatcher:
    """Follows `Store.changes` in a thread and sets `wake` when something changed."""

    def __init__(
        self, store: Store, wake: threading.Event, *, interval: float, log: logging.Logger
    ) -> None:
        self._store = store
        self._wake = wake
        self._interval = interval
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="xsync-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=WATCHER_JOIN_SECONDS)

    def _watch(self) -> None:
        seq = _latest_seq(self._store)
        failing = False
        while not self._stop.is_set():
            try:
                found = self._store.changes(seq, timeout=min(1.0, self._interval))
            except Exception as exc:
                # The store may be restarting; the timer keeps the loop going meanwhile. Said
                # once per outage, not once a second.
                if not failing:
                    self._log.warning("watching the store failed", extra={"error": str(exc)})
                failing = True
                self._stop.wait(1.0)
                continue
            failing = False
            if found:
                seq = found[-1].seq
                self._wake.set()


def _latest_seq(store: Store) -> int:
    """Where to start following: the log's end (read without reading the log).

    A wake-up is never missed, even as the log is pruned: pruning keeps the newest entry, so
    `changes(seq)` returns something whenever anything committed after `seq`. A store that
    cannot say starts the watch at 0: the first read then wakes a pass, which is harmless.
    """
    try:
        return store.latest_change()
    except Exception:
        return 0
