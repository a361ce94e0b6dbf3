"""End to end: `xsync run` in the long-running mode with policies, pull steps, event steps fed
by the real Kafka broker, and sync steps, as a user would run it; then `xsync status`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import CORE_XPROTO, ROOT, run_cli
from kafka_fixture import kafka_endpoint, unique_name, wait_until  # noqa: F401 - fixture
from xsync.connect import ModelAccessor, connect

MODELS = """
option app_label = "cloud";

message Region (XOSBase) {
    required string name = 1;
    optional string note = 2;
}
message Cluster (XOSBase) {
    required string name = 1;
    required manytoone region->Region:clusters = 2:1001;
}
"""

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        pass


class SyncCluster(SyncStep):
    observes = "Cluster"

    def sync_record(self, obj):
        pass
"""

POLICIES = """
from xsync import Policy


class RegionPolicy(Policy):
    model_name = "Region"

    def handle_create(self, obj):
        self.model_accessor.Cluster(name=obj.name + "-default", region_id=obj.id).save()
"""

PULL_STEPS = """
from xsync import PullStep


class PullRegions(PullStep):
    requested_interval = 0.2

    def pull_records(self):
        Region = self.model_accessor.Region
        if not Region.objects.filter(name="pulled"):
            Region(name="pulled", no_sync=True).save()
"""

EVENT_STEPS = """
import json

from xsync import EventStep


class RegionEvents(EventStep):
    topics = [{topic!r}]

    def process_event(self, event):
        data = json.loads(event.value)
        Region = self.model_accessor.Region
        found = Region.objects.filter(name=data["name"])
        region = found[0] if found else Region(name=data["name"])
        region.note = data.get("note", "")
        region.save(always_update_timestamp=True)
"""


def make_project(root: Path, endpoint: str, topic: str, group: str) -> Path:
    """A synchronizer project with every kind of step; returns its config."""
    (root / "models").mkdir()
    (root / "models" / "core.xproto").write_text(CORE_XPROTO.read_text())
    (root / "models" / "cloud.xproto").write_text(MODELS)
    for folder, name, source in (
        ("steps", "sync_cloud.py", STEPS),
        ("policies", "model_policy_region.py", POLICIES),
        ("pull_steps", "pull_regions.py", PULL_STEPS),
        ("event_steps", "region_events.py", EVENT_STEPS.replace("{topic!r}", repr(topic))),
    ):
        (root / folder).mkdir()
        (root / folder / name).write_text(source)
    config = {
        "name": group,
        "models_dir": "models",
        "steps_dir": "steps",
        "model_policies_dir": "policies",
        "pull_steps_dir": "pull_steps",
        "event_steps_dir": "event_steps",
        "event_bus": {"kind": "kafka", "endpoint": endpoint},
        "store": "sqlite:///sync.db",
        "loop_interval_seconds": 30,  # the timer cannot be what wakes it
        "logging": {"level": "INFO", "format": "json", "destination": "sync.log"},
    }
    (root / "sync.yaml").write_text(json.dumps(config))
    return root / "sync.yaml"


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def produce(endpoint: str, topic: str, *events: dict[str, Any]) -> None:
    from xsync.engines.kafka_bus import KafkaEventProducer

    producer = KafkaEventProducer(endpoint)
    try:
        producer.send_all(topic, [(None, json.dumps(e).encode()) for e in events])
    finally:
        producer.close()


def region(api: ModelAccessor, name: str) -> dict[str, Any] | None:
    found = api.store.query("Region", filters={"name": name})
    return found[0] if found else None


@pytest.fixture
def hybrid(tmp_path: Path, kafka_endpoint: str) -> Iterator[tuple[Path, str, ModelAccessor]]:
    topic = unique_name("xs-hybrid")
    config = make_project(tmp_path, kafka_endpoint, topic, unique_name("hybrid"))
    # The broker creates the topic on first use; make that happen before the consumer joins.
    produce(kafka_endpoint, topic, {"name": "first"})
    api = connect(config, actor="user")
    yield config, topic, api
    api.close()


def test_run_with_events_policies_pull_steps_and_sigterm(
    hybrid: tuple[Path, str, ModelAccessor], kafka_endpoint: str
) -> None:
    config, topic, api = hybrid
    process = start(config)
    try:
        # The first event created a region; its policy added a cluster; both got synced.
        assert wait_until(lambda: (r := region(api, "first")) and r["backend_code"] == 1, 60)
        first = region(api, "first")
        assert first is not None
        assert wait_until(
            lambda: [
                c["backend_code"]
                for c in api.store.query("Cluster", filters={"region_id": first["id"]})
            ]
            == [1],
            15,
        )
        # An event that changes an existing, synced object leads to a new sync.
        enacted = first["enacted"]
        produce(kafka_endpoint, topic, {"name": "first", "note": "changed"})
        assert wait_until(
            lambda: (r := region(api, "first"))
            and r["note"] == "changed"
            and r["enacted"] > enacted,
            30,
        )
        # The pull step ran; its no_sync object is left alone.
        assert wait_until(lambda: region(api, "pulled") is not None, 15)
        pulled = region(api, "pulled")
        assert pulled is not None and pulled["enacted"] is None

        # Status from another process: policies and the consumer group's offsets.
        def consumer_caught_up() -> bool:
            result = run_cli("xsync.cli", "status", str(config), "--json")
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert report["policies"]["Region"]["error"] == 0
            parts = report["events"]["partitions"]
            return bool(parts) and all(p["committed"] == 2 and p["lag"] == 0 for p in parts)

        assert wait_until(consumer_caught_up, 30, interval=1.0)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_status_says_when_the_broker_cannot_be_reached(tmp_path: Path) -> None:
    config = make_project(tmp_path, "127.0.0.1:1", "xs-none", "nobroker")
    result = run_cli("xsync.cli", "status", str(config), "--json")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)["events"]
    assert events["partitions"] == [] and "cannot read the consumer group" in events["problem"]
