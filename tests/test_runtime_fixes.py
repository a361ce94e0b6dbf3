"""Runtime fixes found while running real XOS synchronizers: events in --once and
--until-idle passes, the dead-letter topic, --timeout, and the reaper."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT
from kafka_fixture import kafka_endpoint  # noqa: F401 - a fixture
from test_events import NO_WAIT, FakeBus, Recorder, fake_engine, make_step
from test_xos_att_workflow_driver import skip_to_end
from test_xos_compat import Folder, service
from test_xos_simpleexampleservice import index_html, populate
from xos_support import build, runner_of, user_api, write_config
from xsync import connect
from xsync.config import load_config
from xsync.engines.events import DeadLetter
from xsync.engines.kafka_bus import KafkaEventProducer
from xsync.observability import Metrics
from xsync.runner import Runner, build_event_engine, build_runtime

TOPIC = "SimpleExampleEvent"  # simpleexampleservice's event step listens here


def xsync(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xsync.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def ses(tmp_path: Path, kafka_endpoint: str) -> tuple[Path, str]:  # noqa: F811
    name = f"ses-{uuid.uuid4().hex[:8]}"
    skip_to_end(kafka_endpoint, name, (TOPIC,))
    config = write_config(
        tmp_path,
        "simpleexampleservice",
        name=name,
        event_bus={
            "kind": "kafka",
            "endpoint": kafka_endpoint,
            "dead_letter_topic": f"{name}.dead",
        },
    )
    with user_api(config) as api:
        populate(api)
    return config, kafka_endpoint


def send(endpoint: str, value: dict[str, Any]) -> None:
    producer = KafkaEventProducer(endpoint)
    try:
        producer.send_all(TOPIC, [(b"k", json.dumps(value).encode())])
    finally:
        producer.close()


def test_xsync_run_once_consumes_the_waiting_events(ses: tuple[Path, str]) -> None:
    config, endpoint = ses
    first = xsync("run", str(config), "--once")
    assert first.returncode == 0, first.stderr
    send(endpoint, {"service_instance": "page1", "tenant_message": "sent through Kafka"})
    second = xsync("run", str(config), "--once")
    assert second.returncode == 0, second.stderr
    with user_api(config) as api:
        assert (
            api.SimpleExampleServiceInstance.objects.get(name="page1").tenant_message
            == "sent through Kafka"
        )
        # The same pass ran the policy on the change the event made.
        assert "sent through Kafka" in index_html(api)


def test_an_event_that_keeps_failing_goes_to_the_dead_letter_topic_with_its_error(
    ses: tuple[Path, str],
) -> None:
    config, endpoint = ses
    send(endpoint, {"service_instance": "no-such-page", "tenant_message": "x"})
    send(endpoint, {"service_instance": "page1", "tenant_message": "after the bad one"})
    metrics = Metrics()
    runtime = build(config)
    try:
        runner = runner_of(runtime)
        runner.events = build_event_engine(runtime, runner.log, metrics)
        assert runner.run_until_idle(timeout=60)
        (state,) = runner.events.status()
        assert (state.dead_lettered, state.dropped, state.retried) == (1, 0, 2)
        assert state.committed is not None and state.lag == 0
        assert metrics.events(TOPIC, "dead_lettered") == 1
        exposed = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics.render())
            for sample in family.samples
        }
        key = (("outcome", "dead_lettered"), ("topic", "SimpleExampleEvent"))
        assert exposed[("xsync_events_total", key)] == 1
        runner.events.stop()
    finally:
        runtime.close()
    with user_api(config) as api:
        assert (
            api.SimpleExampleServiceInstance.objects.get(name="page1").tenant_message
            == "after the bad one"
        )
    (letter,) = read_topic(endpoint, f"{load_config(config).name}.dead")
    assert letter["step"] == "SimpleExampleEventStep" and letter["attempts"] == 3
    assert letter["error"] == "SimpleExampleEventStep: Exception: failed to find no-such-page"
    assert json.loads(letter["value"])["service_instance"] == "no-such-page"
    assert (letter["topic"], letter["key"], letter["group"]) == (
        TOPIC,
        "k",
        load_config(config).name,
    )
    status = xsync("status", str(config), "--json")
    assert status.returncode == 0, status.stderr
    events = json.loads(status.stdout)["events"]
    assert (events["dead_letters"], events["dead_letter_topic"]) == (
        1,
        f"{load_config(config).name}.dead",
    )


def read_topic(endpoint: str, topic: str, timeout: float = 20) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer  # type: ignore[import-untyped]

    from xsync.engines.kafka_bus import api_version

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[endpoint],
        api_version=api_version(),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(timeout * 1000),
    )
    try:
        for record in consumer:
            return [json.loads(record.value)]
        return []
    finally:
        consumer.close()


def test_an_event_whose_dead_letter_cannot_be_written_is_not_committed() -> None:
    bus, recorder = FakeBus(), Recorder()
    bus.produce("t", b"bad")
    letters: list[DeadLetter] = []
    broken = threading.Event()
    broken.set()

    def sink(letter: DeadLetter) -> None:
        if broken.is_set():
            raise ConnectionError("dead-letter topic unreachable")
        letters.append(letter)

    def fail(event: Any) -> None:
        raise ValueError("cannot handle")

    engine = fake_engine(bus, [make_step(["t"], recorder, behaviour=fail)], retry=NO_WAIT)
    engine._dead_letter = sink
    engine.consume_available(timeout=0.5)
    assert bus.committed.get(("t", 0)) is None and letters == []  # kept, not dropped
    broken.clear()
    engine.consume_available(timeout=5)
    assert bus.committed.get(("t", 0)) == 1
    assert [(letter.event.key, letter.error) for letter in letters] == [
        (b"bad", "RecordingStep: ValueError: cannot handle")
    ]
    (state,) = engine.status()
    assert state.dead_lettered == 1 and state.dropped == 0
    engine.stop()


def test_a_stop_request_ends_the_wait_for_events_of_a_pass() -> None:
    class NeverAssigned(FakeBus):
        def factory(self, endpoint: str, group_id: str, topics: Any) -> Any:
            consumer = super().factory(endpoint, group_id, topics)
            consumer.assignment = lambda: []  # type: ignore[method-assign]
            return consumer

    bus, recorder = NeverAssigned(), Recorder()
    engine = fake_engine(bus, [make_step(["t"], recorder)], retry=NO_WAIT)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert engine.consume_available(timeout=30, stop=stop) == 0
    assert time.monotonic() - started < 5
    engine.stop()


def test_run_with_a_timeout_runs_until_the_timeout_when_policies_work(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(
        "model_policies/model_policy_demo.py",
        """
        from xossynchronizer.model_policies.policy import Policy

        class DemoPolicy(Policy):
            model_name = "DemoServiceInstance"

            def handle_create(self, si):
                pass
        """,
    )
    config = folder.config()
    with connect(config) as api:
        service(api)
    started = time.monotonic()
    done = xsync("run", str(config), "--timeout", "3")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert 3.0 <= elapsed < 30, elapsed


def test_the_reaper_purges_deleted_objects_of_models_without_a_step_by_xos_rules(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path)
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep

        class SyncDemo(SyncStep):
            observes = "DemoService"
        """,
    )
    config = folder.config()
    with connect(config) as api:
        svc, si = service(api)
        lone = api.DemoNote(text="lone")
        lone.save()
        held = api.DemoNote(text="held by another synchronizer")
        held.save()
        linked = api.DemoNote(text="linked", instance=si)
        linked.save()
    with connect(config, actor="synchronizer") as sync_api:
        other = sync_api.DemoNote.objects.get(id=held.id)
        other.backend_need_delete = True  # another synchronizer made backend state for it
        other.save()
    with connect(config) as api:
        for note in api.DemoNote.objects.all():
            note.delete()
        # The instance goes; its note was soft-deleted with it.
        api.DemoServiceInstance.objects.get(id=si.id).delete()
    runtime = build_runtime(load_config(config))
    try:
        report = Runner(runtime.engine, runtime.store, reaper=runtime.reaper).run_once()
    finally:
        runtime.close()
    with connect(config) as api:
        left = {n.text for n in api.DemoNote.deleted_objects.all()}
        assert left == {"held by another synchronizer"}
        assert api.DemoServiceInstance.deleted_objects.count() == 0  # after the note linking to it
        assert api.DemoService.objects.count() == 1
    assert report.reaped == 3


def test_scaffold_from_xos_writes_a_config_that_runs_the_folder_in_place(tmp_path: Path) -> None:
    from conftest import corpus_file
    from xos_support import synchronizer_dir

    folder = synchronizer_dir("simpleexampleservice")
    out = tmp_path / "ses"
    done = subprocess.run(
        [
            sys.executable, "-m", "xprotogen", "scaffold", "--from-xos", str(folder),
            str(corpus_file("core")), str(corpus_file("kubernetes")), "-o", str(out),
        ],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load((out / "config.yaml").read_text())
    assert data["name"] == "simpleexampleservice" and data["core_version"] == ">=4.0.0"
    assert data["steps_dir"] == str(folder / "steps")
    assert data["model_policies_dir"] == str(folder / "model_policies")
    assert data["models"][-1] == str(folder / "models" / "simpleexampleservice.xproto")
    with connect(out / "config.yaml") as api:
        populate(api)
    run = xsync("run", str(out / "config.yaml"), "--until-idle", "--timeout", "60")
    assert run.returncode == 0, run.stderr
    with connect(out / "config.yaml") as api:
        assert api.KubernetesServiceInstance.objects.count() == 1
    again = subprocess.run(
        [sys.executable, "-m", "xprotogen", "scaffold", "--from-xos", str(folder),
         str(corpus_file("core")), str(corpus_file("kubernetes")), "-o", str(out), "--check"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout


def test_scaffold_from_xos_names_a_required_model_no_file_defines(tmp_path: Path) -> None:
    from conftest import corpus_file
    from xos_support import synchronizer_dir

    folder = synchronizer_dir("simpleexampleservice")
    done = subprocess.run(
        [sys.executable, "-m", "xprotogen", "scaffold", "--from-xos", str(folder),
         str(corpus_file("core")), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "required_models:" in lines[0]
    assert "KubernetesService" in lines[0] and "add the file that defines them" in lines[0]
    assert not (tmp_path / "out").exists()
