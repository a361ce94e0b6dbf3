"""Calls into user code (steps, policies, pull and event handlers): bounded in time, contained.

Python cannot interrupt a thread, so a call with a time limit runs on a *lane*, a daemon thread
kept for reuse, while the caller waits for it. When the limit passes the caller gets
`StepTimeout` and goes on; the lane is abandoned to finish (or never finish) on its own, and,
being a daemon thread, never keeps the process from exiting. Whatever user code raises comes
back to the caller: an `Exception` as itself (so `DeferredException` still means deferred),
and a `BaseException` that is not one (`KeyboardInterrupt`, `SystemExit`, `GeneratorExit`)
as `StepAborted`, an ordinary failure of that object instead of the end of a worker thread.

`in_flight()` lists the calls running now, for the line a stopping runner logs when it
abandons them.

A hand-over to a lane and back costs two thread switches (30-40 us, more than a no-op step
itself). `Watched` calls user code on the caller's own thread instead, for callers that can be
supervised: the sync engine's workers, whose executor watches the deadlines. A call that
overruns is taken over (`take_over`): the supervisor settles its object as timed out and puts
a fresh worker in its place; when the call returns at last, its thread gets `TakenOver` and
ends without touching anything.
"""

from __future__ import annotations

import contextvars
import itertools
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Protocol, TypeVar

T = TypeVar("T")

# Idle lanes kept for reuse; more are started when needed, extra ones end when they are done.
_IDLE_LANES = 32
# An idle lane ends after this long without work, so a burst leaves no threads behind.
_LANE_IDLE_SECONDS = 60.0


class _Flag(Protocol):
    def is_set(self) -> bool: ...


class StepTimeout(Exception):
    """A call into user code did not return within its time limit; it was abandoned."""

    def __init__(self, seconds: float, finished: _Flag | None = None) -> None:
        self.seconds = seconds
        self._finished = finished
        super().__init__(f"timed out after {seconds:g} s")

    @property
    def still_running(self) -> bool:
        """Whether the abandoned call has still not returned."""
        return self._finished is not None and not self._finished.is_set()


class StepAborted(Exception):
    """User code raised a `BaseException` that is not an `Exception` (KeyboardInterrupt, ...)."""

    def __init__(self, raised: BaseException) -> None:
        self.raised = raised
        detail = f": {raised}" if str(raised) else ""
        super().__init__(f"{type(raised).__name__} raised by user code{detail}")
        self.__cause__ = raised


class TakenOver(BaseException):
    """Raised in a thread whose `Watched` call was taken over, once the call returns: the
    thread's work was settled by its supervisor and the thread must end quietly. Not an
    `Exception`, so that no handler of ordinary failures swallows it."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """A call into user code that is running now."""

    what: str
    started: float  # time.monotonic()

    def seconds(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


def call_user_code(function: Callable[..., T], *args: Any, seconds: float | None, what: str) -> T:
    """`function(*args)`, given at most `seconds` (None: no limit) to return.

    Raises `StepTimeout` when the time is up, `StepAborted` for a non-`Exception` raised by the
    call, and any `Exception` the call raised as it is. `what` names the call ("SyncPod.sync_record
    Pod 3") while it runs.
    """
    token = _registry.enter(what)
    try:
        if seconds is None:
            return _contained(function, args)
        job = _Job(function, args)
        _lanes.run(job)
        if not job.done.wait(seconds):
            job.abandoned = True
            raise StepTimeout(seconds, job.done)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]
    finally:
        _registry.leave(token)


def time_limit(user_class: type, default: float) -> float:
    """The time limit of one call into `user_class`: its own `timeout_seconds`, else `default`.

    The value is checked when the class is loaded (`time_limit_problem`).
    """
    own = getattr(user_class, "timeout_seconds", None)
    return default if own is None else float(own)


def time_limit_problem(user_class: type) -> str | None:
    """Why `user_class.timeout_seconds` is unusable (None when it is unset or a number > 0)."""
    own = getattr(user_class, "timeout_seconds", None)
    if own is None:
        return None
    if isinstance(own, bool) or not isinstance(own, (int, float)) or not 0 < own < math.inf:
        return f"{user_class.__name__}.timeout_seconds must be a number of seconds > 0, got {own!r}"
    return None


def in_flight() -> list[InFlight]:
    """Calls into user code running now, the oldest first (abandoned ones excluded)."""
    return _registry.snapshot()


def _contained(function: Callable[..., T], args: tuple[Any, ...]) -> T:
    try:
        return function(*args)
    except Exception:
        raise
    except BaseException as raised:  # noqa: BLE001 - user code must not end our threads
        raise StepAborted(raised) from raised


@dataclass(slots=True)
class _Job:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    # The caller's context variables (who saves, for one), so the lane runs as the caller would.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: Exception | None = None
    abandoned: bool = False

    def run(self) -> None:
        try:
            self.result = self.context.run(_contained, self.function, self.args)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            self.error = exc
        finally:
            self.done.set()


class _Lanes:
    """Daemon threads that run jobs; a lane whose job was abandoned never comes back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job | None]] = []
        self._numbers = itertools.count(1)

    def run(self, job: _Job) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._serve,
                args=(inbox,),
                name=f"xsync-user-{next(self._numbers)}",
                daemon=True,
            ).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            try:
                job = inbox.get(timeout=_LANE_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                continue  # handed a job just now: it is on its way
            if job is None:
                return
            job.run()
            if job.abandoned:
                return  # its caller has gone on; a fresh lane serves the next call
            with self._lock:
                if len(self._idle) < _IDLE_LANES:
                    self._idle.append(inbox)
                    continue
            return


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, InFlight] = {}
        self._tokens = itertools.count()

    def enter(self, what: str) -> int:
        token = next(self._tokens)
        with self._lock:
            self._calls[token] = InFlight(what, time.monotonic())
        return token

    def leave(self, token: int) -> None:
        with self._lock:
            self._calls.pop(token, None)

    def snapshot(self) -> list[InFlight]:
        with self._lock:
            return sorted(self._calls.values(), key=lambda call: call.started)


@dataclass(slots=True)
class _Watch:
    deadline: float  # time.monotonic()
    seconds: float
    token: int  # in the registry of calls in flight
    taken: bool = False
    returned: bool = False

    def is_set(self) -> bool:
        """Whether the call has returned (`StepTimeout.still_running` asks)."""
        return self.returned


class Watched:
    """Calls into user code on the caller's thread, with deadlines a supervisor enforces
    (see the module's docstring). Each call is known by an `owner` key, one call per owner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Watch] = {}

    def call(
        self, owner: Hashable, function: Callable[..., T], *args: Any, seconds: float, what: str
    ) -> T:
        """`function(*args)` on this thread; raises what it raises (a non-`Exception` as
        `StepAborted`), or `TakenOver` after it returns if it overran and was taken over."""
        watch = _Watch(time.monotonic() + seconds, seconds, _registry.enter(what))
        with self._lock:
            self._calls[owner] = watch
        try:
            return _contained(function, args)
        finally:
            with self._lock:
                taken = watch.taken
                if not taken:
                    del self._calls[owner]
            watch.returned = True
            if taken:
                raise TakenOver()  # noqa: B012 - the result belongs to nobody now
            _registry.leave(watch.token)

    def next_deadline(self) -> float | None:
        """The earliest deadline (monotonic) of the calls running, None when none is."""
        with self._lock:
            return min((w.deadline for w in self._calls.values()), default=None)

    def longest(self) -> float:
        """Seconds the oldest call running now has run (0 when none is)."""
        with self._lock:
            started = min((w.deadline - w.seconds for w in self._calls.values()), default=None)
        return 0.0 if started is None else time.monotonic() - started

    def overdue(self) -> list[Hashable]:
        """Owners whose call is still running past its deadline."""
        now = time.monotonic()
        with self._lock:
            return [owner for owner, w in self._calls.items() if w.deadline <= now]

    def take_over(self, owner: Hashable) -> StepTimeout | None:
        """Abandon `owner`'s call if it is still running: the timeout to settle it with (None
        when it returned meanwhile). Its thread gets `TakenOver` when the call returns."""
        with self._lock:
            watch = self._calls.pop(owner, None)
            if watch is None:
                return None
            watch.taken = True
        _registry.leave(watch.token)
        return StepTimeout(watch.seconds, watch)


_lanes = _Lanes()
_registry = _Registry()
