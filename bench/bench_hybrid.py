"""Event-to-sync latency of `xsync run` in the long-running mode, with the real Kafka broker.

Usage: python bench/bench_hybrid.py [--events N] [--append docs/performance.md]

A synchronizer project is written to a temporary directory (one model, one sync step, one
event step and one model policy) and `xsync run` is started on it as a subprocess. For each
event: produce `{"name": ...}`, the event step saves a Region with
`always_update_timestamp=True`, the policy pass and the sync step run; the clock stops when
this process sees the Region's `enacted` set in the store. Events go one at a time, so the
figure is latency, not throughput. The broker must be running: `tests/services/kafka.sh start`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from xsync.connect import connect
from xsync.engines.kafka_bus import KafkaEventProducer

ROOT = Path(__file__).resolve().parent.parent

MODELS = """
option app_label = "bench";

message Region (XOSBase) {
    required string name = 1;
}
"""

STEP = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        pass
"""

POLICY = """
from xsync import Policy


class RegionPolicy(Policy):
    model_name = "Region"
"""

EVENT_STEP = """
import json

from xsync import EventStep


class RegionEvents(EventStep):
    topics = [TOPIC]

    def process_event(self, event):
        self.model_accessor.Region(name=json.loads(event.value)["name"]).save(
            always_update_timestamp=True
        )
"""


def write_project(root: Path, endpoint: str, topic: str) -> Path:
    (root / "models").mkdir()
    core = ROOT.parent / "shared" / "corpus" / "xproto" / "core.xproto"
    (root / "models" / "core.xproto").write_text(core.read_text())
    (root / "models" / "bench.xproto").write_text(MODELS)
    for folder, source in (
        ("steps", STEP),
        ("policies", POLICY),
        ("event_steps", EVENT_STEP.replace("TOPIC", repr(topic))),
    ):
        (root / folder).mkdir()
        (root / folder / f"{folder}.py").write_text(source)
    config = {
        "name": f"bench-hybrid-{uuid.uuid4().hex[:8]}",
        "models_dir": "models",
        "steps_dir": "steps",
        "model_policies_dir": "policies",
        "event_steps_dir": "event_steps",
        "event_bus": {"kind": "kafka", "endpoint": endpoint},
        "store": "sqlite:///bench.db",
        "loop_interval_seconds": 30,
        "logging": {"level": "WARNING", "destination": "sync.log"},
    }
    (root / "sync.yaml").write_text(json.dumps(config))
    return root / "sync.yaml"


def wait_enacted(api: object, name: str, timeout: float) -> float:
    store = api.store  # type: ignore[attr-defined]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        found = store.query("Region", filters={"name": name})
        if found and found[0]["enacted"] is not None:
            return time.perf_counter()
        time.sleep(0.002)
    raise SystemExit(f"bench_hybrid: {name} was not synced within {timeout} s")


def measure(endpoint: str, events: int) -> list[float]:
    topic = f"bench-hybrid-{uuid.uuid4().hex[:10]}"
    producer = KafkaEventProducer(endpoint)
    with tempfile.TemporaryDirectory() as folder:
        config = write_project(Path(folder), endpoint, topic)
        producer.send_all(topic, [(None, b'{"name": "warm-up"}')])  # creates the topic
        process = subprocess.Popen(
            [sys.executable, "-m", "xsync.cli", "run", str(config)], cwd=ROOT
        )
        api = connect(config, actor="user")
        try:
            wait_enacted(api, "warm-up", 120)  # group join and first sync
            latencies = []
            for i in range(events):
                name = f"ev-{i}"
                sent = time.perf_counter()
                producer.send_all(topic, [(None, json.dumps({"name": name}).encode())])
                latencies.append(wait_enacted(api, name, 30) - sent)
            return latencies
        finally:
            api.close()
            producer.close()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def report(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return (
        f"\n## Hybrid: event-to-sync latency, long-running mode (bench/bench_hybrid.py, "
        f"{time.strftime('%Y-%m-%d')})\n\n"
        f"`xsync run` (subprocess) with one event step, one model policy and one sync step, embedded "
        f"SQLite store, Kafka 0.9.0.1 on loopback; {len(ms)} events sent one at a time; clock from "
        f"produce to `enacted` seen by the measuring process. {platform.python_version()}, "
        f"{os.cpu_count()} cores shared with other work.\n\n"
        f"| events | median ms | p95 ms | min ms | max ms |\n|---:|---:|---:|---:|---:|\n"
        f"| {len(ms)} | {statistics.median(ms):.1f} | {p95:.1f} | {ms[0]:.1f} | {ms[-1]:.1f} |\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--endpoint", default=os.environ.get("XSYNC_KAFKA", "127.0.0.1:29092"))
    parser.add_argument("--append", metavar="FILE", help="append the figures to this Markdown file")
    args = parser.parse_args()
    text = report(measure(args.endpoint, args.events))
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as stream:
            stream.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
