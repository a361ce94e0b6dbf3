"""Event steps of several runners share a topic's partitions through one consumer group
(named after the synchronizer); a killed runner's partitions go to the others.

Real broker (a topic with 3 partitions), real runner processes, real PostgreSQL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from kafka_fixture import create_topic, kafka_endpoint, unique_name  # noqa: F401 - fixture
from multi_runner import CallLog, kill, make_runner_project, start_runner, stop_all
from pg import fresh_schema
from sync_project import wait_for as wait

EVENT_STEP = """
import os
import time

from xsync import EventStep


class Note(EventStep):
    topics = [{topic!r}]

    def process_event(self, event):
        key = int(event.key)
        for what in ("start", None, "end"):
            if what is None:
                time.sleep(0.01)
                continue
            line = f"{{what}} {{os.getpid()}} Event {{key}} {{time.time():.6f}}\\n"
            fd = os.open({calls!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
"""


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def produce(endpoint: str, topic: str, keys: range) -> None:
    from xsync.engines.kafka_bus import KafkaEventProducer

    producer = KafkaEventProducer(endpoint)
    try:
        producer.send_all(topic, [(str(k).encode(), b"{}") for k in keys])
    finally:
        producer.close()


def test_runners_split_partitions_and_take_over_a_killed_ones(
    tmp_path: Path, store_url: str, kafka_endpoint: str
) -> None:
    topic = unique_name("xs-runners")
    create_topic(topic, 3)
    config = make_runner_project(tmp_path, store_url)
    (tmp_path / "events").mkdir()
    calls = tmp_path / "calls.log"
    (tmp_path / "events" / "note.py").write_text(EVENT_STEP.format(topic=topic, calls=str(calls)))
    options = json.loads(config.read_text())
    options.update(
        name=unique_name("xs-group"),  # the consumer group: new, so it starts at the beginning
        event_steps_dir="events",
        event_bus={"kind": "kafka", "endpoint": kafka_endpoint},
    )
    config.write_text(json.dumps(options))
    runners = [start_runner(config, "--timeout", "60") for _ in range(2)]
    killed: dict[int, float] = {}
    try:
        # A trickle of events until both runners handle some: the group has split the topic.
        sent = 0
        deadline = time.monotonic() + 20
        while len(CallLog.read(calls).pids()) < 2:
            assert time.monotonic() < deadline, "the runners never shared the topic"
            produce(kafka_endpoint, topic, range(sent, sent + 15))
            sent += 15
            time.sleep(0.3)
        before = CallLog.read(calls)
        # Split by partition: no event handled by both runners while both live.
        assert all(len({c.pid for c in cs}) == 1 for cs in before.by_object().values())
        victim = runners[0]
        killed[victim.pid] = kill(victim)
        later = range(sent, sent + 60)
        produce(kafka_endpoint, topic, later)
        sent += 60
        wanted = {("Event", k) for k in range(sent)}
        # The broker hands the dead runner's partitions over after its session timeout (10 s).
        wait(lambda: set(CallLog.read(calls).by_object()) >= wanted, 30, "every event handled")
        log = CallLog.read(calls, killed)
        assert log.overlaps() == []  # never in two runners at once
        survivor = runners[1].pid
        by_key = log.by_object()
        assert all(survivor in {c.pid for c in by_key[("Event", k)]} for k in later)
        # At least once: a second handling only for events the killed runner had not committed.
        twice = {k for k, cs in by_key.items() if len(cs) > 1}
        assert all(victim.pid in {c.pid for c in by_key[k]} for k in twice)
    finally:
        stop_all(runners)
