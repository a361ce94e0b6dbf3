"""The retry book: the one place that decides when something that failed may be tried again.

XOS computes a linear delay and never reads it (reference section 5.7). Here the delay is
exponential, `min(base * 2**(failures-1), cap)` shortened by up to `jitter` of itself, and it
is enforced. Every retry in the runtime goes through this module: objects of the sync engine
and the policy engine (their state persisted by `backend_state`), events an event step failed
on, and reconnects to the event bus. Each keeps a `Register` and asks a `RetryBook` what
follows a failure, a success or a "retry now", and whether it is due.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

Clock = Callable[[], float]
Rand = Callable[[], float]

# The defaults, for the config (`backoff_base_seconds`, `backoff_cap_seconds`) and the engines.
DEFAULT_BASE_SECONDS = 1.0
DEFAULT_CAP_SECONDS = 300.0
DEFAULT_JITTER = 0.2


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait after the n-th consecutive failure.

    `jitter` is the largest fraction of the delay that may be taken off at random, so that
    objects that failed together do not all retry in the same instant; the cap is never exceeded.
    """

    base_seconds: float = DEFAULT_BASE_SECONDS
    cap_seconds: float = DEFAULT_CAP_SECONDS
    jitter: float = DEFAULT_JITTER

    def delay(self, failures: int, rand: Rand = random.random) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (failures >= 1)."""
        if failures < 1:
            return 0.0
        # 2**n overflows a float long before it matters; the cap wins far earlier.
        exponent = min(failures - 1, 64)
        full = min(self.base_seconds * 2.0**exponent, self.cap_seconds)
        return full * (1.0 - self.jitter * rand())


# An event step gets an event this many times before the event is dropped, this far apart.
EVENT_ATTEMPTS = 3
EVENT_RETRY = BackoffPolicy(base_seconds=0.2, cap_seconds=2.0)
# A consumer that lost the event bus tries again this far apart.
RECONNECT = BackoffPolicy(base_seconds=0.5, cap_seconds=10.0)
# A runner whose core is down at start asks again this far apart: soon after the core is up.
CORE_WAIT = BackoffPolicy(base_seconds=0.25, cap_seconds=4.0)


@dataclass(frozen=True, slots=True)
class Register:
    """The retry state of one thing: consecutive failures and when it may run next.

    Times are on the clock of the `RetryBook` that wrote them: wall-clock seconds for objects
    (persisted by `backend_state`), monotonic seconds for the in-memory retries of the engines.
    """

    failures: int = 0
    next_run: float = 0.0
    last_failure: float = 0.0
    last_success: float = 0.0


def wall_clock() -> float:
    return time.time()


class RetryBook:
    """Decides, with one policy, clock and source of jitter, what a failure or success means."""

    def __init__(
        self,
        policy: BackoffPolicy = BackoffPolicy(),
        *,
        clock: Clock = wall_clock,
        rand: Rand = random.random,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.rand = rand

    def now(self) -> float:
        return self.clock()

    def is_due(self, register: Register, now: float | None = None) -> bool:
        """True when the thing may be tried now."""
        return self.is_due_at(register.next_run, now)

    def is_due_at(self, next_run: float, now: float | None = None) -> bool:
        """`is_due` of a register whose `next_run` is this."""
        return next_run <= (self.clock() if now is None else now)

    def after_failure(self, register: Register, now: float | None = None) -> Register:
        """One more consecutive failure: the next run moves out by the policy's delay."""
        at = self.clock() if now is None else now
        failures = register.failures + 1
        return replace(
            register,
            failures=failures,
            next_run=at + self.policy.delay(failures, self.rand),
            last_failure=at,
        )

    def after_success(self, register: Register, now: float | None = None) -> Register:
        """A success ends the run of failures; the last failure stays on record."""
        at = self.clock() if now is None else now
        return Register(last_failure=register.last_failure, last_success=at)

    @staticmethod
    def clear(register: Register) -> Register:
        """ "Retry now": due at once; the failures still count for the next delay."""
        return replace(register, next_run=0.0)

    def seconds_until_due(self, register: Register, now: float | None = None) -> float:
        return max(0.0, register.next_run - (self.clock() if now is None else now))


def earliest(times: Iterable[float | None]) -> float | None:
    """The earliest of the given times (None entries ignored); None when there is none."""
    found = [t for t in times if t is not None]
    return min(found) if found else None
