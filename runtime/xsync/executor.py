"""Run a plan on a bounded pool of workers, holding back the dependents of what fails.

Workers share one lock-protected ready list: a worker that finishes an object releases the
objects waiting for it and picks the next ready one itself, so there is no coordinator
thread to hand work through. Each key is handed out exactly once, so no object is ever in
two workers at the same time.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Protocol

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
# Takes the leases of a batch of ready objects; returns those taken (see `claims`). The others
# are not run in this pass: another runner has them.
Claim = Callable[[list[Key]], set[Key]]


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
    claim: Claim | None = None,
    claim_batch: int = 4,
) -> Execution:
    """Run every runnable object of `plan` after the objects it waits for have synced.

    Blocks until every object has an outcome, or, once `stop` is set, until the objects
    already started have finished; objects never started then have no outcome. With
    `claim`, an object runs only once claimed: a worker claims up to `claim_batch` ready
    objects at a time, and those it cannot claim end ELSEWHERE (their dependents HELD).
    """
    return _Run(plan, run_one, stop, claim, max(1, claim_batch)).execute(max(1, max_workers))


class _Run:
    def __init__(
        self,
        plan: Plan,
        run_one: RunOne,
        stop: StopFlag | None,
        claim: Claim | None = None,
        claim_batch: int = 4,
    ) -> None:
        self.plan = plan
        self.run_one = run_one
        self.claim = claim
        self.claim_batch = claim_batch
        self.claimed: set[Key] = set()
        self.stop = stop
        self.result = Execution()
        self.lock = threading.Lock()
        self.wakeup = threading.Condition(self.lock)
        self.waiting = {key: len(firsts) for key, firsts in plan.after.items()}
        self.ready: deque[Key] = deque()
        self.unfinished = len(plan.items)
        self.running = 0

    def execute(self, workers: int) -> Execution:
        with self.lock:
            for key in self.plan.order:
                if self.waiting[key] == 0:
                    self._release(key)
            if self.claim is not None and self.ready:
                # Runners sharing a plan start at different places in it, so that they seldom
                # ask for the same objects (each refusal costs a round trip).
                self.ready.rotate(random.randrange(len(self.ready)))
        if self.unfinished == 0:
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

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.ready and self.unfinished > 0 and not self._stopping():
                    # Bounded wait: a stop request does not notify the condition.
                    self.wakeup.wait(0.25 if self.stop is not None else None)
                if self.unfinished == 0 or self._stopping():
                    self.wakeup.notify_all()
                    return
                key = self.ready.popleft()
                self.running += 1
            if self.claim is not None and key not in self.claimed and not self._claimed(key):
                continue
            outcome = self._run_guarded(key)
            with self.lock:
                self.running -= 1
                before = len(self.ready)
                self._finish(key, outcome)
                if len(self.ready) > before + 1 or self.unfinished == 0:
                    self.wakeup.notify_all()
                elif len(self.ready) > before:
                    self.wakeup.notify()

    def _claimed(self, key: Key) -> bool:
        """Claim `key` with a batch of the ready objects behind it (lock not held); whether
        `key` is ours. The batch's other claimed objects go back to the front of the queue."""
        assert self.claim is not None
        with self.lock:
            batch = [key]
            while self.ready and len(batch) < self.claim_batch:
                batch.append(self.ready.popleft())
        try:
            taken = self.claim(batch)
        except Exception:  # noqa: BLE001 - the claimer reports; nothing is run unclaimed
            taken = set()
        with self.lock:
            self.claimed.update(taken)
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
        if outcome is Outcome.SYNCED:
            for then in self.plan.before[key]:
                self.waiting[then] -= 1
                if self.waiting[then] == 0 and then not in self.result.outcomes:
                    self._release(then)
        else:
            self._hold_dependents(key)

    def _hold_dependents(self, failed: Key) -> None:
        stack = [failed]
        while stack:
            blocker = stack.pop()
            for then in self.plan.before[blocker]:
                if then in self.result.outcomes:
                    continue
                self.result.outcomes[then] = Outcome.HELD
                self.result.held_by[then] = blocker
                self.unfinished -= 1
                stack.append(then)
