"""Run a plan on a bounded pool of workers, holding back the dependents of what fails.

Workers share one lock-protected ready list: a worker that finishes an object releases the
objects waiting for it and picks the next ready one itself, so there is no coordinator
thread to hand work through. Each key is handed out exactly once, so no object is ever in
two workers at the same time.

Two optional hooks let the caller batch its store writes. `prepare` is handed batches of
ready objects before any of them runs (leases are taken, marks saved, in one round trip per
batch). `settle` buffers outcomes: an object that synced releases its dependents only once
its outcome is saved, so a dependent never starts before what it waits for is on record.
A worker writes the buffer when it is due (its size or its age) or when nothing else can
start until it is written.

With a `supervisor`, workers run user code on their own threads (`bounded.Watched`) and the
calling thread watches the deadlines instead of working: an object whose call overruns is
settled by the supervisor and its worker replaced, so a hung step never stalls the pass.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Protocol

from .bounded import TakenOver
from .planner import Key, Plan


class Outcome(Enum):
    """What happened to one object in a pass."""

    SYNCED = "synced"
    FAILED = "failed"
    DEFERRED = "deferred"
    HELD = "held"  # not run: something it waits for failed, deferred or is backing off
    SKIPPED = "skipped"  # not runnable this pass (backing off)
    ELSEWHERE = "elsewhere"  # not run: another runner holds its lease (see `claims`)


class StopFlag(Protocol):
    """Checked between objects: once set, nothing new starts (a `threading.Event` is one)."""

    def is_set(self) -> bool: ...


# Runs one object; returns SYNCED, FAILED or DEFERRED. It must not raise: the caller turns
# exceptions from user code into outcomes. Anything that still escapes counts as FAILED.
RunOne = Callable[[Key], Outcome]
# Readies a batch of ready objects before they run; returns those that may run (see `claims`).
# The others are not run in this pass: another runner has them.
Prepare = Callable[[list[Key]], set[Key]]


# A call running this long, with objects ready, brings another worker (up to max_workers).
SLOW_CALL_SECONDS = 0.002
RAMP_CHECK_SECONDS = 0.002
# Checks that find every call quick come ever less often, up to this interval: each check
# takes the interpreter lock from a worker busy with quick calls (at every 2 ms, a pass of
# no-op steps ran 18 % slower with 4 workers allowed than with 1).
RAMP_CHECK_MAX_SECONDS = 0.064


class Supervisor(Protocol):
    """Deadlines of the calls the workers are in (see the module's docstring)."""

    def next_deadline(self) -> float | None:
        """The earliest deadline (`time.monotonic()`) of a call running now."""
        ...

    def overdue(self) -> list[Key]:
        """Objects whose call is running past its deadline."""
        ...

    def take_over(self, key: Key) -> Outcome | None:
        """Settle `key`'s overrunning call: its outcome, or None if it returned meanwhile."""
        ...

    def longest_call(self) -> float:
        """Seconds the oldest call running now has run (0 when none is)."""
        ...


class Settle(Protocol):
    """The caller's buffer of outcome writes (see the module's docstring)."""

    def due(self) -> bool:
        """Whether the buffered writes should be saved now (enough of them, or old enough)."""
        ...

    def flush(self) -> set[Key]:
        """Save every buffered write; returns the keys whose write failed. Must not raise."""
        ...


@dataclass(slots=True)
class Execution:
    """The outcome of every planned object, and for held objects what they wait for."""

    outcomes: dict[Key, Outcome] = field(default_factory=dict)
    # held key -> the object that stopped it (itself held, failed, deferred or skipped)
    held_by: dict[Key, Key] = field(default_factory=dict)
    # Objects whose run raised out of RunOne: a bug in the engine, reported, never fatal.
    crashes: dict[Key, Exception] = field(default_factory=dict)

    def waits_for(self, key: Key) -> list[Key]:
        """The chain from `key`'s blocker down to the object that really failed."""
        chain: list[Key] = []
        current = self.held_by.get(key)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.held_by.get(current)
        return chain

    def root_cause(self, key: Key) -> Key | None:
        chain = self.waits_for(key)
        return chain[-1] if chain else None


def execute_plan(
    plan: Plan,
    run_one: RunOne,
    *,
    max_workers: int = 4,
    stop: StopFlag | None = None,
    prepare: Prepare | None = None,
    prepare_batch: int = 4,
    settle: Settle | None = None,
    supervisor: Supervisor | None = None,
) -> Execution:
    """Run every runnable object of `plan` after the objects it waits for have synced.

    Blocks until every object has an outcome, or, once `stop` is set, until the objects
    already started have finished; objects never started then have no outcome. With
    `prepare`, an object runs only once prepared: a worker prepares up to `prepare_batch`
    ready objects at a time, and those refused end ELSEWHERE (their dependents HELD). With
    `settle`, the dependents of a synced object wait until its outcome is saved; one whose
    save failed counts as FAILED. The caller saves what is still buffered at the end. With
    `supervisor`, an overrunning object gets the outcome `take_over` gives it.
    """
    run = _Run(plan, run_one, stop, prepare, max(1, prepare_batch), settle, supervisor)
    return run.execute(max(1, max_workers))


class _Run:
    def __init__(
        self,
        plan: Plan,
        run_one: RunOne,
        stop: StopFlag | None,
        prepare: Prepare | None = None,
        prepare_batch: int = 4,
        settle: Settle | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.plan = plan
        self.supervisor = supervisor
        self.workers = 0  # worker threads at work (a taken-over one no longer counts)
        self.run_one = run_one
        self.prepare = prepare
        self.prepare_batch = prepare_batch
        self.prepared: set[Key] = set()
        self.settle = settle
        # Synced objects whose dependents wait for their outcome to be saved.
        self.unsettled: list[Key] = []
        self.settling = False
        self.stop = stop
        self.result = Execution()
        self.lock = threading.Lock()
        self.wakeup = threading.Condition(self.lock)
        # The supervisor's own: woken when a worker ends, not by the workers' hand-offs.
        self.watch = threading.Condition(self.lock)
        # Only keys with something to wait for: most objects of a large pass have nothing.
        self.waiting = {key: len(firsts) for key, firsts in plan.after.items() if firsts}
        self.ready: deque[Key] = deque()
        self.unfinished = len(plan.items)
        self.running = 0

    def execute(self, workers: int) -> Execution:
        with self.lock:
            for key in self.plan.order:
                if key not in self.waiting:
                    self._release(key)
            if self.prepare is not None and self.ready:
                # Runners sharing a plan start at different places in it, so that they seldom
                # ask for the same objects (each refusal costs a round trip).
                self.ready.rotate(random.randrange(len(self.ready)))
        if self.unfinished == 0:
            return self.result
        if self.supervisor is not None:
            # One worker to begin with; more as calls prove slow (see `_supervise`).
            self._start_worker()
            self._supervise(self.supervisor, workers)
            return self.result
        # The calling thread is one of the workers: with one worker nothing is started.
        threads = [
            threading.Thread(target=self._work, name=f"xsync-worker-{i}", daemon=True)
            for i in range(1, workers)
        ]
        for thread in threads:
            thread.start()
        self._work()
        for thread in threads:
            thread.join()
        return self.result

    def _release(self, key: Key) -> None:
        """`key` may start now (lock held): queue it, or settle it if it cannot run."""
        if self.plan.items[key].runnable:
            self.ready.append(key)
        else:
            self._finish(key, Outcome.SKIPPED)

    def _start_worker(self) -> None:
        with self.lock:
            self.workers += 1
        threading.Thread(target=self._supervised_work, name="xsync-worker", daemon=True).start()

    def _supervised_work(self) -> None:
        try:
            self._work()
        except TakenOver:
            return  # settled by the supervisor, which started another worker and counts it
        with self.lock:
            self.workers -= 1
            self.watch.notify()

    def _supervise(self, supervisor: Supervisor, most: int) -> None:
        """Until every worker is done: add workers (up to `most`) while calls are slow and
        objects wait, settle overrunning calls and replace their workers.

        Workers are added only when a call has run for `SLOW_CALL_SECONDS` with objects
        ready: a step that waits on something (a REST call) gets every worker it may have
        within milliseconds, while quick steps run on one thread, as more threads would only
        take turns at the interpreter lock."""
        ramp_check = RAMP_CHECK_SECONDS
        while True:
            with self.lock:
                if self.workers == 0:
                    return
                wanted = self.workers < most and bool(self.ready)
                wait = ramp_check if wanted else 0.25
                deadline = supervisor.next_deadline()
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()) + 0.001)
                self.watch.wait(wait)
                wanted = self.workers < most and bool(self.ready) and not self._stopping()
            if wanted:
                if supervisor.longest_call() >= SLOW_CALL_SECONDS:
                    self._start_worker()
                    ramp_check = RAMP_CHECK_SECONDS
                else:
                    ramp_check = min(ramp_check * 2, RAMP_CHECK_MAX_SECONDS)
            for key in supervisor.overdue():
                outcome = supervisor.take_over(key)
                if outcome is None:
                    continue
                with self.lock:
                    # Its worker is stuck in the call, and ends when the call returns.
                    self.workers -= 1
                    self.running -= 1
                    self._finish(key, outcome)
                    self.wakeup.notify_all()
                self._start_worker()

    def _work(self) -> None:
        # Waits are bounded: a stop request and a buffer growing old do not notify.
        bounded = self.stop is not None or self.settle is not None
        done: tuple[Key, Outcome] | None = None
        while True:
            settle_now = False
            # One pass through the lock both settles the object just run and takes the next:
            # with quick steps, the lock is what the workers contend for.
            with self.lock:
                if done is not None:
                    self.running -= 1
                    before = len(self.ready)
                    self._finish(*done)
                    done = None
                    released = len(self.ready) - before
                    if released > 1:
                        # This worker takes one of them itself.
                        self.wakeup.notify(released - 1)
                    settle_now = self._may_settle(urgent=False)
                while not settle_now:
                    if self.unfinished == 0 or self._stopping():
                        self.wakeup.notify_all()
                        return
                    if self.ready:
                        key = self.ready.popleft()
                        self.running += 1
                        break
                    if self._may_settle(urgent=bool(self.unsettled)):
                        # Nothing can start until the buffered outcomes are saved.
                        settle_now = True
                        break
                    self.wakeup.wait(0.25 if bounded else None)
            if settle_now:
                self._settle()
                continue
            if self.prepare is not None and key not in self.prepared and not self._prepared(key):
                continue
            done = (key, self._run_guarded(key))

    def _may_settle(self, *, urgent: bool) -> bool:
        """Whether this worker should save the buffered outcomes now (lock held); if so, it
        is the one settling until `_settle` returns."""
        if self.settle is None or self.settling:
            return False
        if not urgent and not self.settle.due():
            return False
        self.settling = True
        return True

    def _settle(self) -> None:
        """Save the buffered outcomes (lock not held), then release what waited for them."""
        assert self.settle is not None
        with self.lock:
            synced, self.unsettled = self.unsettled, []
        # Every key in `synced` had its outcome buffered before it finished, so this flush
        # saves it (and whatever else is buffered by now).
        failed = self.settle.flush()
        with self.lock:
            self.settling = False
            for key in synced:
                if key in failed:
                    self.result.outcomes[key] = Outcome.FAILED
                    self._hold_dependents(key)
                else:
                    self._release_dependents(key)
            self.wakeup.notify_all()

    def _prepared(self, key: Key) -> bool:
        """Prepare `key` with a batch of the ready objects behind it (lock not held); whether
        `key` may run. The batch's other prepared objects go back to the front of the queue."""
        assert self.prepare is not None
        with self.lock:
            batch = [key]
            while self.ready and len(batch) < self.prepare_batch:
                batch.append(self.ready.popleft())
        try:
            taken = self.prepare(batch)
        except Exception:  # noqa: BLE001 - the preparer reports; nothing runs unprepared
            taken = set()
        with self.lock:
            self.prepared.update(taken)
            for other in reversed(batch[1:]):
                if other in taken:
                    self.ready.appendleft(other)
            for lost in batch:
                if lost not in taken:
                    if lost == key:
                        self.running -= 1
                    self._finish(lost, Outcome.ELSEWHERE)
            self.wakeup.notify_all()
        return key in taken

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _run_guarded(self, key: Key) -> Outcome:
        try:
            return self.run_one(key)
        except Exception as exc:  # one object never stops the pass
            self.result.crashes[key] = exc
            return Outcome.FAILED

    def _finish(self, key: Key, outcome: Outcome) -> None:
        """Record `outcome` (lock held) and release or hold back what waited for `key`."""
        self.result.outcomes[key] = outcome
        self.unfinished -= 1
        if outcome is not Outcome.SYNCED:
            self._hold_dependents(key)
        elif self.settle is not None and self.plan.thens(key):
            self.unsettled.append(key)
        else:
            self._release_dependents(key)

    def _release_dependents(self, key: Key) -> None:
        for then in self.plan.thens(key):
            self.waiting[then] -= 1
            if self.waiting[then] == 0 and then not in self.result.outcomes:
                self._release(then)

    def _hold_dependents(self, failed: Key) -> None:
        stack = [failed]
        while stack:
            blocker = stack.pop()
            for then in self.plan.thens(blocker):
                if then in self.result.outcomes:
                    continue
                self.result.outcomes[then] = Outcome.HELD
                self.result.held_by[then] = blocker
                self.unfinished -= 1
                stack.append(then)
