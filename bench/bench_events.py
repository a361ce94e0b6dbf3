"""Events per second through a no-op `process_event`, from the real Kafka broker.

Usage: python bench/bench_events.py [--events N] [--runs R] [--append docs/performance.md]

Each run produces N events to a fresh topic, then starts an `EventEngine` in a fresh consumer
group and times it until the last offset is committed. Two figures per run: the whole run
(group join included) and the steady rate (first event handled to last offset committed).
The broker must be running: `tests/services/kafka.sh start`.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from xsync import Event, EventStep
from xsync.engines.events import EventEngine
from xsync.engines.kafka_bus import KafkaEventProducer

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class RunResult:
    events: int
    total_seconds: float
    steady_seconds: float

    @property
    def total_rate(self) -> float:
        return self.events / self.total_seconds

    @property
    def steady_rate(self) -> float:
        return self.events / self.steady_seconds if self.steady_seconds > 0 else float("inf")


def run_once(endpoint: str, events: int) -> RunResult:
    topic = f"bench-events-{uuid.uuid4().hex[:10]}"
    producer = KafkaEventProducer(endpoint)
    try:
        producer.send_all(topic, ((b"%d" % i, b'{"n": %d}' % i) for i in range(events)))
    finally:
        producer.close()

    first_seen = threading.Event()
    first_at = [0.0]

    class NoOp(EventStep):
        topics = [topic]

        def process_event(self, event: Event) -> None:
            if not first_seen.is_set():
                first_at[0] = time.perf_counter()
                first_seen.set()

    engine = EventEngine(
        [NoOp], endpoint, f"bench-{uuid.uuid4().hex[:10]}", None, logging.getLogger("bench")
    )
    started = time.perf_counter()
    engine.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            states = engine.status()
            if states and states[0].committed == events:
                break
            time.sleep(0.005)
        else:
            raise RuntimeError(f"the engine did not commit {events} events within 300 s")
        finished = time.perf_counter()
    finally:
        engine.stop(10)
    return RunResult(events, finished - started, finished - first_at[0])


def report(results: list[RunResult], endpoint: str) -> str:
    total = statistics.median(r.total_rate for r in results)
    steady = statistics.median(r.steady_rate for r in results)
    join = statistics.median(r.total_seconds - r.steady_seconds for r in results)
    return "\n".join(
        [
            f"### Event steps: events/s through a no-op `process_event` ({time.strftime('%Y-%m-%d')})",
            "",
            f"`bench/bench_events.py`: Kafka 0.9.0.1 on {endpoint} (same host), kafka-python, one partition,",
            f"{results[0].events} events of ~10 bytes per run, {len(results)} runs, median shown;",
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs shared with other work.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| steady rate (first event handled to last offset committed) | {steady:,.0f} events/s |",
            f"| whole run, group join included | {total:,.0f} events/s |",
            f"| group join and first fetch | {join * 1000:,.0f} ms |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--endpoint", default=f"127.0.0.1:{os.environ.get('XSYNC_KAFKA_PORT', '29092')}"
    )
    parser.add_argument("--append", type=Path, help="append the figures to this Markdown file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    # kafka-python logs its own socket teardown races at ERROR; they are noise for a benchmark.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        results = [run_once(args.endpoint, args.events) for _ in range(args.runs)]
    except Exception as error:  # noqa: BLE001 - a benchmark reports, it does not trace back
        print(f"bench_events: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    text = report(results, args.endpoint)
    print(text)
    if args.append is not None:
        with args.append.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
