"""A runner whose core is down at start waits for it: in a deployment, pods start in any order.

Only an unreachable core is waited for. Refused credentials, a failed TLS handshake (a wrong
certificate, CA or name: the core is up and said no) and anything else the core answers are
settings to fix, and still end the start at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator

from .backoff import CORE_WAIT, Register, RetryBook
from .store.base import Store, Unavailable

# How often the waiting thread looks at whether a signal came: the bound on stopping.
_POLL_SECONDS = 0.1
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(Exception):
    """SIGTERM or SIGINT came while the runner waited for its core."""


class CoreWait:
    """Asks the core at `endpoint` until it answers, logging one line per cause of failure.

    `limit` bounds the wait in seconds (None: until it answers or a signal comes).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        log: logging.Logger,
        limit: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.limit = limit
        self._log = log
        # A plain flag, set by the signal handler: setting an Event there could wait forever
        # on a lock the interrupted main thread holds.
        self._stopping = False

    def until_answered(self, store: Store) -> None:
        """Return once `store` answers; raise what waiting cannot fix as it came, the last
        `Unavailable` once `limit` has passed, and `StopRequested` on SIGTERM or SIGINT."""
        from .grpc.client import CoreUnreachable, TlsRefused

        started = time.monotonic()
        book = RetryBook(CORE_WAIT, clock=time.monotonic)
        tries = Register()
        cause: str | None = None
        with self._signals_stop():
            while True:
                try:
                    self._ask(store)
                except TlsRefused:
                    raise
                except Unavailable as exc:
                    waited = time.monotonic() - started
                    if self.limit is not None and waited >= self.limit:
                        raise Unavailable(
                            f"{exc}; still down after {waited:.0f} s (accessor.wait_seconds)"
                        ) from None
                    reason = exc.reason if isinstance(exc, CoreUnreachable) else str(exc)
                    cause = self._note(reason, cause)
                    tries = book.after_failure(tries)
                    self._sleep(book.seconds_until_due(tries), started)
                    continue
                if cause is not None:
                    self._log.info(
                        f"the core at {self.endpoint} answers; starting",
                        extra={"waited_seconds": round(time.monotonic() - started, 1)},
                    )
                return

    def _ask(self, store: Store) -> None:
        """`store.model_names()`, given up on at once when a signal comes.

        The call runs on a thread of its own: an address that drops packets holds it for
        the connect timeout (20 s), far longer than a stop may take.
        """
        failure: list[BaseException] = []
        answered = threading.Event()

        def ask() -> None:
            try:
                store.model_names()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                failure.append(exc)
            finally:
                answered.set()

        threading.Thread(target=ask, name="xsync-core-wait", daemon=True).start()
        while not answered.wait(_POLL_SECONDS):
            self._check_stop()
        if failure:
            raise failure[0]

    def _note(self, cause: str, last: str | None) -> str:
        """Log `cause` when it is not the `last` one logged; the cause now."""
        if cause != last:
            self._log.warning(
                f"waiting for the core at {self.endpoint}: {cause}",
                extra={"endpoint": self.endpoint},
            )
        return cause

    def _sleep(self, seconds: float, started: float) -> None:
        if self.limit is not None:
            seconds = min(seconds, max(0.0, started + self.limit - time.monotonic()))
        deadline = time.monotonic() + seconds
        while True:
            self._check_stop()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _POLL_SECONDS))

    def _check_stop(self) -> None:
        if self._stopping:
            raise StopRequested(f"stopped while waiting for the core at {self.endpoint}")

    @contextmanager
    def _signals_stop(self) -> Iterator[None]:
        """SIGTERM and SIGINT end the wait while it lasts; the handlers before are restored."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals are the main thread's; a caller elsewhere stops by other means
            return
        previous: dict[signal.Signals, Any] = {}

        def stop(_signum: int, _frame: FrameType | None) -> None:
            self._stopping = True  # the waiting thread looks at it between short waits

        for signum in _SIGNALS:
            previous[signum] = signal.signal(signum, stop)
        try:
            yield
        finally:
            for restored, handler in previous.items():
                signal.signal(restored, handler)
