"""Event steps: discovery, the engine's delivery rules, and the same rules against a real broker."""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_fixture import (  # noqa: F401 - kafka_endpoint is a fixture
    kafka_endpoint,
    start_broker,
    stop_broker,
    unique_name,
    wait_until,
)
from xsync import Event, EventStep
from xsync.backoff import BackoffPolicy
from xsync.engines.events import ConsumerState, EventEngine, RetryPolicy
from xsync.loader import StepLoadError, load_event_steps
from xsync.runner import build_event_engine

LOG = logging.getLogger("test_events")
NO_WAIT = RetryPolicy(
    attempts=3, backoff=BackoffPolicy(base_seconds=0.0, cap_seconds=0.0, jitter=0.0)
)
QUICK_RECONNECT = BackoffPolicy(base_seconds=0.05, cap_seconds=0.2, jitter=0.0)


class Recorder:
    """What the steps saw, shared across the per-message step instances."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, bytes | None, int]] = []  # (step, key, offset)

    def add(self, step: str, event: Event) -> None:
        with self.lock:
            self.seen.append((step, event.key, event.offset))

    def keys(self, step: str | None = None) -> set[bytes | None]:
        with self.lock:
            return {key for name, key, _ in self.seen if step is None or name == step}

    def count(self, key: bytes) -> int:
        with self.lock:
            return sum(1 for _, k, _ in self.seen if k == key)


def make_step(
    topics: Sequence[str],
    recorder: Recorder,
    *,
    name: str = "RecordingStep",
    behaviour: Callable[[Event], None] | None = None,
) -> type[EventStep]:
    """A step class that records each call, then runs `behaviour` (which may raise or block)."""

    def process_event(self: EventStep, event: Event) -> None:
        recorder.add(name, event)
        if behaviour is not None:
            behaviour(event)

    return type(name, (EventStep,), {"topics": list(topics), "process_event": process_event})


# A bus in memory: one partition per topic, offsets in a list.


class FakeConsumer:
    def __init__(self, bus: FakeBus, topics: Sequence[str]) -> None:
        self.bus = bus
        self.topics = list(topics)
        self.position = {(t, 0): bus.committed.get((t, 0), 0) for t in topics}
        self.closed = False

    def poll(self, timeout_s: float, max_records: int) -> list[Event]:
        if self.bus.poll_errors:
            self.bus.poll_errors -= 1
            raise ConnectionError("broker went away")
        out: list[Event] = []
        for key, position in self.position.items():
            log = self.bus.logs.get(key[0], [])
            batch = log[position : position + max_records - len(out)]
            out.extend(batch)
            self.position[key] = position + len(batch)
        if not out:
            time.sleep(min(timeout_s, 0.01))
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.bus.commits.append(dict(offsets))
        self.bus.committed.update(offsets)

    def assignment(self) -> list[tuple[str, int]]:
        return sorted(self.position)

    def committed(self, partition: tuple[str, int]) -> int | None:
        return self.bus.committed.get(partition)

    def highwater(self, partition: tuple[str, int]) -> int | None:
        return len(self.bus.logs.get(partition[0], []))

    def connected(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class FakeBus:
    def __init__(self) -> None:
        self.logs: dict[str, list[Event]] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.commits: list[dict[tuple[str, int], int]] = []
        self.consumers: list[FakeConsumer] = []
        self.poll_errors = 0

    def produce(self, topic: str, key: bytes) -> None:
        log = self.logs.setdefault(topic, [])
        log.append(
            Event(topic=topic, key=key, value=b"v", timestamp=None, partition=0, offset=len(log))
        )

    def factory(self, endpoint: str, group_id: str, topics: Sequence[str]) -> FakeConsumer:
        consumer = FakeConsumer(self, topics)
        self.consumers.append(consumer)
        return consumer


def fake_engine(
    bus: FakeBus, steps: Sequence[type[EventStep]], *, retry: RetryPolicy = NO_WAIT
) -> EventEngine:
    return EventEngine(
        steps,
        "fake:1",
        "test-synchronizer",
        None,
        LOG,
        consumer_factory=bus.factory,
        retry=retry,
        reconnect=QUICK_RECONNECT,
        poll_seconds=0.01,
    )


# Discovery.


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))


def test_load_finds_direct_and_indirect_subclasses_with_topics(tmp_path: Path) -> None:
    write(
        tmp_path,
        "steps.py",
        """
        from xsync import EventStep

        class Base(EventStep):
            pass

        class Direct(EventStep):
            topics = ["a"]

        class Indirect(Base):
            topics = ["b"]
        """,
    )
    write(
        tmp_path,
        "test_steps.py",
        "from xsync import EventStep\nclass Hidden(EventStep):\n    topics = ['x']\n",
    )
    write(tmp_path, "notes.txt", "not python")
    assert [cls.__name__ for cls in load_event_steps(tmp_path)] == ["Direct", "Indirect"]


def test_load_keeps_same_named_files_of_two_directories_apart(tmp_path: Path) -> None:
    for name in ("one", "two"):
        write(
            tmp_path / name,
            "step.py",
            f"from xsync import EventStep\nclass S(EventStep):\n    topics = ['{name}']\n",
        )
    first, second = load_event_steps(tmp_path / "one"), load_event_steps(tmp_path / "two")
    assert [list(c.topics) for c in first + second] == [["one"], ["two"]]


def test_load_reports_syntax_errors_with_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "broken.py",
        "from xsync import EventStep\n\nclass S(EventStep)\n    topics = ['a']\n",
    )
    with pytest.raises(StepLoadError, match=r"broken\.py:3: SyntaxError"):
        load_event_steps(tmp_path)


def test_load_rejects_topics_given_as_a_string(tmp_path: Path) -> None:
    write(
        tmp_path, "step.py", "from xsync import EventStep\nclass S(EventStep):\n    topics = 'a'\n"
    )
    with pytest.raises(StepLoadError, match="S.topics must be a list"):
        load_event_steps(tmp_path)


def test_load_names_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StepLoadError, match="does not exist"):
        load_event_steps(tmp_path / "nope")


# The engine's rules, on the in-memory bus.


def test_event_steps_without_an_event_bus_are_skipped_with_the_xos_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The config refuses any other kind than "kafka" and an empty endpoint (test_config).
    runtime = SimpleNamespace(
        event_steps=[make_step(["t"], Recorder())], config=SimpleNamespace(event_bus=None)
    )
    with caplog.at_level(logging.ERROR, logger="test_events"):
        assert build_event_engine(runtime, LOG) is None  # type: ignore[arg-type]
    assert "Eventbus kind is not configured in synchronizer config file." in caplog.text


def test_unknown_technology_is_skipped_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    odd = make_step(["t"], recorder, name="Odd")
    odd.technology = "amqp"
    with caplog.at_level(logging.ERROR, logger="test_events"):
        engine = fake_engine(FakeBus(), [odd])
    assert engine.topics == []
    assert "Unknown technology. Skipping step (step=Odd" in caplog.text


def test_two_steps_on_one_topic_both_see_every_event() -> None:
    bus, recorder = FakeBus(), Recorder()
    for i in range(5):
        bus.produce("t", b"%d" % i)
    engine = fake_engine(
        bus, [make_step(["t"], recorder, name="A"), make_step(["t"], recorder, name="B")]
    )
    engine.start()
    try:
        assert wait_until(lambda: bus.committed.get(("t", 0)) == 5, 5)
    finally:
        assert engine.stop(5)
    expected = {b"%d" % i for i in range(5)}
    assert recorder.keys("A") == expected and recorder.keys("B") == expected


def test_status_before_any_assignment_has_one_row_per_topic() -> None:
    engine = fake_engine(FakeBus(), [make_step(["b", "a"], Recorder())])
    assert engine.status() == [
        ConsumerState("a", -1, None, None, False, None, assigned=False),
        ConsumerState("b", -1, None, None, False, None, assigned=False),
    ]


def test_failing_event_is_retried_then_dropped_and_the_next_events_still_flow() -> None:
    bus, recorder = FakeBus(), Recorder()
    for key in (b"ok1", b"bad", b"ok2"):
        bus.produce("t", key)

    def fail_on_bad(event: Event) -> None:
        if event.key == b"bad":
            raise ValueError("cannot handle")

    engine = fake_engine(bus, [make_step(["t"], recorder, behaviour=fail_on_bad)])
    engine.start()
    try:
        assert wait_until(lambda: bus.committed.get(("t", 0)) == 3, 5)
    finally:
        assert engine.stop(5)
    assert recorder.count(b"bad") == 3
    assert recorder.count(b"ok2") == 1
    [state] = engine.status()
    assert (state.dropped, state.retried, state.processed) == (1, 2, 3)
    assert state.last_error is not None and "ValueError: cannot handle" in state.last_error


def test_a_bus_error_makes_a_new_consumer_and_consumption_resumes() -> None:
    bus, recorder = FakeBus(), Recorder()
    bus.poll_errors = 2
    for i in range(3):
        bus.produce("t", b"%d" % i)
    engine = fake_engine(bus, [make_step(["t"], recorder)])
    engine.start()
    try:
        assert wait_until(lambda: bus.committed.get(("t", 0)) == 3, 5)
    finally:
        assert engine.stop(5)
    assert len(bus.consumers) == 3
    assert all(c.closed for c in bus.consumers)


def test_stop_during_a_retry_wait_commits_nothing_for_that_event() -> None:
    bus, recorder = FakeBus(), Recorder()
    for key in (b"ok", b"bad"):
        bus.produce("t", key)

    def fail_on_bad(event: Event) -> None:
        if event.key == b"bad":
            raise ValueError("no")

    slow_retry = RetryPolicy(
        attempts=3, backoff=BackoffPolicy(base_seconds=30.0, cap_seconds=30.0, jitter=0.0)
    )
    engine = fake_engine(bus, [make_step(["t"], recorder, behaviour=fail_on_bad)], retry=slow_retry)
    engine.start()
    assert wait_until(lambda: recorder.count(b"bad") == 1, 5)
    assert engine.stop(5)
    assert bus.committed == {("t", 0): 1}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=12))
def test_every_event_is_tried_until_success_or_the_attempts_run_out(failures: list[int]) -> None:
    """failures[i] = how many times event i raises before it succeeds."""
    bus, recorder = FakeBus(), Recorder()
    for i in range(len(failures)):
        bus.produce("t", b"%d" % i)
    raised: dict[bytes | None, int] = {}

    def flaky(event: Event) -> None:
        index = int(event.key or b"0")
        if raised.get(event.key, 0) < failures[index]:
            raised[event.key] = raised.get(event.key, 0) + 1
            raise RuntimeError("flaky")

    engine = fake_engine(bus, [make_step(["t"], recorder, behaviour=flaky)])
    engine.start()
    try:
        assert wait_until(lambda: bus.committed.get(("t", 0)) == len(failures), 5)
    finally:
        assert engine.stop(5)
    for i, fail_count in enumerate(failures):
        assert recorder.count(b"%d" % i) == min(fail_count + 1, NO_WAIT.attempts)
    [state] = engine.status()
    assert state.dropped == sum(1 for f in failures if f >= NO_WAIT.attempts)
    # Commits only move forward.
    offsets = [c[("t", 0)] for c in bus.commits]
    assert offsets == sorted(offsets)


# Against the real broker.


def produce(endpoint: str, topic: str, keys: Sequence[bytes]) -> None:
    from xsync.engines.kafka_bus import KafkaEventProducer

    producer = KafkaEventProducer(endpoint)
    try:
        producer.send_all(topic, [(key, b"payload-" + key) for key in keys])
    finally:
        producer.close()


def real_engine(
    endpoint: str, group: str, steps: Sequence[type[EventStep]], *, max_records: int = 500
) -> EventEngine:
    return EventEngine(
        steps,
        endpoint,
        group,
        None,
        LOG,
        retry=NO_WAIT,
        reconnect=BackoffPolicy(base_seconds=0.2, cap_seconds=2.0, jitter=0.0),
        max_records=max_records,
    )


def committed_offset(engine: EventEngine, topic: str) -> int | None:
    states = [s for s in engine.status() if s.topic == topic and s.partition == 0]
    return states[0].committed if states else None


def keys(prefix: str, n: int, start: int = 0) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(start, start + n)]


def test_real_broker_every_produced_event_is_processed(kafka_endpoint: str) -> None:
    topic, group, recorder = unique_name("xs-all"), unique_name("g"), Recorder()
    produce(kafka_endpoint, topic, keys("a", 100))
    engine = real_engine(kafka_endpoint, group, [make_step([topic], recorder)])
    engine.start()
    try:
        produce(kafka_endpoint, topic, keys("b", 100))
        wanted = set(keys("a", 100) + keys("b", 100))
        assert wait_until(lambda: recorder.keys() >= wanted, 30), wanted - recorder.keys()
        assert wait_until(lambda: committed_offset(engine, topic) == 200, 10)
        [state] = engine.status()
        assert state == ConsumerState(
            topic, 0, 200, 0, True, None, processed=200, retried=0, dropped=0
        )
    finally:
        assert engine.stop(10)
    from xsync.engines.kafka_bus import read_group_offsets

    assert read_group_offsets(kafka_endpoint, group, [topic]) == {(topic, 0): (200, 200)}


def test_real_broker_a_raising_handler_is_retried_and_does_not_stop_the_consumer(
    kafka_endpoint: str,
) -> None:
    topic, group, recorder = unique_name("xs-raise"), unique_name("g"), Recorder()
    attempts: dict[bytes | None, int] = {}

    def misbehave(event: Event) -> None:
        attempts[event.key] = attempts.get(event.key, 0) + 1
        if event.key == b"poison" or (event.key == b"flaky" and attempts[event.key] == 1):
            raise RuntimeError(f"cannot take {event.key!r}")

    engine = real_engine(kafka_endpoint, group, [make_step([topic], recorder, behaviour=misbehave)])
    engine.start()
    try:
        produce(kafka_endpoint, topic, [b"first", b"poison", b"flaky", b"last"])
        assert wait_until(lambda: committed_offset(engine, topic) == 4, 30)
    finally:
        assert engine.stop(10)
    assert attempts == {b"first": 1, b"poison": 3, b"flaky": 2, b"last": 1}
    [state] = engine.status()
    assert (state.dropped, state.retried) == (1, 3)


def test_real_broker_restarting_the_engine_does_not_reprocess_committed_events(
    kafka_endpoint: str,
) -> None:
    topic, group = unique_name("xs-restart"), unique_name("g")
    first, second = Recorder(), Recorder()
    produce(kafka_endpoint, topic, keys("old", 50))
    engine = real_engine(kafka_endpoint, group, [make_step([topic], first)])
    engine.start()
    try:
        assert wait_until(lambda: committed_offset(engine, topic) == 50, 30)
    finally:
        assert engine.stop(10)
    produce(kafka_endpoint, topic, keys("new", 20))
    engine = real_engine(kafka_endpoint, group, [make_step([topic], second)])
    engine.start()
    try:
        assert wait_until(lambda: committed_offset(engine, topic) == 70, 30)
    finally:
        assert engine.stop(10)
    assert first.keys() == set(keys("old", 50))
    assert second.keys() == set(keys("new", 20))
    assert len(second.seen) == 20


def test_real_broker_stop_while_a_handler_runs_commits_nothing_for_that_event(
    kafka_endpoint: str,
) -> None:
    topic, group, recorder = unique_name("xs-stop"), unique_name("g"), Recorder()
    release = threading.Event()
    finished: list[bytes | None] = []

    def block_on_third(event: Event) -> None:
        if event.key == b"k2":
            release.wait(30)
        finished.append(event.key)

    produce(kafka_endpoint, topic, keys("k", 5))
    engine = real_engine(
        kafka_endpoint, group, [make_step([topic], recorder, behaviour=block_on_third)]
    )
    engine.start()
    try:
        assert wait_until(lambda: recorder.count(b"k2") == 1, 30)
        assert not engine.stop(0.5), "stop() should report the abandoned handler"
    finally:
        release.set()
    # The handler finishes after stop() gave up on it: its result must not be committed.
    assert wait_until(lambda: b"k2" in finished, 5)
    time.sleep(0.5)
    from xsync.engines.kafka_bus import read_group_offsets

    assert read_group_offsets(kafka_endpoint, group, [topic]) == {(topic, 0): (2, 5)}

    again = Recorder()
    engine = real_engine(kafka_endpoint, group, [make_step([topic], again)])
    engine.start()
    try:
        assert wait_until(lambda: committed_offset(engine, topic) == 5, 30)
    finally:
        assert engine.stop(10)
    assert [key for _, key, _ in again.seen] == [b"k2", b"k3", b"k4"]


@pytest.mark.slow
def test_real_broker_stopping_and_restarting_the_broker_mid_stream_loses_no_event(
    kafka_endpoint: str,
) -> None:
    topic, group, recorder = unique_name("xs-outage"), unique_name("g"), Recorder()
    produce(kafka_endpoint, topic, keys("before", 300))
    engine = real_engine(
        kafka_endpoint,
        group,
        [make_step([topic], recorder, behaviour=lambda event: time.sleep(0.01))],
        max_records=20,
    )
    engine.start()
    try:
        assert wait_until(lambda: len(recorder.keys()) >= 50, 30)
        stop_broker()
        outage_seen = len(recorder.keys())
        time.sleep(2)
        start_broker()
        produce(kafka_endpoint, topic, keys("after", 100))
        wanted = set(keys("before", 300) + keys("after", 100))
        assert wait_until(lambda: recorder.keys() >= wanted, 90), sorted(wanted - recorder.keys())[
            :10
        ]
        assert wait_until(lambda: committed_offset(engine, topic) == 400, 30)
        assert outage_seen < 300, "the outage should have happened mid-stream"
    finally:
        start_broker()
        assert engine.stop(15)
