"""`xoskafka.XOSKafkaProducer`: a process-wide producer that CORD code publishes events with."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .settings import Config

log = logging.getLogger("xsync.synchronizer.kafka")


class XOSKafkaProducer:
    """`init()` once, then `produce(topic, key, value)`; `close()` flushes and disconnects."""

    _lock = threading.Lock()
    _producer: Any = None

    @classmethod
    def init(cls) -> None:
        from ...engines.kafka_bus import api_version, bootstrap_servers
        from kafka import KafkaProducer  # type: ignore[import-untyped]

        with cls._lock:
            if cls._producer is not None:
                raise Exception("XOSKafkaProducer already initialized")
            servers = Config.get("kafka_bootstrap_servers")
            endpoint = Config.get("event_bus.endpoint")
            if endpoint and not _configured_in_xos_file("kafka_bootstrap_servers"):
                servers = endpoint  # the bus xsync was told about, not XOS's container default
            cls._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers(servers),
                api_version=api_version(),
                request_timeout_ms=5_000,
                max_block_ms=5_000,
            )

    @classmethod
    def produce(cls, topic: str, key: str | bytes | None, value: str | bytes) -> None:
        with cls._lock:
            producer = cls._producer
        if producer is None:
            raise Exception("XOSKafkaProducer is not initialized; call XOSKafkaProducer.init()")
        future = producer.send(topic, value=_bytes(value), key=_bytes(key))
        future.add_errback(lambda exc: log.error("Message failed delivery: %s", exc))

    @classmethod
    def flush(cls, timeout: float = 10.0) -> None:
        with cls._lock:
            producer = cls._producer
        if producer is not None:
            producer.flush(timeout=timeout)

    @classmethod
    def close(cls, timeout: float = 10.0) -> None:
        with cls._lock:
            producer, cls._producer = cls._producer, None
        if producer is not None:
            producer.flush(timeout=timeout)
            producer.close(timeout=timeout)


def _bytes(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _configured_in_xos_file(key: str) -> bool:
    from .settings import snapshot

    _, values, _ = snapshot()
    return key in values
