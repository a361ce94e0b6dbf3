"""Several runners of one synchronizer: object leases (`Claims`) and one leader (`Leadership`).

Runners share a synchronizer's work through leases kept in the store (`store.leases`, see
`xsync.store.leases` for the tables and why leases are rows). Each runner plans its pass as a
single runner would; its executor then runs only the objects it managed to claim, a batch
per round trip, and skips the rest for this pass. A background thread renews the leases
held; finished objects are released with the next claim. A runner that dies stops renewing,
and its objects are taken over once their leases end.

What must run once (model policies, pull steps, the reaper) runs in the leader only: the
runner holding the synchronizer's leader lease, renewed in the background; when the leader
dies another runner takes the lease over within `lease_seconds`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Callable, Iterable, Protocol, Sequence

from .backend_state import exception_message
from .observability import LOGGER_NAME, Metrics

DEFAULT_LEASE_SECONDS = 15.0
# Renew when a third of the lease is gone: two renewals may fail before a lease ends.
RENEW_FRACTION = 3.0
# Lease rows that ended this long ago are deleted (by the leader, at most once a minute): far
# longer than any runner works on one read of its objects (at most a lease time after it).
FORGET_AFTER_SECONDS = 3600.0
FORGET_EVERY_SECONDS = 60.0


class Leases(Protocol):
    """What a store offers for leases (`SqlStore.leases`, `RemoteStore.leases`)."""

    def clock(self) -> float: ...

    def claim(
        self,
        owner: str,
        holder: str,
        ids: Sequence[int],
        *,
        seen_at: float,
        lease_seconds: float,
        release: Sequence[int] = (),
    ) -> list[int]: ...

    def renew(self, owner: str, holder: str, lease_seconds: float) -> int: ...

    def release_all(self, owner: str, holder: str) -> int: ...

    def holders(self, owner: str) -> dict[str, int]: ...

    def lead(self, owner: str, holder: str, lease_seconds: float) -> bool: ...

    def leader(self, owner: str) -> str | None: ...

    def resign(self, owner: str, holder: str) -> None: ...

    def forget_ended(self, owner: str, age_seconds: float) -> int: ...


def runner_id() -> str:
    """This runner's name in the lease tables: host, pid and a few random hex digits."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class _Renewal:
    """A daemon thread calling `renew` every `period` seconds until stopped."""

    def __init__(self, name: str, period: float, renew: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self._period = period
        self._renew = renew
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            self._renew()


class Claims:
    """This runner's object leases for the synchronizer `owner`."""

    def __init__(
        self,
        leases: Leases,
        owner: str,
        *,
        holder: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        log: logging.Logger | None = None,
    ) -> None:
        self.leases = leases
        self.owner = owner
        self.holder = holder or runner_id()
        self.lease_seconds = lease_seconds
        self.log = log or logging.getLogger(LOGGER_NAME)
        self._lock = threading.Lock()
        self._finished: list[int] = []  # released with the next claim (or `flush`)
        self._held: set[int] = set()  # claimed, not finished yet
        self._seen_at = 0.0
        # Until when (monotonic) the leases held are surely live: from the last claim or renewal.
        self._live_until = 0.0
        self._renewal = _Renewal("xsync-leases", lease_seconds / RENEW_FRACTION, self._renew)
        self._renew_failing = False
        self._started = False
        self._forgotten_at: float | None = None  # monotonic

    def start(self) -> None:
        self._started = True
        self._renewal.start()

    def stop(self) -> None:
        """Stop renewing and end every lease held, so other runners need not wait for them."""
        if not self._started:
            return  # never worked (`xsync status`): holds nothing
        self._renewal.stop()
        try:
            self.flush()
            self.leases.release_all(self.owner, self.holder)
        except Exception as exc:  # noqa: BLE001 - the leases then end by themselves
            self.log.warning(
                "could not release the leases; they end in lease_seconds",
                extra={"error": exception_message(exc)},
            )

    def begin_read(self) -> None:
        """Note the store's time before a pass reads its objects (see `store.leases`)."""
        self._seen_at = self.leases.clock()

    def claim(self, ids: Iterable[int]) -> set[int]:
        """Take the leases of `ids` that are free; the ids taken. One round trip."""
        started = time.monotonic()
        with self._lock:
            release, self._finished = self._finished, []
        taken = self._send(list(ids), release)
        if taken:
            self._live_until = started + self.lease_seconds
            with self._lock:
                self._held.update(taken)
        return set(taken)

    def finished(self, object_id: int) -> None:
        """`object_id` is done: its lease goes back with the next claim."""
        with self._lock:
            self._held.discard(object_id)
            self._finished.append(object_id)

    def flush(self) -> None:
        """Release the finished objects now, and any claimed but never started (end of a pass)."""
        with self._lock:
            release, self._finished = [*self._finished, *self._held], []
            self._held = set()
        if release:
            self._send([], release)

    def _send(self, wanted: list[int], release: list[int]) -> list[int]:
        """Claim `wanted` and give up `release` in one round trip; the ids taken."""
        try:
            return self.leases.claim(
                self.owner,
                self.holder,
                wanted,
                seen_at=self._seen_at,
                lease_seconds=self.lease_seconds,
                release=release,
            )
        except BaseException:
            # Kept for the next claim: a lease never released is renewed for as long as we run.
            with self._lock:
                self._finished.extend(release)
            raise

    def forget_ended(self) -> int:
        """Delete long-ended lease rows of this synchronizer (the leader's chore; at most once
        a minute, else a no-op); how many went. A failure is logged: the rows only wait."""
        now = time.monotonic()
        if self._forgotten_at is not None and now - self._forgotten_at < FORGET_EVERY_SECONDS:
            return 0
        self._forgotten_at = now
        age = max(FORGET_AFTER_SECONDS, 100 * self.lease_seconds)
        try:
            return self.leases.forget_ended(self.owner, age)
        except Exception as exc:  # noqa: BLE001 - housekeeping; tried again in a minute
            self.log.warning(
                "could not delete ended leases", extra={"error": exception_message(exc)}
            )
            return 0

    def live(self) -> bool:
        """Whether the leases held are surely still ours (renewals have not been failing)."""
        return time.monotonic() < self._live_until

    def _renew(self) -> None:
        started = time.monotonic()
        try:
            self.leases.renew(self.owner, self.holder, self.lease_seconds)
        except Exception as exc:  # noqa: BLE001 - said once; the objects stop starting
            if not self._renew_failing:
                self.log.warning(
                    "renewing the object leases failed", extra={"error": exception_message(exc)}
                )
            self._renew_failing = True
            return
        self._renew_failing = False
        self._live_until = started + self.lease_seconds


class Leadership:
    """Whether this runner leads the synchronizer `owner`: kept by a background renewal."""

    def __init__(
        self,
        leases: Leases,
        owner: str,
        holder: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        log: logging.Logger | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.leases = leases
        self.owner = owner
        self.holder = holder
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        self.log = log or logging.getLogger(LOGGER_NAME)
        self._leads_until = 0.0  # monotonic
        self._leading = False
        self._lock = threading.Lock()
        self._renewal = _Renewal("xsync-leader", lease_seconds / RENEW_FRACTION, self.refresh)

    def start(self) -> None:
        self.refresh()
        self._renewal.start()

    def stop(self) -> None:
        self._renewal.stop()
        if self._leading:
            try:
                self.leases.resign(self.owner, self.holder)
            except Exception as exc:  # noqa: BLE001 - the lease then ends by itself
                self.log.warning(
                    "could not give up the leadership; it ends in lease_seconds",
                    extra={"error": exception_message(exc)},
                )
            self._leading = False

    def is_leader(self) -> bool:
        """True while this runner surely holds the leader lease."""
        return self._leading and time.monotonic() < self._leads_until

    def refresh(self) -> None:
        """Take or renew the leader lease (called by the renewal thread)."""
        with self._lock:
            started = time.monotonic()
            try:
                leads = self.leases.lead(self.owner, self.holder, self.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - the lease ends by itself meanwhile
                self.log.warning(
                    "renewing the leader lease failed", extra={"error": exception_message(exc)}
                )
                return
            if leads:
                # A margin of one renewal period: stop leading before the lease can end.
                self._leads_until = started + self.lease_seconds * (1 - 1 / RENEW_FRACTION)
            if leads != self._leading:
                self.log.info(
                    (
                        "leading: policies, pull steps and the reaper run here"
                        if leads
                        else "not leading: another runner runs policies, pull steps and the reaper"
                    ),
                    extra={"runner": self.holder},
                )
            self._leading = leads
            if self.metrics is not None:
                self.metrics.set_leader(leads)
