"""Everything that touches kafka-python. The engine sees only `KafkaEventConsumer`'s methods.

kafka-python 3.x cannot discover the protocol of a Kafka 0.9 broker on its own, and an XOS
deployment may run one, so `api_version` is pinned; `XSYNC_KAFKA_API_VERSION` ("0.10.2" etc.)
overrides it for newer brokers. Auto-commit is off: the engine commits an offset only after
every step has finished with the event (at-least-once).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from xsync.authoring import Event

if TYPE_CHECKING:
    from xsync.engines.events import DeadLetter

DEFAULT_API_VERSION: tuple[int, ...] = (0, 9)
# Bounds on blocking calls, so that stop() and broker outages never hang the consumer thread.
REQUEST_TIMEOUT_MS = 5_000
COMMIT_TIMEOUT_MS = 5_000
# The broker may hold a fetch this long waiting for data; well below the engine's poll period.
FETCH_MAX_WAIT_MS = 200

PartitionKey = tuple[str, int]
SESSION_TIMEOUT_MS = 10_000


def api_version() -> tuple[int, ...]:
    """The Kafka protocol version to speak, from `XSYNC_KAFKA_API_VERSION` or 0.9."""
    text = os.environ.get("XSYNC_KAFKA_API_VERSION", "").strip()
    if not text:
        return DEFAULT_API_VERSION
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ValueError(
            f"XSYNC_KAFKA_API_VERSION={text!r} is not a version like 0.9 or 2.8.1"
        ) from None


def bootstrap_servers(endpoint: str | Sequence[str]) -> list[str]:
    """Accept "host:port", "h1:p1,h2:p2" or a list of either (XOS configs hold a single string)."""
    parts = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    servers = [s.strip() for part in parts for s in part.split(",") if s.strip()]
    if not servers:
        raise ValueError("the event bus endpoint is empty")
    return servers


class KafkaEventConsumer:
    """A group consumer subscribed to `topics`, speaking in `Event`s and (topic, partition) keys.

    Not thread-safe, like the kafka-python consumer it wraps: one thread uses it.
    """

    def __init__(self, endpoint: str | Sequence[str], group_id: str, topics: Sequence[str]) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers(endpoint),
            api_version=api_version(),
            group_id=group_id,
            enable_auto_commit=False,
            # A new group starts from the beginning, as XOS's "smallest" does.
            auto_offset_reset="earliest",
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            # Back off quickly at first so a returning broker is found within a second or two.
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=2_000,
            # A runner that dies (SIGKILL) keeps its partitions until the broker stops hearing
            # from it: 10 s, not kafka-python's 45, so the other runners take them over soon.
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
        )
        self._consumer.subscribe(topics=list(topics))

    def poll(self, timeout_s: float, max_records: int) -> list[Event]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [_to_event(record) for records in batches.values() for record in records]

    def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Commit, for each partition, the offset of the next event to read."""
        if not offsets:
            return
        self._consumer.commit(
            {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()},
            timeout_ms=COMMIT_TIMEOUT_MS,
        )

    def assignment(self) -> list[PartitionKey]:
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def committed(self, partition: PartitionKey) -> int | None:
        """The group's committed offset (a remote call)."""
        offset = self._consumer.committed(TopicPartition(*partition), timeout_ms=REQUEST_TIMEOUT_MS)
        return offset if isinstance(offset, int) else None

    def highwater(self, partition: PartitionKey) -> int | None:
        """The broker's next offset for `partition`, as last seen in a fetch (no remote call)."""
        try:
            value = self._consumer.highwater(TopicPartition(*partition))
        except Exception:  # noqa: BLE001 - a partition revoked a moment ago just has no figure
            return None
        return value if isinstance(value, int) else None

    def connected(self) -> bool:
        """True while the group coordinator is known and reachable."""
        # kafka-python has no public accessor for this; the coordinator is the broker that
        # must answer for commits, so its reachability is what "connected" should mean here.
        coordinator: Any = getattr(self._consumer, "_coordinator", None)
        try:
            return coordinator is not None and not coordinator.coordinator_unknown()
        except Exception:  # noqa: BLE001 - a half-closed client counts as disconnected
            return False

    def close(self) -> None:
        """Leave the group without committing anything the engine did not commit itself."""
        self._consumer.close(autocommit=False, timeout_ms=REQUEST_TIMEOUT_MS)


def open_consumer(
    endpoint: str | Sequence[str], group_id: str, topics: Sequence[str]
) -> KafkaEventConsumer:
    """The engine's default consumer factory."""
    return KafkaEventConsumer(endpoint, group_id, topics)


class KafkaEventProducer:
    """A small producer for tests, benchmarks and tools that feed event steps."""

    def __init__(self, endpoint: str | Sequence[str]) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers(endpoint),
            api_version=api_version(),
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            retries=5,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=2_000,
        )

    def send(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        self._producer.send(topic, value=value, key=key)

    def send_all(self, topic: str, items: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Send (key, value) pairs and wait until the broker has them all."""
        futures = [self._producer.send(topic, value=value, key=key) for key, value in items]
        self._producer.flush()
        for future in futures:
            future.get(timeout=REQUEST_TIMEOUT_MS / 1000)

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        self._producer.close(timeout=REQUEST_TIMEOUT_MS / 1000)


class KafkaDeadLetters:
    """The engine's dead-letter sink: one message per event given up on, on `topic`.

    The message keeps the event's key; its value is a JSON object with the event's place
    (topic, partition, offset, timestamp), its value (as text, or base64 when not UTF-8), the
    step, the error, the attempts and the consumer group. A send is acknowledged by the broker
    before it returns, or it raises, so an event is never committed without its letter.
    """

    def __init__(self, endpoint: str | Sequence[str], topic: str) -> None:
        self._endpoint = endpoint
        self.topic = topic
        self._lock = threading.Lock()
        self._producer: KafkaEventProducer | None = None

    def __call__(self, letter: DeadLetter) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaEventProducer(self._endpoint)
            producer = self._producer
        value = json.dumps(dead_letter_record(letter), sort_keys=True).encode("utf-8")
        producer.send_all(self.topic, [(letter.event.key, value)])

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close()


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    """The JSON body of a dead letter."""
    event = letter.event
    record: dict[str, Any] = {
        "topic": event.topic,
        "partition": event.partition,
        "offset": event.offset,
        "timestamp": event.timestamp,
        "step": letter.step,
        "error": letter.error,
        "attempts": letter.attempts,
        "group": letter.group,
        "time": round(time.time(), 3),
    }
    for name, raw in (("key", event.key), ("value", event.value)):
        if raw is None:
            record[name] = None
            continue
        try:
            record[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record[f"{name}_base64"] = base64.b64encode(raw).decode("ascii")
    return record


def read_group_offsets(
    endpoint: str | Sequence[str], group_id: str, topics: Sequence[str]
) -> dict[PartitionKey, tuple[int | None, int]]:
    """For `xsync status` from another process: (committed, end offset) per partition.

    Uses manual assignment, so it never joins the group or disturbs a running engine.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers(endpoint),
        api_version=api_version(),
        group_id=group_id,
        enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}  # no such topic yet: nothing committed, nothing to read
        consumer.assign(partitions)
        # ListOffsets v0 (what a 0.9 broker speaks) is reached through seek_to_end + position.
        consumer.seek_to_end(*partitions)
        result: dict[PartitionKey, tuple[int | None, int]] = {}
        for tp in partitions:
            end = consumer.position(tp, timeout_ms=REQUEST_TIMEOUT_MS)
            committed = consumer.committed(tp, timeout_ms=REQUEST_TIMEOUT_MS)
            result[(tp.topic, tp.partition)] = (
                committed if isinstance(committed, int) else None,
                int(end),
            )
        return result
    finally:
        consumer.close(autocommit=False, timeout_ms=REQUEST_TIMEOUT_MS)


def _to_event(record: Any) -> Event:
    timestamp = record.timestamp
    # Message format v0 (Kafka 0.9) has no timestamp; kafka-python reports None or -1.
    if not isinstance(timestamp, int) or timestamp < 0:
        timestamp = None
    return Event(
        topic=record.topic,
        key=record.key,
        value=record.value,
        timestamp=timestamp,
        partition=record.partition,
        offset=record.offset,
    )
