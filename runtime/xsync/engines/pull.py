"""The pull-step scheduler: runs each pull step on its own `requested_interval`.

XOS runs every pull step every 5 s whatever it asks for, and an exception while creating a
step instance kills its scheduler for good (reference sections 8.1 and 11, item 27). Here each
step has its own due time, a fresh instance per run (`Step(model_accessor=..., log=...)`), and
anything the step raises, in its constructor or in `pull_records`, is logged and costs that
run only. Steps run one after another in the calling thread: `run_due()` for the passes of
`xsync run --once` / `--until-idle`, or a background thread (`start`/`stop`) in the
long-running mode. Saves go through the synchronizer accessor, so they are synchronizer saves.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..bounded import call_user_code, time_limit
from ..observability import LOGGER_NAME
from ..authoring import PullStep
from ..backend_state import exception_message

MonotonicClock = Callable[[], float]
# The shortest interval honoured, so that a step asking for 0 cannot spin a core.
MIN_INTERVAL = 0.01
DEFAULT_PULL_TIMEOUT = 300.0
GATE_RECHECK = 0.2


@dataclass(frozen=True, slots=True)
class PullRun:
    """One run of one pull step."""

    step: str
    ok: bool
    seconds: float
    error: str | None = None


class PullScheduler:
    """Keeps the due time of every pull step and runs the ones whose time has come."""

    def __init__(
        self,
        steps: Sequence[type[PullStep]],
        *,
        accessor: Any,
        clock: MonotonicClock = time.monotonic,
        log: logging.Logger | None = None,
        timeout: float = DEFAULT_PULL_TIMEOUT,
    ) -> None:
        self.steps = list(dict.fromkeys(steps))
        # Each run gets the step's `timeout_seconds`, else this many seconds.
        self.timeout = timeout
        self.accessor = accessor
        self.clock = clock
        self.log = log or logging.getLogger(LOGGER_NAME).getChild("pull")
        # Every step is due at once: the first run happens at start-up, then on its interval.
        self._due: dict[type[PullStep], float] = {step: float("-inf") for step in self.steps}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # With several runners, the background loop runs steps only while this says so (the
        # runner leads); it asks again every `GATE_RECHECK` seconds meanwhile.
        self.gate: Callable[[], bool] | None = None

    def run_due(self) -> list[PullRun]:
        """Run every step that is due now, in load order; schedule each one's next run."""
        runs: list[PullRun] = []
        for step in self.steps:
            if self._stop.is_set():
                break
            if self._due[step] <= self.clock():
                runs.append(self._run(step))
                # From the end of the run: a slow step does not queue runs behind itself.
                self._due[step] = self.clock() + interval_of(step)
        return runs

    def next_due(self) -> float | None:
        """The clock reading at which the next step is due (None without steps)."""
        return min(self._due.values(), default=None)

    def start(self) -> None:
        """Run the steps on their intervals in a daemon thread until `stop()`."""
        if self._thread is not None or not self.steps:
            return
        self._thread = threading.Thread(target=self._loop, name="xsync-pull", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Start no further run; True when a run in progress finished within `timeout`."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.gate is not None and not self.gate():
                self._stop.wait(GATE_RECHECK)
                continue
            try:
                self.run_due()
            except Exception as exc:  # noqa: BLE001 - the scheduler must outlive anything
                self.log.error("pull scheduler error", extra={"error": exception_message(exc)})
            due = self.next_due()
            wait = 1.0 if due is None else max(MIN_INTERVAL, due - self.clock())
            self._stop.wait(wait)

    def _run(self, step: type[PullStep]) -> PullRun:
        started = time.perf_counter()

        def pull() -> None:
            # The constructor is user code too: inside the limit (XOS lost its scheduler here).
            step(model_accessor=self.accessor, log=self.log.getChild(step.__name__)).pull_records()

        try:
            call_user_code(
                pull, seconds=time_limit(step, self.timeout), what=f"{step.__name__}.pull_records"
            )
        except Exception as exc:
            message = exception_message(exc)
            seconds = time.perf_counter() - started
            self.log.error(
                "pull step failed",
                extra={"step": step.__name__, "error": f"{type(exc).__name__}: {message}"},
            )
            return PullRun(step.__name__, False, seconds, message)
        seconds = time.perf_counter() - started
        self.log.debug("pull step done", extra={"step": step.__name__, "seconds": seconds})
        return PullRun(step.__name__, True, seconds)


def interval_of(step: type[PullStep]) -> float:
    """The step's `requested_interval` in seconds, or the default for an unusable value."""
    value = getattr(step, "requested_interval", PullStep.requested_interval)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return PullStep.requested_interval
    return max(MIN_INTERVAL, float(value))
