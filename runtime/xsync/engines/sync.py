"""One pass of the sync engine: fetch pending objects, plan, execute, save the results.

The sync pass runs dependencies first; the deletion pass runs dependents first and, once a
step's `delete_record` succeeds, purges the row (the embedded store has no other reaper).
All writes go through the `Store` with actor "synchronizer"; steps get objects.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .. import backend_state
from ..backoff import BackoffPolicy, Clock, Rand, RetryBook, earliest, wall_clock
from ..backend_state import exception_message, last_message
from ..claims import Claims
from ..bounded import StepTimeout, Watched, call_user_code, time_limit
from ..tracebacks import user_traceback
from ..executor import Execution, Outcome, execute_plan
from .outcomes import OutcomeBuffer
from ..observability import LOGGER_NAME, Metrics
from ..planner import Key, LinkFields, ModelDeps, PlanItem, plan_sync
from ..authoring import (
    DeferredException,
    InnocuousException,
    SyncStep,
    fetches_by_default,
    optional_hook,
)
from .policies import DELETE_HOLD_COLUMNS
from ..store.base import (
    STORE_DOWN,
    Actor,
    OutcomeWrite,
    PendingQuery,
    Record,
    Store,
    StoreError,
    Unavailable,
)

# Turns a store record of `model` into the object steps receive (an ORM object).
ObjectFactory = Callable[[str, Record], Any]
ACTOR: Actor = "synchronizer"
# Default time limit of one call into a step, when neither the config nor the step sets one.
DEFAULT_STEP_TIMEOUT = 300.0
# Outcomes saved in one transaction, and how long one may wait for its batch (see `outcomes`).
DEFAULT_OUTCOME_BATCH = 500
DEFAULT_OUTCOME_SECONDS = 0.2
# Ready objects prepared (claimed, marked) in one round trip, at least `max_workers`.
PREPARE_BATCH = 64
# Ids per query when the planner reads objects that are not pending (see `_resolver`).
RESOLVE_CHUNK = 500
# What a pass reads of a pending object before its batch runs (see `_Work`), with the
# object's link columns, each as `<field>_id` or `<field>_ids`.
SUMMARY_COLUMNS = ("leaf_model_name", "backend_register")
LINK_ENDINGS = ("_id", "_ids")


class RecordView:
    """A plain object over a store record: columns as attributes, `model_name` for the model.

    Used when no ORM is configured; an ORM object offers the same attributes and more.
    """

    def __init__(self, model: str, record: Record) -> None:
        self.__dict__.update(record)
        self.model_name = model

    def __repr__(self) -> str:
        return f"<{self.model_name} {self.__dict__.get('id')}>"


@dataclass(slots=True)
class PassReport:
    """What one pass did, for the runner and the tests."""

    outcomes: dict[Key, Outcome] = field(default_factory=dict)
    deletions: dict[Key, Outcome] = field(default_factory=dict)
    skipped_steps: list[str] = field(default_factory=list)  # fetch_pending raised
    next_retry: float | None = None  # earliest next_run of an object backing off
    seconds: float = 0.0
    reaped: int = 0  # deleted objects of models without a step, purged by the reaper
    # Objects not run because another runner held their lease (see `claims`).
    elsewhere: int = 0
    # The store stopped answering (or refused us) during the pass, which then ended early:
    # no object was failed for it, and nothing per object was logged.
    lost: StoreError | None = None

    @property
    def worked(self) -> int:
        """Objects whose step code ran (or that were purged) in this pass."""
        ran = (Outcome.SYNCED, Outcome.FAILED, Outcome.DEFERRED)
        done = sum(1 for o in [*self.outcomes.values(), *self.deletions.values()] if o in ran)
        return done + self.reaped


@dataclass(slots=True)
class _Work:
    """One pending object of a pass.

    The planner needs only an object's links and its register, read with the pending list
    (`_summaries`); the whole object (`obj`, what steps get) is read with the batch it runs
    in (`_load`) and let go once its outcome is recorded (`_done`), so a pass holds few
    whole objects at a time. An object a step's own `fetch_pending` gave is held whole all
    pass (`whole`).
    """

    model: str
    id: int
    steps: tuple[type[SyncStep], ...]
    links: tuple[Key, ...]
    # When its backoff lets it run again (0.0: now), from its `backend_register` as read
    # with the pending list.
    next_run: float
    deleting: bool = False
    obj: Any = None
    whole: bool = False
    # The newest entry of its status as this pass set it (failed, deferred): what the
    # objects held back by it cite.
    message: str | None = None


def _add_work(by_id: dict[int, _Work], work: _Work, leaf: object) -> None:
    """Record that `work.steps[0]` wants `work`; of several views of one object (a base
    model's and its own) keep the view of its own model, `leaf`."""
    entry = by_id.get(work.id)
    if entry is None:
        by_id[work.id] = work
        return
    steps = entry.steps if work.steps[0] in entry.steps else entry.steps + work.steps
    if work.model != entry.model and leaf == work.model:
        by_id[work.id] = entry = work
    entry.steps = steps


class SyncEngine:
    """Runs sync passes for a set of steps against a store. Safe to reuse across passes."""

    def __init__(
        self,
        store: Store,
        steps: Sequence[type[SyncStep]],
        model_deps: ModelDeps,
        *,
        wrap: ObjectFactory = RecordView,
        accessor: Any = None,
        max_workers: int = 4,
        backoff: BackoffPolicy = BackoffPolicy(),
        clock: Clock = wall_clock,
        rand: Rand | None = None,
        metrics: Metrics | None = None,
        log: logging.Logger | None = None,
        hold_deletion: Callable[[str, Any], bool] | None = None,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        claims: Claims | None = None,
        outcome_batch: int = DEFAULT_OUTCOME_BATCH,
        outcome_seconds: float = DEFAULT_OUTCOME_SECONDS,
    ) -> None:
        self.store = store
        self.outcome_batch = outcome_batch
        self.outcome_seconds = outcome_seconds
        # With several runners: objects run only under this runner's lease on them.
        self.claims = claims
        # Each call into a step gets the step's `timeout_seconds`, else this many seconds.
        self.step_timeout = step_timeout
        self.steps = list(steps)
        # True for a deleted object that must not be deleted or reaped yet (delete policies pending).
        self.hold_deletion = hold_deletion
        self.links = LinkFields.from_model_deps(model_deps)
        self.wrap = wrap
        self.accessor = accessor
        self.max_workers = max_workers
        self.retries = (
            RetryBook(backoff, clock=clock, rand=rand) if rand else RetryBook(backoff, clock=clock)
        )
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.log = log or logging.getLogger(LOGGER_NAME)
        self._reaches = _ModelReach(self.links)
        # Objects whose step call timed out: not run again while that call is still running.
        self._abandoned: dict[Key, StepTimeout] = {}
        # sync_record and delete_record run on the workers' own threads, under deadlines the
        # executor watches (see `bounded.Watched`); the objects being worked on, with their start.
        self._watched = Watched()
        self._in_progress: dict[Key, tuple[_Work, float]] = {}
        self._lost: StoreError | None = None  # set by the first worker that finds the store down
        self._outcomes = self._new_buffer()  # a fresh one per pass (see `_run`)
        self._columns: dict[tuple[str, bool], tuple[str, ...]] = {}  # see `_summary_columns`

    # --- the pass -----------------------------------------------------------------

    def run_pass(self, stop: threading.Event | None = None) -> PassReport:
        """The sync pass, then the deletion pass (unless `stop` was set meanwhile)."""
        started = time.perf_counter()
        report = PassReport()
        self._lost = None
        halt = _Halt(stop, self)
        report.outcomes = self._run(False, report, halt)
        if not halt.is_set():
            report.deletions = self._run(True, report, halt)
        report.lost = self._lost
        report.seconds = time.perf_counter() - started
        return report

    def _store_down(self, exc: StoreError) -> Outcome:
        """The store is gone: end the pass, leave the object as it is, say nothing about it."""
        if self._lost is None:
            self._lost = exc
        return Outcome.SKIPPED

    def _run(self, deletion: bool, report: PassReport, stop: _Halt) -> dict[Key, Outcome]:
        if self.claims is not None and not self._begin_read():
            return {}
        work = self._fetch(deletion, report)
        if self._lost is not None:
            return {}
        now = self.clock()
        key_of_id = {key[1]: key for key in work}
        items = [self._plan_item(key, w, now, report, key_of_id) for key, w in work.items()]
        self._publish_queue(work, items)
        resolve = None if deletion else self._resolver(items)
        plan = plan_sync(items, deletion=deletion, resolve=resolve)
        run_one = self._delete_one if deletion else self._sync_one
        self._outcomes = self._new_buffer()
        run = run_one if self.claims is None else partial(self._run_leased, run_one)
        # A plan is read once; a dead runner's objects can be taken over only by a plan read
        # after its leases ended. So with several runners a plan is worked on for at most a
        # lease time, then read afresh: a killed runner's objects are taken over within about
        # twice `lease_seconds`, however long the queue.
        execution = execute_plan(
            plan,
            lambda key: self._run_watched(run, work[key]),
            max_workers=self.max_workers,
            stop=stop if self.claims is None else stop.with_deadline(self.claims.lease_seconds),
            prepare=partial(self._prepare, work, deletion),
            prepare_batch=max(self.max_workers, PREPARE_BATCH),
            settle=self._outcomes,
            supervisor=_Supervision(self),
        )
        if self._lost is None:
            self._record_held(execution, work, deletion)
        self._outcomes.flush()
        if self.claims is not None:
            self._release_finished()
            for key, outcome in execution.outcomes.items():
                if outcome is Outcome.ELSEWHERE:
                    report.elsewhere += 1
                    self.metrics.observe_elsewhere(key[0])
        return execution.outcomes

    def _run_watched(self, run_one: Callable[[_Work], Outcome], work: _Work) -> Outcome:
        key = (work.model, work.id)
        entry = self._in_progress[key] = (work, time.perf_counter())
        try:
            return run_one(work)
        finally:
            # A call taken over may return after a later pass started the object afresh.
            if self._in_progress.get(key) is entry:
                del self._in_progress[key]

    def _take_over(self, key: Key) -> Outcome | None:
        """The executor found `key`'s step call overrunning: fail the object as timed out."""
        # The object first: a call taken over must be settled here, or its worker would end
        # with nobody recording the object's outcome.
        entry = self._in_progress.get(key)
        if entry is None:
            return None
        timed_out = self._watched.take_over(key)
        if timed_out is None:
            return None
        return self._failed(entry[0], timed_out, entry[1])

    def _new_buffer(self) -> OutcomeBuffer:
        return OutcomeBuffer(
            self.store,
            actor=ACTOR,
            size=self.outcome_batch,
            seconds=self.outcome_seconds,
            log=self.log,
            on_saved=self._outcomes_saved,
            on_store_down=self._store_down,
        )

    def _outcomes_saved(self, keys: list[Key]) -> None:
        # An object's lease goes only once its outcome is on record: before that, another
        # runner would find it still outdated and sync it again.
        if self.claims is not None:
            for key in keys:
                self.claims.finished(key[1])

    def _prepare(self, work: Mapping[Key, _Work], deletion: bool, keys: list[Key]) -> set[Key]:
        """Before a batch of objects runs: their leases (several runners), the objects read
        whole, then the mark that the backend may hold state for them, saved for the whole
        batch in one call."""
        taken = set(keys) if self.claims is None else self._claim(keys)
        loaded = self._load(work, [key for key in keys if key in taken], deletion)
        if self.claims is not None:
            for key in taken - loaded:
                self.claims.finished(key[1])
        taken = loaded
        if not deletion:
            self._mark([work[key] for key in keys if key in taken])
        return taken

    def _mark(self, batch: list[_Work]) -> None:
        """Save `backend_need_delete` before any step code runs for `batch`; an object this
        fails for is marked again by `_sync_one`, which fails it if that fails too."""
        unmarked = [w for w in batch if not getattr(w.obj, "backend_need_delete", False)]
        if not unmarked:
            return
        mark = {"backend_need_delete": True}
        try:
            results = self.store.write_outcomes(
                [OutcomeWrite(w.model, w.id, mark) for w in unmarked], actor=ACTOR
            )
        except STORE_DOWN as exc:
            self._store_down(exc)
            return
        except StoreError:
            return
        for w, error in zip(unmarked, results):
            if error is None:
                w.obj.backend_need_delete = True

    # --- leases (several runners) ------------------------------------------------------

    def _begin_read(self) -> bool:
        assert self.claims is not None
        try:
            self.claims.begin_read()
        except STORE_DOWN as exc:
            self._store_down(exc)
            return False
        except StoreError as exc:
            self._store_down(Unavailable(f"cannot read the store's clock: {exc}"))
            return False
        return True

    def _claim(self, keys: list[Key]) -> set[Key]:
        assert self.claims is not None
        try:
            taken = self.claims.claim(key[1] for key in keys)
        except STORE_DOWN as exc:
            self._store_down(exc)
            return set()
        except StoreError as exc:
            self.log.warning("claiming objects failed", extra={"error": exception_message(exc)})
            return set()
        return {key for key in keys if key[1] in taken}

    def _run_leased(self, run_one: Callable[[_Work], Outcome], work: _Work) -> Outcome:
        assert self.claims is not None
        try:
            if not self.claims.live():
                # The leases could not be renewed: another runner may have taken this one over.
                return Outcome.ELSEWHERE
            return run_one(work)
        finally:
            # Released with the next claim (a release touches only a lease still ours); one
            # whose outcome waits in the buffer goes once that is saved (`_outcomes_saved`).
            if not self._outcomes.holds((work.model, work.id)):
                self.claims.finished(work.id)

    def _release_finished(self) -> None:
        assert self.claims is not None
        try:
            self.claims.flush()
        except StoreError as exc:
            # The leases end by themselves after lease_seconds.
            self.log.warning("releasing leases failed", extra={"error": exception_message(exc)})

    def _fetch(self, deletion: bool, report: PassReport) -> dict[Key, _Work]:
        """Pending objects of every step, one entry per object (several steps may share it)."""
        by_id: dict[int, _Work] = {}
        for step_class in self.steps:
            try:
                if fetches_by_default(step_class):
                    found = self._summaries(step_class, deletion)
                else:
                    objects = self._call_step(step_class, "fetch_pending", deletion)
                    found = self._wholes(step_class, objects, deletion)
            except STORE_DOWN as exc:
                self._store_down(exc)
                return {}
            except Exception as exc:  # a broken fetch_pending costs its own step one pass, no more
                report.skipped_steps.append(step_class.__name__)
                self.log.error(
                    "fetch_pending failed; step skipped for this pass",
                    extra={
                        "step": step_class.__name__,
                        "deletion": deletion,
                        "error": exception_message(exc),
                    },
                )
                continue
            for work, leaf in found:
                _add_work(by_id, work, leaf)
        # Ids are unique across models, so an object fetched through a base model and through
        # its own model is one piece of work: keyed by its leaf model, run by both steps.
        return {(w.model, w.id): w for w in by_id.values()}

    def _summaries(self, step_class: type[SyncStep], deletion: bool) -> list[tuple[_Work, object]]:
        """The pending objects of the step's models, with only the columns a pass plans with."""
        query = PendingQuery.DELETED_OBJECTS if deletion else PendingQuery.DIRTY_OBJECTS
        steps = (step_class,)
        found: list[tuple[_Work, object]] = []
        for model in step_class.observed_model_names():
            columns = self._summary_columns(model, deletion)
            for record in self.store.pending(model, query, columns=columns):
                if deletion and self._held_for_policies(model, record):
                    continue
                links = self.links.links_of(model, record.get)
                next_run = backend_state.next_sync_run(record.get("backend_register"))
                work = _Work(model, record["id"], steps, links, next_run, deletion)
                found.append((work, record.get("leaf_model_name")))
        return found

    def _summary_columns(self, model: str, deletion: bool) -> tuple[str, ...]:
        columns = self._columns.get((model, deletion))
        if columns is None:
            links = [
                f"{name}{end}" for name, _ in self.links.for_model(model) for end in LINK_ENDINGS
            ]
            held = DELETE_HOLD_COLUMNS if deletion and self.hold_deletion is not None else ()
            columns = (*SUMMARY_COLUMNS, *links, *held)
            self._columns[(model, deletion)] = columns
        return columns

    def _held_for_policies(self, model: str, record: Record) -> bool:
        return self.hold_deletion is not None and self.hold_deletion(
            model, RecordView(model, record)
        )

    def _wholes(
        self, step_class: type[SyncStep], objects: Sequence[Any], deletion: bool
    ) -> list[tuple[_Work, object]]:
        """The objects a step's own `fetch_pending` gave, held whole all pass."""
        steps = (step_class,)
        found: list[tuple[_Work, object]] = []
        for obj in objects:
            model = _model_of(obj)
            if deletion and self.hold_deletion is not None and self.hold_deletion(model, obj):
                continue
            links = self.links.links_of(model, lambda name: getattr(obj, name, None))
            next_run = backend_state.next_sync_run(getattr(obj, "backend_register", None))
            work = _Work(model, int(obj.id), steps, links, next_run, deletion, obj, whole=True)
            found.append((work, getattr(obj, "leaf_model_name", None)))
        return found

    def _load(self, work: Mapping[Key, _Work], keys: list[Key], deletion: bool) -> set[Key]:
        """Read whole the objects of `keys` that are not yet, one query per model; the keys
        whose object is there (one deleted, undeleted or purged since the plan was read is
        not, and is left for the next pass)."""
        by_model: dict[str, list[int]] = {}
        for key in keys:
            if work[key].obj is None:
                by_model.setdefault(key[0], []).append(key[1])
        found = {key for key in keys if work[key].obj is not None}
        for model, ids in by_model.items():
            try:
                records = self.store.get_many(model, ids, deleted=deletion)
            except STORE_DOWN as exc:
                self._store_down(exc)
                break
            except StoreError as exc:
                self.log.warning(
                    "reading objects failed; left for the next pass",
                    extra={"model": model, "error": exception_message(exc)},
                )
                continue
            for record in records:
                entry = work[(model, record["id"])]
                entry.obj = self.wrap(model, record)
                found.add((model, entry.id))
        return found

    def _pending(self, models: Sequence[str], deleted: bool) -> list[Any]:
        """The default `fetch_pending`'s objects, whole (for a step that narrows them)."""
        query = PendingQuery.DELETED_OBJECTS if deleted else PendingQuery.DIRTY_OBJECTS
        return [
            self.wrap(model, record)
            for model in models
            for record in self.store.pending(model, query)
        ]

    def _plan_item(
        self, key: Key, work: _Work, now: float, report: PassReport, key_of_id: dict[int, Key]
    ) -> PlanItem:
        due = self.retries.is_due_at(work.next_run, now)
        if not due:
            report.next_retry = earliest((report.next_retry, work.next_run))
        # Its last call timed out and is still running: a second one would run beside it.
        due = due and not self._still_running(key)
        # A link names its peer's declared model (Service); the pending object may be a
        # subclass (VSGService) with the same id.
        links = tuple(key_of_id.get(peer_id) or (peer, peer_id) for peer, peer_id in work.links)
        work.links = ()  # the plan has them now
        return PlanItem(key, links, runnable=due)

    def _still_running(self, key: Key) -> bool:
        timed_out = self._abandoned.get(key)
        if timed_out is None:
            return False
        if timed_out.still_running:
            return True
        del self._abandoned[key]
        return False

    def _resolver(self, items: Sequence[PlanItem]) -> Callable[[Key], Sequence[Key] | None]:
        """Links of objects that are not pending, read only where they can lead to pending ones.

        They are read before planning, a level at a time (the objects pending ones link to,
        then the ones those link to, ...), one query per model and chunk of ids: never one
        query per object.
        """
        pending = {item.key for item in items}
        worth = self._reaches.models_reaching({key[0] for key in pending})
        known: dict[Key, Sequence[Key] | None] = {}

        def wanted(links: Sequence[Key]) -> set[Key]:
            return {k for k in links if k[0] in worth and k not in pending and k not in known}

        level = wanted([link for item in items for link in item.links])
        while level:
            by_model: dict[str, list[int]] = {}
            for model, id in sorted(level):
                by_model.setdefault(model, []).append(id)
            found: list[Key] = []
            for model, ids in by_model.items():
                for start in range(0, len(ids), RESOLVE_CHUNK):
                    chunk = ids[start : start + RESOLVE_CHUNK]
                    records = self._read_links(model, chunk)
                    for id in chunk:
                        record = records.get(id)
                        links = None if record is None else self.links.links_of(model, record.get)
                        known[(model, id)] = links
                        found.extend(links or ())
            level = wanted(found)
        return lambda key: known.get(key) if key[0] in worth else None

    def _read_links(self, model: str, ids: list[int]) -> dict[int, Record]:
        """The live objects of `model` with these ids (none when the store cannot say)."""
        try:
            return {r["id"]: r for r in self.store.query(model, filters={"id__in": ids})}
        except STORE_DOWN as exc:
            self._store_down(exc)
        except StoreError as exc:
            self.log.warning(
                "reading linked objects failed",
                extra={"model": model, "error": exception_message(exc)},
            )
        return {}

    # --- one object ------------------------------------------------------------------

    def _sync_one(self, work: _Work) -> Outcome:
        obj = work.obj
        started = time.perf_counter()
        steps: list[SyncStep] = []
        try:
            if not getattr(obj, "backend_need_delete", False):
                # Before any step code: from here on the backend may hold state for it.
                self._save(work, {"backend_need_delete": True})
            for step_class in work.steps:
                steps.append(self._call_step(step_class, "sync_record", obj, work=work))
        except DeferredException as exc:
            return self._deferred(work, exc, started)
        except Exception as exc:
            return self._failed(work, exc, started)
        enacted = max(
            _timestamp(getattr(obj, "updated", None)),
            _timestamp(getattr(obj, "changed_by_policy", None)),
        )
        synced = backend_state.synced(
            register=getattr(obj, "backend_register", None),
            enacted=enacted,
            retries=self.retries,
        )
        hooks = [(step, hook) for step in steps if (hook := optional_hook(step, "after_sync_save"))]
        if not hooks:
            self._save_later(work, synced)
            return self._done(work, Outcome.SYNCED, started)
        # `after_sync_save` is promised an object whose sync is on record: saved now.
        try:
            self._save(work, synced)
        except Exception as exc:
            return self._failed(work, exc, started)
        self._after_sync_save(work, hooks)
        return self._done(work, Outcome.SYNCED, started)

    def _delete_one(self, work: _Work) -> Outcome:
        obj = work.obj
        started = time.perf_counter()
        if not getattr(obj, "backend_need_reap", False):
            try:
                for step_class in work.steps:
                    self._call_step(step_class, "delete_record", obj, work=work)
                self._save(work, {"backend_need_reap": True})
            except DeferredException as exc:
                return self._deferred(work, exc, started)
            except Exception as exc:
                return self._failed(work, exc, started)
        try:
            self.store.purge(work.model, work.id)
        except Exception as exc:
            # backend_need_reap is saved: the next pass only retries the purge.
            self.log.warning(
                "purge failed",
                extra={"model": work.model, "id": work.id, "error": exception_message(exc)},
            )
            return self._done(work, Outcome.DEFERRED, started)
        return self._done(work, Outcome.SYNCED, started)

    def _call_step(
        self, step_class: type[SyncStep], method: str, arg: Any, work: _Work | None = None
    ) -> Any:
        """A new instance of `step_class` and its `method(arg)`, both bounded by the step's time
        limit; returns the instance, or for `fetch_pending` the objects."""

        def call() -> Any:
            # The step's own __init__ is user code too: inside the limit.
            step = self._new_step(step_class)
            found = getattr(step, method)(arg)
            return list(found) if method == "fetch_pending" else step

        seconds = time_limit(step_class, self.step_timeout)
        if work is None:
            return call_user_code(call, seconds=seconds, what=f"{step_class.__name__}.{method}")
        what = f"{step_class.__name__}.{method} {work.model} {work.id}"
        return self._watched.call((work.model, work.id), call, seconds=seconds, what=what)

    def _new_step(self, step_class: type[SyncStep]) -> SyncStep:
        return step_class(
            model_accessor=self.accessor,
            log=self._step_log(step_class),
            pending_source=self._pending,
        )

    def _after_sync_save(
        self, work: _Work, hooks: list[tuple[SyncStep, Callable[[Any], Any]]]
    ) -> None:
        for step, hook in hooks:
            try:
                call_user_code(
                    hook,
                    work.obj,
                    seconds=time_limit(type(step), self.step_timeout),
                    what=f"{type(step).__name__}.after_sync_save {work.model} {work.id}",
                )
            except Exception as exc:
                # enacted is already saved: the object is in sync; say so rather than pretend it failed.
                self.log.error(
                    "after_sync_save failed",
                    extra={"model": work.model, "id": work.id, "error": exception_message(exc)},
                )

    def _failed(self, work: _Work, exc: BaseException, started: float) -> Outcome:
        if isinstance(exc, STORE_DOWN):
            return self._store_down(exc)
        message = exception_message(exc)
        if isinstance(exc, StepTimeout):
            self._abandoned[(work.model, work.id)] = exc
        trace = user_traceback(exc)
        # Logged with its traceback when it starts failing, not again on every retry; a retry
        # that fails the same way again is no news (DEBUG).
        entering = getattr(work.obj, "backend_code", None) != backend_state.Code.ERROR
        news = entering or last_message(getattr(work.obj, "backend_status", None)) != message
        self._save_later(
            work,
            backend_state.failed(
                status=getattr(work.obj, "backend_status", None),
                register=getattr(work.obj, "backend_register", None),
                message=message,
                retries=self.retries,
                innocuous=isinstance(exc, InnocuousException),
                trace=trace,
            ),
        )
        return self._done(
            work, Outcome.FAILED, started, message, trace if entering else None, news=news
        )

    def _deferred(self, work: _Work, exc: DeferredException, started: float) -> Outcome:
        message = exception_message(exc)
        self._save_later(
            work,
            backend_state.deferred(
                status=getattr(work.obj, "backend_status", None),
                register=getattr(work.obj, "backend_register", None),
                message=message,
            ),
        )
        return self._done(work, Outcome.DEFERRED, started, message)

    def _done(
        self,
        work: _Work,
        outcome: Outcome,
        started: float,
        message: str | None = None,
        trace: str | None = None,
        *,
        news: bool = True,
    ) -> Outcome:
        seconds = time.perf_counter() - started
        if not work.whole:
            work.obj = None  # recorded: the pass no longer needs it whole
        self.metrics.observe_sync(work.model, outcome.value, seconds)
        if self.log.isEnabledFor(logging.INFO):
            extra: dict[str, Any] = {
                "model": work.model,
                "id": work.id,
                "outcome": outcome.value,
                "duration_ms": round(seconds * 1000, 3),
            }
            if message is not None:
                extra["error"] = message
            if trace is not None:
                extra["traceback"] = trace
            level = logging.WARNING if outcome is Outcome.FAILED else logging.INFO
            if not news:
                level = logging.DEBUG
            self.log.log(level, "delete" if work.deleting else "sync", extra=extra)
        return outcome

    # --- results -------------------------------------------------------------------

    def _record_held(self, execution: Execution, work: Mapping[Key, _Work], deletion: bool) -> None:
        """Give each held-back object a status naming the object that stopped it."""
        held = []
        for key, outcome in execution.outcomes.items():
            if outcome is not Outcome.HELD:
                continue
            root = execution.root_cause(key)
            assert root is not None
            if execution.outcomes.get(root) is Outcome.ELSEWHERE:
                continue  # another runner works on what it waits for: nothing is wrong
            held.append((key, root))
        # Held objects never ran, so they were not read whole: read a chunk at a time, with
        # the causes that did not run in this pass either (backing off).
        for start in range(0, len(held), RESOLVE_CHUNK):
            chunk = held[start : start + RESOLVE_CHUNK]
            wanted = [key for key, _ in chunk]
            wanted += [root for _, root in chunk if work[root].message is None]
            wanted = list(dict.fromkeys(wanted))
            loaded = self._load(work, wanted, deletion)
            for key, root in chunk:
                if key in loaded:
                    self._record_one_held(work[key], work[root], root)
                self.metrics.observe_sync(key[0], "held", 0.0)
            for key in wanted:
                if not work[key].whole:
                    work[key].obj = None

    def _record_one_held(self, held: _Work, cause: _Work, root: Key) -> None:
        reason = cause.message
        if reason is None:
            reason = last_message(getattr(cause.obj, "backend_status", None))
        changes = backend_state.held_back(
            status=getattr(held.obj, "backend_status", None),
            register=getattr(held.obj, "backend_register", None),
            code=getattr(held.obj, "backend_code", None),
            cause=root,
            reason=reason,
        )
        if changes:
            self._save_later(held, changes)
        # Held by the same object as last pass: no news, no line (the status says it).
        if changes and self.log.isEnabledFor(logging.INFO):
            self.log.info(
                "delete" if held.deleting else "sync",
                extra={
                    "model": held.model,
                    "id": held.id,
                    "outcome": "held",
                    "waits_for": f"{root[0]} {root[1]}",
                },
            )

    def _publish_queue(self, work: Mapping[Key, _Work], items: Sequence[PlanItem]) -> None:
        pending: dict[str, int] = {}
        backing: dict[str, int] = {}
        for item in items:
            pending[item.key[0]] = pending.get(item.key[0], 0) + 1
            if not item.runnable:
                backing[item.key[0]] = backing.get(item.key[0], 0) + 1
        for model in pending:
            self.metrics.set_queue(model, pending=pending[model], backing_off=backing.get(model, 0))

    def _save(self, work: _Work, values: dict[str, Any]) -> None:
        self.store.update(work.model, work.id, values, actor=ACTOR, update_fields=list(values))
        # Keep the in-memory copy in step with the row, as an ORM save would.
        for name, value in values.items():
            setattr(work.obj, name, value)

    def _save_later(self, work: _Work, values: dict[str, Any]) -> None:
        """Save with the pass's next batch of outcomes (a failure to save is logged there)."""
        self._outcomes.add((work.model, work.id), values)
        status = values.get("backend_status")
        if isinstance(status, str):
            work.message = last_message(status)
        if work.obj is not None:
            for name, value in values.items():
                setattr(work.obj, name, value)

    def _step_log(self, step_class: type[SyncStep]) -> logging.Logger:
        return self.log.getChild(f"step.{step_class.__name__}")


class _Supervision:
    """The engine as the executor's `Supervisor`: the deadlines of the step calls running."""

    def __init__(self, engine: SyncEngine) -> None:
        self._engine = engine

    def next_deadline(self) -> float | None:
        return self._engine._watched.next_deadline()

    def overdue(self) -> list[Key]:
        return [key for key in self._engine._watched.overdue() if isinstance(key, tuple)]

    def take_over(self, key: Key) -> Outcome | None:
        return self._engine._take_over(key)

    def longest_call(self) -> float:
        return self._engine._watched.longest()


class _Halt:
    """What the executor checks between objects: a stop request, the store gone, or (with
    `deadline`, a monotonic time) the plan grown too old to start more of it."""

    def __init__(
        self, stop: threading.Event | None, engine: SyncEngine, deadline: float | None = None
    ) -> None:
        self._stop = stop
        self._engine = engine
        self._deadline = deadline

    def is_set(self) -> bool:
        if (self._stop is not None and self._stop.is_set()) or self._engine._lost is not None:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def with_deadline(self, seconds: float) -> _Halt:
        return _Halt(self._stop, self._engine, time.monotonic() + seconds)


class _ModelReach:
    """Which models can reach, through link fields, a given set of models (cached per set)."""

    def __init__(self, links: LinkFields) -> None:
        self._reverse: dict[str, set[str]] = {}
        for model, fields in links.by_model.items():
            for _, peer in fields:
                self._reverse.setdefault(peer, set()).add(model)
        self._cache: dict[frozenset[str], frozenset[str]] = {}

    def models_reaching(self, targets: set[str]) -> frozenset[str]:
        key = frozenset(targets)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(targets)
        while stack:
            for source in self._reverse.get(stack.pop(), ()):
                if source not in seen:
                    seen.add(source)
                    stack.append(source)
        result = frozenset(seen)
        self._cache[key] = result
        return result


def _model_of(obj: Any) -> str:
    name = getattr(obj, "model_name", None)
    return name if isinstance(name, str) and name else type(obj).__name__


def _timestamp(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
