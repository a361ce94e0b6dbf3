"""The event engine: feeds messages from the event bus to the synchronizer's event steps.

One consumer per synchronizer, not one per step. The consumer joins the group named after the
synchronizer (XOS's `group.id = name`, reference section 8.2) and subscribes to the union of
the steps' topics; each message goes to every step that lists its topic, in load order. With
one consumer per step in a shared group, two steps on one topic would split its partitions and
each would miss half the events (reference section 11, item 26). The price is that the steps
share one thread: a slow step delays the others.

Delivery is at-least-once. An offset is committed only after every step has finished with the
event: it returned, or it raised on every attempt of the bounded retry policy, in which case
the event goes to the dead-letter topic with the error (when one is configured; otherwise it
is logged as dropped) and is counted in `status()`. An event whose dead letter cannot be
written is not committed: the consumer starts again from it. Nothing a step raises stops the
consumer, and bus errors are retried with backoff, so the consumer picks up again when the
broker returns. `stop()` commits what has finished and nothing else.

`consume_available()` runs the same loop in the caller's thread until the consumer has
caught up with what the bus holds, for `xsync run --once` and `--until-idle`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from xsync.backoff import EVENT_ATTEMPTS, EVENT_RETRY, RECONNECT, BackoffPolicy, Register, RetryBook
from xsync.bounded import call_user_code, time_limit
from xsync.authoring import Event, EventStep

PartitionKey = tuple[str, int]


class EventConsumer(Protocol):
    """What the engine needs from a bus consumer (`kafka_bus.KafkaEventConsumer` in production).

    Used from the engine's thread only, except `commit` and `close`, which `stop()` may call
    while that thread is known to be inside a step and not using the consumer.
    """

    def poll(self, timeout_s: float, max_records: int) -> list[Event]: ...

    def commit(self, offsets: dict[PartitionKey, int]) -> None: ...

    def assignment(self) -> list[PartitionKey]: ...

    def committed(self, partition: PartitionKey) -> int | None: ...

    def highwater(self, partition: PartitionKey) -> int | None: ...

    def connected(self) -> bool: ...

    def close(self) -> None: ...


# (endpoint, group_id, topics) -> consumer
ConsumerFactory = Callable[[str, str, Sequence[str]], EventConsumer]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event given up on: the event, the step that failed on it, the error, the attempts."""

    event: Event
    step: str
    error: str
    attempts: int
    group: str


# Writes one dead letter durably, or raises (the event then stays uncommitted).
DeadLetterSink = Callable[[DeadLetter], None]


class DeadLetterFailed(Exception):
    """A dead letter could not be written; the event is not committed and comes back."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a step gets an event before the event is dropped, and the pause in between."""

    attempts: int = EVENT_ATTEMPTS
    backoff: BackoffPolicy = EVENT_RETRY


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """One partition as the engine sees it, for `xsync status`.

    `committed` is the group's next offset to read; `lag` is how many events the broker holds
    beyond it (None until both figures are known). `dropped` counts events given up on after
    the retry policy ran out; `retried` counts the extra attempts.
    """

    topic: str
    partition: int
    committed: int | None
    lag: int | None
    connected: bool
    last_error: str | None
    processed: int = 0
    retried: int = 0
    dropped: int = 0
    assigned: bool = True
    dead_lettered: int = 0


@dataclass(slots=True)
class _PartitionStats:
    assigned: bool = False
    committed: int | None = None
    highwater: int | None = None
    processed: int = 0
    retried: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Shared:
    """State both the engine thread and callers of stop()/status() touch, under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    partitions: dict[PartitionKey, _PartitionStats] = field(default_factory=dict)
    connected: bool = False
    last_error: str | None = None


class EventEngine:
    """Runs the event steps of one synchronizer against the event bus, in a background thread.

    Single use: `start()` once, `stop()` once. `steps` are event step classes (see
    `load_event_steps`); `group_id` is the synchronizer's `name`.
    """

    def __init__(
        self,
        steps: Sequence[type[EventStep]],
        bus_endpoint: str,
        group_id: str,
        model_accessor: Any,
        log: logging.Logger,
        *,
        consumer_factory: ConsumerFactory | None = None,
        retry: RetryPolicy = RetryPolicy(),
        reconnect: BackoffPolicy = RECONNECT,
        poll_seconds: float = 0.2,
        max_records: int = 500,
        dead_letter: DeadLetterSink | None = None,
        metrics: Any = None,
        step_timeout: float = 300.0,
    ) -> None:
        if not group_id:
            raise ValueError("the event engine needs a consumer group id (the synchronizer's name)")
        self._endpoint = bus_endpoint
        self._group_id = group_id
        self._model_accessor = model_accessor
        self._log = log
        self._factory = consumer_factory if consumer_factory is not None else _kafka_factory
        self._attempts = max(1, retry.attempts)
        # In-memory retries: on the monotonic clock, which no wall-clock jump can stall.
        self._retries = RetryBook(retry.backoff, clock=time.monotonic)
        self._reconnects = RetryBook(reconnect, clock=time.monotonic)
        self._poll_seconds = poll_seconds
        self._max_records = max_records
        # Each process_event call gets the step's `timeout_seconds`, else this many seconds.
        self._step_timeout = step_timeout
        self._routes = _route_topics(steps, log)
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._stopping = threading.Event()
        self._shared = _Shared()
        # Guards every use of the consumer and the offsets waiting to be committed. The engine
        # thread releases it while a step runs, which is what lets stop() abandon that step.
        self._consumer_lock = threading.Lock()
        self._consumer: EventConsumer | None = None
        self._pending: dict[PartitionKey, int] = {}
        self._abandoned = False
        self._thread: threading.Thread | None = None

    @property
    def topics(self) -> list[str]:
        """The topics the consumer subscribes to."""
        return sorted(self._routes)

    def start(self) -> None:
        """Start consuming in a daemon thread. Does nothing (but log) when no step is usable."""
        if self._thread is not None:
            raise RuntimeError("an EventEngine can be started only once")
        if not self._routes:
            self._log.warning("No usable event steps; the event engine does not start")
            return
        self._log.info(
            "Starting event engine (group=%s, topics=%s)", self._group_id, ",".join(self.topics)
        )
        self._thread = threading.Thread(target=self._run, name="xsync-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop consuming; True when the engine thread finished within `timeout` seconds.

        Events whose steps have all finished are committed. An event whose step is still
        running when the time is up is not: the consumer is closed under it, the step is left
        to finish in its daemon thread, and its result is ignored, so the event is delivered
        again after the next start.
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            # Used through consume_available: commit what finished, leave the group.
            self._finish()
            return True
        thread.join(timeout)
        if not thread.is_alive():
            return True
        with self._consumer_lock:
            self._abandoned = True
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                self._commit_pending(consumer)
                _close_quietly(consumer, self._log)
        self._log.warning(
            "Event engine stopped while an event step was still running; its event stays uncommitted"
        )
        return False

    def status(self) -> list[ConsumerState]:
        """A snapshot per partition this engine has held (per topic, partition -1, before any).

        A partition no longer assigned keeps its counters, with `assigned` False and no lag.
        """
        with self._shared.lock:
            connected = self._shared.connected
            if not self._shared.partitions:
                return [
                    ConsumerState(
                        topic, -1, None, None, connected, self._shared.last_error, assigned=False
                    )
                    for topic in self.topics
                ]
            return [
                ConsumerState(
                    topic=topic,
                    partition=partition,
                    committed=stats.committed,
                    lag=_lag(stats) if stats.assigned else None,
                    connected=connected,
                    last_error=self._shared.last_error or stats.last_error,
                    processed=stats.processed,
                    retried=stats.retried,
                    dropped=stats.dropped,
                    assigned=stats.assigned,
                    dead_lettered=stats.dead_lettered,
                )
                for (topic, partition), stats in sorted(self._shared.partitions.items())
            ]

    # The engine thread.

    def consume_available(self, timeout: float = 30.0, stop: threading.Event | None = None) -> int:
        """Process, in this thread, the events the bus holds until the consumer has caught up
        (or `timeout` seconds pass, or `stop` is set); the number of events processed. For
        passes that must see the waiting events (`xsync run --once`, `--until-idle`); not
        while `start()`ed."""
        if self._thread is not None:
            raise RuntimeError(
                "the event engine runs in its own thread; consume_available is for passes"
            )
        if not self._routes:
            return 0
        deadline = time.monotonic() + timeout
        done = 0
        bus = Register()
        halt = stop if stop is not None else self._stopping
        while not self._stopping.is_set() and not halt.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._log.warning(
                    "Stopped consuming after %g s with events possibly left on the bus", timeout
                )
                break
            try:
                polled = self._poll_and_process()
                bus = Register()
            except Exception as error:  # noqa: BLE001 - a bus failure ends this round only
                bus = self._reconnects.after_failure(bus)
                self._note_bus_error(error)
                self._drop_consumer()
                halt.wait(min(remaining, self._reconnects.seconds_until_due(bus)))
                continue
            if polled is None:
                break
            done += polled
            if polled == 0 and self._caught_up():
                break
        return done

    def _caught_up(self) -> bool:
        with self._consumer_lock:
            consumer = self._consumer
            if consumer is None:
                return False
            assigned = consumer.assignment()
        if not assigned:
            return False
        with self._shared.lock:
            for key in assigned:
                stats = self._shared.partitions.get(key)
                if stats is None or stats.highwater is None:
                    return False
                if (stats.committed or 0) < stats.highwater:
                    return False
        return True

    def _run(self) -> None:
        bus = Register()
        self._log.info("Waiting for events (topics=%s)", ",".join(self.topics))
        while not self._stopping.is_set():
            try:
                if self._poll_and_process() is None:
                    return
                bus = Register()
            except Exception as error:  # noqa: BLE001 - the loop must outlive any bus failure
                bus = self._reconnects.after_failure(bus)
                self._note_bus_error(error)
                self._drop_consumer()
                self._stopping.wait(self._reconnects.seconds_until_due(bus))
        self._finish()

    def _poll_and_process(self) -> int | None:
        """One poll and its events: how many were polled; None when stop() abandoned this thread."""
        with self._consumer_lock:
            if self._abandoned:
                return None
            consumer = self._ensure_consumer()
            events = consumer.poll(self._poll_seconds, self._max_records)
            self._refresh_partitions(consumer)
        try:
            for event in events:
                if self._stopping.is_set() or not self._deliver(event):
                    break
                with self._consumer_lock:
                    if self._abandoned:
                        return None
                    self._pending[(event.topic, event.partition)] = event.offset + 1
        except DeadLetterFailed:
            # Keep what finished before it; the failed event comes back with a new consumer.
            with self._consumer_lock:
                if not self._abandoned:
                    self._commit_pending(consumer)
            raise
        with self._consumer_lock:
            if self._abandoned:
                return None
            self._commit_pending(consumer)
            self._refresh_partitions(consumer)
        return len(events)

    def _ensure_consumer(self) -> EventConsumer:
        if self._consumer is None:
            self._consumer = self._factory(self._endpoint, self._group_id, self.topics)
        return self._consumer

    def _deliver(self, event: Event) -> bool:
        """Give the event to each step of its topic. False when stop() interrupted a retry wait."""
        self._log.debug(
            "Processing event (topic=%s, partition=%d, offset=%d)",
            event.topic,
            event.partition,
            event.offset,
        )
        for step in self._routes.get(event.topic, ()):
            if not self._run_step(step, event):
                return False
        self._count(event, processed=1)
        return True

    def _run_step(self, step: type[EventStep], event: Event) -> bool:
        attempts = self._attempts
        tries = Register()
        message = ""
        for attempt in range(1, attempts + 1):
            try:
                call_user_code(
                    self._process,
                    step,
                    event,
                    seconds=time_limit(step, self._step_timeout),
                    what=f"{step.__name__}.process_event {event.topic}:{event.partition}:{event.offset}",
                )
                return True
            except Exception as error:  # noqa: BLE001 - a step's failure must not end the consumer
                message = f"{step.__name__}: {_describe(error)}"
                self._log.error(
                    "Exception in event step %s (topic=%s, partition=%d, offset=%d, attempt %d of %d)",
                    step.__name__, event.topic, event.partition, event.offset, attempt, attempts,
                    exc_info=True,
                )  # fmt: skip
                self._count(event, last_error=message)
            if attempt == attempts:
                break
            self._count(event, retried=1)
            tries = self._retries.after_failure(tries)
            if self._stopping.wait(self._retries.seconds_until_due(tries)):
                return False
        if self._dead_letter is None:
            self._log.error(
                "Dropped event after %d attempts (step=%s, topic=%s, partition=%d, offset=%d)",
                attempts, step.__name__, event.topic, event.partition, event.offset,
            )  # fmt: skip
            self._count(event, dropped=1)
            return True
        letter = DeadLetter(event, step.__name__, message, attempts, self._group_id)
        try:
            self._dead_letter(letter)
        except Exception as error:  # noqa: BLE001 - the event must not be committed
            self._log.error(
                "Could not write the dead letter of an event; it stays uncommitted (step=%s, topic=%s, partition=%d, offset=%d): %s",
                step.__name__, event.topic, event.partition, event.offset, _describe(error),
            )  # fmt: skip
            raise DeadLetterFailed(_describe(error)) from None
        self._log.error(
            "Event sent to the dead-letter topic after %d attempts (step=%s, topic=%s, partition=%d, offset=%d)",
            attempts, step.__name__, event.topic, event.partition, event.offset,
        )  # fmt: skip
        self._count(event, dead_lettered=1)
        return True

    def _process(self, step: type[EventStep], event: Event) -> None:
        # The step's own __init__ is user code too: inside the limit.
        step(
            model_accessor=self._model_accessor, log=self._log.getChild(step.__name__)
        ).process_event(event)

    def _commit_pending(self, consumer: EventConsumer) -> None:
        """Commit finished offsets for partitions still ours; keep them for later if that fails."""
        owned = set(consumer.assignment())
        # A partition taken away by a rebalance restarts from its committed offset elsewhere.
        offsets = {key: offset for key, offset in self._pending.items() if key in owned}
        self._pending.clear()
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except Exception as error:  # noqa: BLE001 - retried on the next round
            self._pending.update(offsets)
            self._note_bus_error(error)
            return
        with self._shared.lock:
            for key, offset in offsets.items():
                self._shared.partitions.setdefault(key, _PartitionStats()).committed = offset

    def _refresh_partitions(self, consumer: EventConsumer) -> None:
        assigned = consumer.assignment()
        with self._shared.lock:
            held = {key for key, stats in self._shared.partitions.items() if stats.assigned}
        # Ask the broker where the group stands once per (re)assignment: while a partition was
        # elsewhere, another replica may have moved its offset on.
        fresh = {key: consumer.committed(key) for key in assigned if key not in held}
        highwater = {key: consumer.highwater(key) for key in assigned}
        connected = consumer.connected()
        with self._shared.lock:
            # Counters outlive a revocation, so that status() keeps what this engine did.
            for key, stats in self._shared.partitions.items():
                stats.assigned = key in highwater
            for key in assigned:
                stats = self._shared.partitions.setdefault(key, _PartitionStats())
                stats.assigned = True
                if key in fresh:
                    stats.committed = fresh[key]
                if highwater[key] is not None:
                    stats.highwater = highwater[key]
            self._shared.connected = connected
            recovered = connected and self._shared.last_error is not None
            if connected:
                self._shared.last_error = None
        if recovered:
            self._log.warning("Event bus reachable again")

    def _note_bus_error(self, error: Exception) -> None:
        text = _describe(error)
        with self._shared.lock:
            # A broker that stays down is one line, not one per reconnect attempt.
            news = self._shared.last_error != text
            self._shared.connected = False
            self._shared.last_error = text
        if news:
            self._log.warning("Event bus error; will retry (%s)", text)

    def _count(
        self,
        event: Event,
        *,
        processed: int = 0,
        retried: int = 0,
        dropped: int = 0,
        dead_lettered: int = 0,
        last_error: str | None = None,
    ) -> None:
        with self._shared.lock:
            stats = self._shared.partitions.setdefault(
                (event.topic, event.partition), _PartitionStats()
            )
            stats.processed += processed
            stats.retried += retried
            stats.dropped += dropped
            stats.dead_lettered += dead_lettered
            if last_error is not None:
                stats.last_error = last_error
        if self._metrics is not None:
            for outcome, n in (
                ("processed", processed),
                ("retried", retried),
                ("dropped", dropped),
                ("dead_lettered", dead_lettered),
            ):
                if n:
                    self._metrics.observe_event(event.topic, outcome, n)

    def _drop_consumer(self) -> None:
        """Forget the consumer after a bus error; a fresh one rejoins from the committed offsets."""
        with self._consumer_lock:
            consumer, self._consumer = self._consumer, None
            self._pending.clear()
        if consumer is not None:
            _close_quietly(consumer, self._log)

    def _finish(self) -> None:
        with self._consumer_lock:
            if self._abandoned:
                return
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                self._commit_pending(consumer)
                _close_quietly(consumer, self._log)
        with self._shared.lock:
            self._shared.connected = False
        close = getattr(self._dead_letter, "close", None)
        if close is not None:
            close()
        self._log.info("Event engine stopped")


def _describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    # kafka-python's errors already start with their class name.
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _lag(stats: _PartitionStats) -> int | None:
    if stats.committed is None or stats.highwater is None:
        return None
    return max(0, stats.highwater - stats.committed)


def _close_quietly(consumer: EventConsumer, log: logging.Logger) -> None:
    try:
        consumer.close()
    except Exception as error:  # noqa: BLE001 - closing is best effort; the broker may be gone
        log.warning("Closing the event consumer failed: %s: %s", type(error).__name__, error)


def _kafka_factory(endpoint: str, group_id: str, topics: Sequence[str]) -> EventConsumer:
    # Imported here so that loading the engine (and `xsync status`) does not pay for kafka-python.
    from xsync.engines.kafka_bus import open_consumer

    return open_consumer(endpoint, group_id, topics)


def _route_topics(
    steps: Sequence[type[EventStep]], log: logging.Logger
) -> dict[str, list[type[EventStep]]]:
    """topic -> the steps that listen to it, in the order given; unusable steps are logged and left out."""
    routes: dict[str, list[type[EventStep]]] = {}
    for step in steps:
        technology = getattr(step, "technology", None)
        if technology != "kafka":
            log.error(
                "Unknown technology. Skipping step (step=%s, technology=%r)",
                step.__name__,
                technology,
            )
            continue
        if getattr(step, "pattern", None):
            log.error(
                "Topic patterns are not supported; list the topics instead. Skipping step (step=%s)",
                step.__name__,
            )
            continue
        if not step.topics:
            log.error(
                "Neither topics nor pattern is defined for step %s. Skipping step", step.__name__
            )
            continue
        for topic in step.topics:
            routes.setdefault(topic, []).append(step)
    return routes
