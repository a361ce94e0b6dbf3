"""The one place that decides when a failing object may be retried.

XOS computes a linear delay and never reads it (reference section 5.7). Here the delay is
exponential, `min(base * 2**(failures-1), cap)` shortened by up to `jitter` of itself, and it
is enforced: the engine skips an object until `next_run` has passed. The bookkeeping lives in
the object's `backend_register` JSON so that it survives restarts and other tools can show it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

Clock = Callable[[], float]
Rand = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait after the n-th consecutive failure.

    `jitter` is the largest fraction of the delay that may be taken off at random, so that
    objects that failed together do not all retry in the same instant; the cap is never exceeded.
    """

    base_seconds: float = 1.0
    cap_seconds: float = 600.0
    jitter: float = 0.2

    def delay(self, failures: int, rand: Rand = random.random) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (failures >= 1)."""
        if failures < 1:
            return 0.0
        # 2**n overflows a float long before it matters; the cap wins far earlier.
        exponent = min(failures - 1, 64)
        full = min(self.base_seconds * 2.0**exponent, self.cap_seconds)
        return full * (1.0 - self.jitter * rand())


@dataclass(frozen=True, slots=True)
class Register:
    """The backoff state kept in `backend_register`."""

    failures: int = 0
    next_run: float = 0.0
    last_failure: float = 0.0
    last_success: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> Register:
        """Read a register; anything unreadable (the model default is "{}") is a fresh one."""
        try:
            data = json.loads(text) if text else {}
        except (TypeError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        return cls(
            failures=_as_int(data.get("failures")),
            next_run=_as_float(data.get("next_run")),
            last_failure=_as_float(data.get("last_failure")),
            last_success=_as_float(data.get("last_success")),
        )

    def to_json(self) -> str:
        # `exponent` is what XOS's get_backend_details() shows; keep it for that reader.
        data: dict[str, Any] = {
            "failures": self.failures,
            "exponent": self.failures,
            "next_run": self.next_run,
            "last_failure": self.last_failure,
            "last_success": self.last_success,
        }
        return json.dumps(data, sort_keys=True)

    def is_due(self, now: float) -> bool:
        """True when the object may be tried now."""
        return self.next_run <= now

    def after_failure(
        self, policy: BackoffPolicy, now: float, rand: Rand = random.random
    ) -> Register:
        failures = self.failures + 1
        return replace(
            self,
            failures=failures,
            next_run=now + policy.delay(failures, rand),
            last_failure=now,
        )

    def after_success(self, now: float) -> Register:
        return Register(failures=0, next_run=0.0, last_failure=self.last_failure, last_success=now)


def wall_clock() -> float:
    return time.time()


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _as_float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
