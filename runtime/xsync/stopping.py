"""How a runner stops: SIGTERM or SIGINT asks, a grace period bounds the wait.

The first signal asks the runner to stop (the steps in flight may finish, nothing new starts);
if the process has not finished `grace` seconds later, or a second signal comes, the steps
still running are abandoned: one line names them and the process exits with `exit_code`
at once, whatever user code is doing.

Signals are noticed by a thread reading the interpreter's wakeup file descriptor, not by a
Python-level handler, because such a handler only runs when the main thread next executes
Python code, and a main thread waiting inside C (a database lock, a network call) may not
for a long time.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Callable

from .bounded import in_flight

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Calls named in the line written when steps are abandoned; the rest are counted.
_NAMED_CALLS = 5


class GracefulStop:
    """Installs the signal handling of a runner; `finished()` once the process is done."""

    def __init__(
        self,
        request_stop: Callable[[], None],
        *,
        grace: float,
        exit_code: int,
        log: logging.Logger,
        prog: str = "xsync",
    ) -> None:
        self._request_stop = request_stop
        self._grace = grace
        self._exit_code = exit_code
        self._log = log
        self._prog = prog
        self._lock = threading.Lock()
        self._done = False
        self._signalled = threading.Event()
        self._reader, self._writer = socket.socketpair()
        self._previous_fd = -1

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (call from the main thread)."""
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in _SIGNALS:
            # A no-op at Python level: the wakeup fd carries the news to the watcher thread.
            signal.signal(signum, _ignore)
        threading.Thread(target=self._watch, name="xsync-signals", daemon=True).start()

    @property
    def stop_requested(self) -> bool:
        return self._signalled.is_set()

    def finished(self) -> None:
        """The process is done: a grace period running out now abandons nothing."""
        with self._lock:
            self._done = True
        try:
            signal.set_wakeup_fd(self._previous_fd)
        except ValueError:
            pass  # not the main thread; the process is ending anyway

    def _watch(self) -> None:
        while True:
            try:
                data = self._reader.recv(64)
            except OSError:
                return
            signals = [s for s in data if s in {int(n) for n in _SIGNALS}]
            if not signals:
                continue
            if self._signalled.is_set():
                self._abandon(f"a second {signal.Signals(signals[0]).name} came")
                return
            self._signalled.set()
            self._log.info(
                "stopping: letting the steps in flight finish",
                extra={"signal": signal.Signals(signals[0]).name, "grace_seconds": self._grace},
            )
            self._request_stop()
            threading.Thread(target=self._grace_timer, name="xsync-grace", daemon=True).start()

    def _grace_timer(self) -> None:
        threading.Event().wait(self._grace)
        self._abandon(f"the {self._grace:g} s grace period (stop_grace_seconds) is over")

    def _abandon(self, why: str) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            calls = in_flight()
            names = ", ".join(
                f"{c.what} (running {c.seconds():.0f} s)" for c in calls[:_NAMED_CALLS]
            )
            more = f" and {len(calls) - _NAMED_CALLS} more" if len(calls) > _NAMED_CALLS else ""
            running = f": {names}{more}" if calls else ""
            message = f"stopped: {why}; work in flight was abandoned{running}"
            self._log.error(message, extra={"abandoned": len(calls)})
            for handler in self._log.handlers:
                handler.flush()
            if not _logs_to_stderr(self._log):
                print(f"{self._prog}: {message}", file=sys.stderr, flush=True)
            # Threads stuck in user code cannot be ended any other way.
            os._exit(self._exit_code)


def _logs_to_stderr(log: logging.Logger) -> bool:
    return any(getattr(handler, "stream", None) is sys.stderr for handler in log.handlers)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    pass
