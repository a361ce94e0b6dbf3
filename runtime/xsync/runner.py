"""The loop around the engine: one pass, passes until idle, or run until told to stop.

The long-running mode wakes on store changes (a watcher thread follows `Store.changes`),
on a timer (`loop_interval_seconds`), and when the earliest backoff expires, whichever comes
first. A stop request lets the steps in flight finish and starts nothing new.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from xprotogen.orm_specs import model_specs

from .backoff import RECONNECT, BackoffPolicy, Register, RetryBook, wall_clock
from .compat.xos import XOSCompat, XOSCompatError
from .authoring import EventStep, Policy, PullStep, SyncStep
from .bootstrap import StartupError, load_deps, open_models, store_problem
from .bounded import time_limit_problem
from .claims import Claims, Leadership, runner_id
from .config import Config
from .engines.policies import PolicyEngine, PolicyPassReport
from .engines.pull import PullScheduler
from .engines.reaper import Reaper
from .engines.sync import PassReport, SyncEngine
from .manager import Hooks, Manager, StoreWatcher
from .loader import (
    StepLoadError,
    defined_in,
    load_event_steps,
    load_policies,
    load_pull_steps,
    load_sync_steps,
)
from .observability import LOGGER_NAME, Metrics
from .planner import ModelDeps
from .retention import ChangeLogRetention
from .store.base import Store, StoreError, Unauthenticated, Unavailable
from .store.version import VersionSpecError, is_plain_version, version_matches

if TYPE_CHECKING:
    from .core_wait import CoreWait
    from .engines.events import EventEngine


# While the store is down, a line after this many seconds, then at doubling gaps up to the max.
STILL_DOWN_FIRST_NOTE = 10.0
STILL_DOWN_MAX_NOTE_GAP = 600.0


@dataclass(slots=True)
class Runtime:
    """Everything a run needs, built from a config. Close it when done."""

    config: Config
    accessor: Any  # xsync.connect.ModelAccessor, saving as the synchronizer
    store: Store
    steps: list[type[SyncStep]]
    model_deps: ModelDeps
    engine: SyncEngine
    policies: list[type[Policy]] = field(default_factory=list)
    pull_steps: list[type[PullStep]] = field(default_factory=list)
    event_steps: list[type[EventStep]] = field(default_factory=list)
    policy_engine: PolicyEngine | None = None
    pull_scheduler: PullScheduler | None = None
    compat: XOSCompat | None = None
    reaper: Reaper | None = None
    # Several runners share the work (PostgreSQL or a core): leases on objects, one leader.
    claims: Claims | None = None
    leadership: Leadership | None = None
    # The change log's pruning, run by the leader (see `retention`).
    retention: ChangeLogRetention | None = None

    def start_sharing(self) -> None:
        """Take part in the sharing: renew leases, seek the leadership (no-op for one runner)."""
        if self.claims is not None:
            self.claims.start()
        if self.leadership is not None:
            self.leadership.start()

    @property
    def observed_models(self) -> list[str]:
        return list(dict.fromkeys(m for step in self.steps for m in step.observed_model_names()))

    def summary(self) -> str:
        """The start-up line: what was loaded and what it talks to (never a password)."""
        config = self.config
        parts = [
            _named("sync step", self.steps),
            _named("policy", self.policies, plural="policies"),
            _named("pull step", self.pull_steps),
            _named("event step", self.event_steps),
        ]
        if config.accessor is not None:
            parts.append(f"core {config.accessor.endpoint} as {config.accessor.username}")
        else:
            parts.append(f"store {_without_password(config.store or '')}")
        bus = config.event_bus
        parts.append(f"event bus {bus.kind} {bus.endpoint}" if bus is not None else "no event bus")
        return f"started {config.name}: {'; '.join(parts)}"

    def close(self) -> None:
        if self.claims is not None:
            self.claims.stop()
        if self.leadership is not None:
            self.leadership.stop()
        if self.compat is not None:
            self.compat.close()
        self.accessor.close()


def _named(kind: str, classes: list[Any], *, plural: str | None = None) -> str:
    noun = kind if len(classes) == 1 else plural or f"{kind}s"
    names = f" ({', '.join(c.__name__ for c in classes)})" if classes else ""
    return f"{len(classes)} {noun}{names}"


def _without_password(url: str) -> str:
    """`url` with the password of its user part replaced by ***."""
    scheme, sep, rest = url.partition("://")
    user, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in user:
        return url
    return f"{scheme}://{user.split(':', 1)[0]}:***@{host}"


def build_runtime(
    config: Config,
    *,
    metrics: Metrics | None = None,
    log: logging.Logger | None = None,
    migrated: bool = False,
    core_wait: CoreWait | None = None,
) -> Runtime:
    """Load the steps, open the store (creating or extending its tables), read model deps.

    Models that break the store's data are refused unless `migrated` (see `open_store`);
    `core_wait` waits for a remote core that is down (see `open_models`).
    """
    accessor = open_models(config, actor="synchronizer", migrated=migrated, core_wait=core_wait)
    # The synchronizer's code is loaded with the models ready: XOS code imports model
    # classes at module level (`from xossynchronizer.modelaccessor import Site`).
    compat = XOSCompat(config, accessor, log)
    try:
        compat.open()
        steps = _load_steps(config)
        policies, pull_steps, event_steps = _load_hybrid(config)
        _check_time_limits([*steps, *policies, *pull_steps, *event_steps])
    except XOSCompatError as exc:
        compat.close()
        accessor.close()
        raise StartupError(f"{config.path}: {exc}") from None
    except BaseException:
        compat.close()
        accessor.close()
        raise
    try:
        _check_core_version(config, accessor.store)
        _check_observed_models(steps, set(accessor.models))
        _check_observed_models_record_syncs(steps, accessor.schema)
        _check_policy_models(policies, set(accessor.models))
        deps = load_deps(
            config,
            accessor.schema,
            {m for step in steps for m in step.observed_model_names()},
            (log or logging.getLogger(LOGGER_NAME)).warning,
        )
    except StartupError:
        compat.close()
        accessor.close()
        raise
    backoff = BackoffPolicy(
        base_seconds=config.backoff_base_seconds, cap_seconds=config.backoff_cap_seconds
    )
    policy_engine = (
        PolicyEngine(
            accessor.store,
            policies,
            accessor=accessor.as_actor("policy"),
            backoff=backoff,
            log=log,
            timeout=config.step_timeout_seconds,
        )
        if policies
        else None
    )
    engine = SyncEngine(
        accessor.store,
        steps,
        deps,
        wrap=lambda model, record: accessor.get_model_class(model)._from_record(record),
        accessor=accessor,
        max_workers=config.max_workers,
        backoff=backoff,
        metrics=metrics,
        log=log,
        hold_deletion=_deletion_hold(policy_engine),
        step_timeout=config.step_timeout_seconds,
        outcome_batch=config.outcome_batch_size,
        outcome_seconds=config.outcome_flush_seconds,
    )
    pulls = (
        PullScheduler(pull_steps, accessor=accessor, log=log, timeout=config.step_timeout_seconds)
        if pull_steps
        else None
    )
    reaper = Reaper(
        accessor.store,
        model_specs(accessor.schema),
        {m for step in steps for m in step.observed_model_names()},
        hold=_deletion_hold(policy_engine),
        log=log,
    )
    runtime = Runtime(
        config,
        accessor,
        accessor.store,
        steps,
        deps,
        engine,
        policies,
        pull_steps,
        event_steps,
        policy_engine,
        pulls,
        compat,
        reaper,
        retention=ChangeLogRetention(
            accessor.store,
            config.change_log_retention_seconds,
            log=log or logging.getLogger(LOGGER_NAME),
        ),
    )
    try:
        _share_work(runtime, log, metrics)
    except StartupError:
        runtime.close()
        raise
    return runtime


def _share_work(runtime: Runtime, log: logging.Logger | None, metrics: Metrics | None) -> None:
    """With a store several runners may share, work under leases (see `claims`)."""
    store = runtime.store
    leases = getattr(store, "leases", None)
    if leases is None or not getattr(store, "shared_by_runners", False):
        return
    try:
        leases.clock()
    except StoreError as exc:
        raise StartupError(
            f"{store_problem(runtime.config, exc)} (runners share work through the store's "
            "leases; a core older than this xsync does not serve them)"
        ) from None
    holder = runner_id()
    seconds = runtime.config.lease_seconds
    name = runtime.config.name
    runtime.claims = Claims(leases, name, holder=holder, lease_seconds=seconds, log=log)
    runtime.engine.claims = runtime.claims
    runtime.leadership = Leadership(
        leases, name, holder, lease_seconds=seconds, log=log, metrics=metrics
    )


def dead_letter_topic(config: Config) -> str:
    """Where events that still fail after their retries go: configured, or "<name>.dead-letter"."""
    bus = config.event_bus
    return (bus.dead_letter_topic if bus is not None else None) or f"{config.name}.dead-letter"


# XOS's words, as XOS carries on without its event steps.
NO_EVENT_BUS = "Eventbus kind is not configured in synchronizer config file."


def build_event_engine(
    runtime: Runtime, log: logging.Logger, metrics: Metrics | None = None
) -> EventEngine | None:
    """The event engine of `runtime` (not started), or None when there are no event steps
    or the event bus is not usable (then logged with XOS's words, as XOS carries on)."""
    from .engines.events import EventEngine
    from .engines.kafka_bus import KafkaDeadLetters

    if not runtime.event_steps:
        return None
    bus = runtime.config.event_bus
    if bus is None:
        # The config accepts only kind "kafka" with an endpoint: a missing section is all
        # that can be wrong here.
        log.error(NO_EVENT_BUS)
        return None
    return EventEngine(
        runtime.event_steps,
        bus.endpoint,
        runtime.config.name,
        runtime.accessor,
        log,
        dead_letter=KafkaDeadLetters(bus.endpoint, dead_letter_topic(runtime.config)),
        metrics=metrics,
        step_timeout=runtime.config.step_timeout_seconds,
    )


def _load_hybrid(
    config: Config,
) -> tuple[list[type[Policy]], list[type[PullStep]], list[type[EventStep]]]:
    try:
        policies = load_policies(config.model_policies_dir) if config.model_policies_dir else []
    except StepLoadError as exc:
        raise StartupError(f"model_policies_dir: {exc}") from None
    try:
        pulls = load_pull_steps(config.pull_steps_dir) if config.pull_steps_dir else []
    except StepLoadError as exc:
        raise StartupError(f"pull_steps_dir: {exc}") from None
    try:
        events = load_event_steps(config.event_steps_dir) if config.event_steps_dir else []
    except StepLoadError as exc:
        raise StartupError(f"event_steps_dir: {exc}") from None
    return policies, pulls, events


def _check_time_limits(classes: list[type]) -> None:
    for user_class in classes:
        problem = time_limit_problem(user_class)
        if problem is not None:
            raise StartupError(f"{defined_in(user_class)}: {problem}")


def _check_policy_models(policies: list[type[Policy]], models: set[str]) -> None:
    for policy in policies:
        if policy.model_name not in models:
            raise StartupError(
                f"{defined_in(policy)}: policy {policy.__name__} has model_name "
                f"{policy.model_name!r}, which is not a model of models_dir"
            )


def _deletion_hold(policy_engine: PolicyEngine | None) -> Callable[[str, Any], bool]:
    """Deleted objects wait for their delete policies before they are deleted and reaped."""
    if policy_engine is not None:
        return policy_engine.awaits_delete_policy

    def flagged_only(model: str, obj: Any) -> bool:
        if not getattr(obj, "backend_need_delete_policy", False):
            return False
        policed, updated = getattr(obj, "policed", None), getattr(obj, "updated", None)
        return policed is None or (updated is not None and policed < updated)

    return flagged_only


def _load_steps(config: Config) -> list[type[SyncStep]]:
    if config.steps_dir is None:
        return []
    try:
        return load_sync_steps(config.steps_dir)
    except StepLoadError as exc:
        raise StartupError(f"steps_dir: {exc}") from None


def _check_observed_models(steps: list[type[SyncStep]], models: set[str]) -> None:
    for step in steps:
        for name in step.observed_model_names():
            if name not in models:
                raise StartupError(
                    f"step {step.__name__} observes {name!r}, which is not a model of models_dir"
                )


def _check_observed_models_record_syncs(steps: list[type[SyncStep]], schema: Any) -> None:
    # A synced object of a model without these fields still looks outdated: every pass
    # would sync it again.
    from xprotogen.core_models import missing_sync_record_fields

    for step in steps:
        for name in step.observed_model_names():
            model = schema.get(name)
            if model is None:
                continue
            missing = missing_sync_record_fields(f.name for f in model.fields)
            if missing:
                raise StartupError(
                    f"step {step.__name__} observes {name!r}, which cannot record a sync "
                    f"(no {', '.join(missing)} fields): derive {name} from XOSBase, the core "
                    "model that carries them, or remove the step"
                )


def _check_core_version(config: Config, store: Store) -> None:
    """`core_version` (a version, or a spec such as ">=4.0" or "4.0 ~ 5.0") against the store's."""
    spec = config.core_version
    if not spec:
        return
    actual = store.core_version()
    try:
        matches = is_plain_version(actual) and version_matches(spec, actual)
    except VersionSpecError as exc:
        raise StartupError(f"{config.path}: core_version: {exc}") from None
    if not matches:
        raise StartupError(
            f"{config.path}: core_version: the store serves core version {actual}, "
            f"which does not satisfy {spec!r}"
        )


class Runner:
    """Runs passes of one engine: `run_once`, `run_until_idle`, `run_forever`."""

    def __init__(
        self,
        engine: SyncEngine,
        store: Store,
        *,
        interval: float = 5.0,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = wall_clock,
        on_pass: Callable[[PassReport], None] | None = None,
        policies: PolicyEngine | None = None,
        pulls: PullScheduler | None = None,
        reaper: Reaper | None = None,
        events: EventEngine | None = None,
        events_timeout: float = 30.0,
        leadership: Leadership | None = None,
        retention: ChangeLogRetention | None = None,
    ) -> None:
        self.engine = engine
        self.retention = retention
        # With several runners, only the leader runs policies, pull steps and the reaper.
        self.leadership = leadership
        self.policies = policies
        self.pulls = pulls
        self.reaper = reaper
        # Passes consume the events waiting on the bus first (--once, --until-idle);
        # run_forever starts the engine in its own thread instead.
        self.events = events
        self.events_timeout = events_timeout
        self.last_events = 0
        self.last_policy_pass: PolicyPassReport | None = None
        # Pull steps and events run inside the passes, except in run_forever, where each has
        # a thread of its own.
        self._pull_in_pass = True
        self.store = store
        self.interval = interval
        self.log = log or logging.getLogger(LOGGER_NAME)
        self.clock = clock
        self.on_pass = on_pass
        self.stop = threading.Event()
        self.wake = threading.Event()

    def request_stop(self) -> None:
        """Finish the steps in flight, start nothing new, return from the loop."""
        self.stop.set()
        self.wake.set()

    def run_once(self) -> PassReport:
        """The events waiting, policies, the pull steps that are due, then the sync and
        deletion passes."""
        self.last_events = 0
        if self.events is not None and self._pull_in_pass:
            # SIGTERM (request_stop) ends the wait for events too.
            self.last_events = self.events.consume_available(self.events_timeout, self.stop)
        leading = self.leading()
        self.last_policy_pass = None
        if self.policies is not None and leading:
            self.last_policy_pass = self.policies.run_pass(self.stop)
        if self.pulls is not None and self._pull_in_pass and leading:
            self.pulls.run_due()
        report = self.engine.run_pass(self.stop)
        if report.lost is not None:
            raise report.lost
        if self.reaper is not None and not self.stop.is_set() and leading:
            report.reaped = self.reaper.run_pass()
        if self.engine.claims is not None and leading:
            self.engine.claims.forget_ended()
        if self.retention is not None and leading:
            self.retention.run_due()
        self.log.debug(
            "pass done", extra={"seconds": round(report.seconds, 6), "worked": report.worked}
        )
        if self.on_pass is not None:
            self.on_pass(report)
        return report

    def leading(self) -> bool:
        """Whether this runner runs what must run once (always, when it runs alone)."""
        return self.leadership is None or self.leadership.is_leader()

    def run_until_idle(self, *, timeout: float | None = None) -> bool:
        """Passes until one has nothing to do but wait for backoffs; False on timeout or stop.

        With several runners, objects another runner holds are not idle work: passes go on
        (a short wait apart) until they are done, or taken over when their runner died.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stop.is_set():
            report = self.run_once()
            idle = report.worked == 0 and self._policies_worked() == 0 and self.last_events == 0
            if idle and report.elsewhere == 0:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if idle:
                self.stop.wait(self._elsewhere_wait())
        return False

    def _elsewhere_wait(self) -> float:
        claims = self.engine.claims
        return min(1.0, claims.lease_seconds / 4) if claims is not None else 0.0

    def run_forever(self, *, timeout: float | None = None) -> None:
        """Until `request_stop` (or `timeout`): a pass whenever the store changes, a backoff
        expires or `interval` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._pull_in_pass = False
        background = Manager(self.log)
        background.add(
            "store watcher",
            StoreWatcher(self.store, self.wake, interval=self.interval, log=self.log),
        )
        if self.pulls is not None:
            if self.leadership is not None:
                self.pulls.gate = self.leading
            background.add("pull scheduler", self.pulls)
        if self.events is not None:
            # Whoever built the event engine stops it (it also serves --once and --until-idle).
            background.add("event engine", Hooks(on_start=self.events.start))
        background.start()
        try:
            while not self.stop.is_set():
                self.wake.clear()
                try:
                    report = self.run_once()
                except Unavailable as lost:
                    self._wait_for_store(lost)
                    continue
                wait = self._next_wait(report)
                if deadline is not None:
                    left = deadline - time.monotonic()
                    # Only the deadline ends the run: a pass that did work asks for no wait
                    # (wait 0), which must not be taken for the time being up.
                    if left <= 0:
                        break
                    wait = min(wait, left)
                self.wake.wait(wait)
        finally:
            self.stop.set()
            background.stop()

    def _next_wait(self, report: PassReport) -> float:
        wait = self.interval
        if report.next_retry is not None:
            wait = min(wait, max(0.0, report.next_retry - self.clock()))
        policed = self.last_policy_pass
        if policed is not None:
            if policed.worked:
                # Policy saves wake the watcher anyway; this covers bookkeeping-only passes.
                wait = 0.0
            elif policed.next_retry is not None:
                wait = min(wait, max(0.0, policed.next_retry - self.clock()))
        return wait

    def _policies_worked(self) -> int:
        return self.last_policy_pass.worked if self.last_policy_pass is not None else 0

    def _wait_for_store(self, lost: Unavailable) -> None:
        """Passes stop until the store answers again: one line when it is lost, a few while it
        stays down (after 10 s, 20 s, 40 s, ...), one when it is back; never one per object.

        Refused credentials end the run (`Unauthenticated` is raised): waiting cannot fix them.
        """
        down_since = time.monotonic()
        self.log.error(
            "lost the store; passes wait until it answers again", extra={"error": str(lost)}
        )
        book = RetryBook(RECONNECT, clock=time.monotonic)
        tries = Register()
        note_after = STILL_DOWN_FIRST_NOTE
        while not self.stop.is_set():
            tries = book.after_failure(tries)
            if self.stop.wait(book.seconds_until_due(tries)):
                return
            try:
                self.store.model_names()
            except Unavailable as exc:
                down = time.monotonic() - down_since
                if down >= note_after:
                    self.log.warning(
                        "the store is still unreachable",
                        extra={"down_seconds": round(down), "error": str(exc)},
                    )
                    note_after = min(note_after * 2, STILL_DOWN_MAX_NOTE_GAP + down)
                continue
            self.log.warning(
                "the store answers again; passes resume",
                extra={"down_seconds": round(time.monotonic() - down_since, 1)},
            )
            return
