"""Logs and metrics: one log line per sync, optional JSON lines, a Prometheus endpoint.

The engines count into plain dicts (cheap, under one lock); `prometheus_client` turns them
into the exposition format and serves it, and is imported only when metrics are read.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

if TYPE_CHECKING:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.metrics_core import Metric

M = TypeVar("M", "CounterMetricFamily", "GaugeMetricFamily")
# (model, state) -> how many objects are in that state (see `backend_state.count_states`).
ObjectCounter = Callable[[], Mapping[tuple[str, str], int]]

LOGGER_NAME = "xsync"
# Attributes every LogRecord has; anything else was passed through `extra=` and is context.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class ContextTextFormatter(logging.Formatter):
    """Plain text with the `extra=` fields appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        ]
        return f"{text} {' '.join(extras)}" if extras else text


def setup_logging(
    options: Mapping[str, Any] | None, *, base_dir: Path | None = None
) -> logging.Logger:
    """Configure the `xsync` logger from the config's `logging` section.

    Keys: `level` (name, default INFO), `format` ("text" or "json"), `destination`
    ("stderr", "stdout" or a file path, relative to `base_dir`). Returns the logger.
    """
    options = options or {}
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.setLevel(str(options.get("level", "INFO")).upper())
    logger.propagate = False
    destination = str(options.get("destination", "stderr"))
    handler: logging.Handler
    if destination == "stderr":
        handler = logging.StreamHandler(sys.stderr)
    elif destination == "stdout":
        handler = logging.StreamHandler(sys.stdout)
    else:
        path = Path(destination)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        handler = logging.FileHandler(path, encoding="utf-8")
    if str(options.get("format", "text")) == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(
            ContextTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    logger.addHandler(handler)
    return logger


class Metrics:
    """Counters and gauges the engines update; a `prometheus_client` collector of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._syncs: dict[tuple[str, str], int] = defaultdict(int)
        self._errors: dict[str, int] = defaultdict(int)
        self._pending: dict[str, int] = {}
        self._backing_off: dict[str, int] = {}
        self._seconds: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)
        self._events: dict[tuple[str, str], int] = defaultdict(int)
        self._objects: ObjectCounter | None = None
        self._leader: int | None = None  # with several runners: 1 while this one leads
        self._log = logging.getLogger(LOGGER_NAME)

    def set_leader(self, leading: bool) -> None:
        with self._lock:
            self._leader = int(leading)

    def count_objects_with(self, counter: ObjectCounter) -> None:
        """`xsync_objects{model,state}` is read from `counter` at each scrape."""
        self._objects = counter

    def observe_event(self, topic: str, outcome: str, n: int = 1) -> None:
        """Events by topic and outcome: processed, retried, dead_lettered, dropped."""
        with self._lock:
            self._events[(topic, outcome)] += n

    def events(self, topic: str, outcome: str) -> int:
        with self._lock:
            return self._events.get((topic, outcome), 0)

    def observe_sync(self, model: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self._syncs[(model, outcome)] += 1
            if outcome == "failed":
                self._errors[model] += 1
            self._seconds[model] += seconds
            self._count[model] += 1

    def observe_elsewhere(self, model: str) -> None:
        """An object skipped because another runner holds its lease (not a step call)."""
        with self._lock:
            self._syncs[(model, "elsewhere")] += 1

    def set_queue(self, model: str, *, pending: int, backing_off: int) -> None:
        with self._lock:
            self._pending[model] = pending
            self._backing_off[model] = backing_off

    def syncs(self, model: str, outcome: str) -> int:
        with self._lock:
            return self._syncs.get((model, outcome), 0)

    def collect(self) -> Iterator[Metric]:
        """The metric families, as `prometheus_client`'s registry asks a collector for them."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        with self._lock:
            duration = SummaryMetricFamily(
                "xsync_step_duration_seconds",
                "Time spent in step code, by model.",
                labels=["model"],
            )
            for model, n in sorted(self._count.items()):
                duration.add_metric([model], count_value=n, sum_value=self._seconds[model])
            families: list[Metric] = [
                _filled(
                    CounterMetricFamily(
                        "xsync_syncs",
                        "Objects processed, by model and outcome.",
                        labels=["model", "outcome"],
                    ),
                    self._syncs.items(),
                ),
                _filled(
                    CounterMetricFamily(
                        "xsync_errors", "Failed syncs and deletions, by model.", labels=["model"]
                    ),
                    (((m,), n) for m, n in self._errors.items()),
                ),
                _filled(
                    GaugeMetricFamily(
                        "xsync_pending",
                        "Objects fetched as pending in the last pass.",
                        labels=["model"],
                    ),
                    (((m,), n) for m, n in self._pending.items()),
                ),
                _filled(
                    GaugeMetricFamily(
                        "xsync_backing_off",
                        "Objects waiting for their backoff to expire.",
                        labels=["model"],
                    ),
                    (((m,), n) for m, n in self._backing_off.items()),
                ),
                duration,
                _filled(
                    CounterMetricFamily(
                        "xsync_events",
                        "Events from the event bus, by topic and outcome.",
                        labels=["topic", "outcome"],
                    ),
                    self._events.items(),
                ),
            ]
            if self._leader is not None:
                leader = GaugeMetricFamily(
                    "xsync_leader", "1 while this runner leads (runs policies, pull steps)."
                )
                leader.add_metric([], self._leader)
                families.append(leader)
        yield from families
        objects = self._object_family()
        if objects is not None:
            yield objects

    def _object_family(self) -> Metric | None:
        from prometheus_client.core import GaugeMetricFamily

        if self._objects is None:
            return None
        try:
            counts = self._objects()
        except Exception as exc:  # noqa: BLE001 - a scrape while the store is down still answers
            self._log.warning(
                "counting objects for xsync_objects failed", extra={"error": str(exc)}
            )
            return None
        return _filled(
            GaugeMetricFamily(
                "xsync_objects",
                "Objects of the synchronized models, by model and sync state (as xsync status).",
                labels=["model", "state"],
            ),
            counts.items(),
        )

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry).decode("utf-8")


def _filled(family: M, rows: Iterable[tuple[Sequence[str], float]]) -> M:
    for labels, value in sorted(rows):
        family.add_metric(list(labels), value)
    return family


class MetricsServer:
    """Serves `/metrics` (`prometheus_client`'s server) on a daemon thread until `close()`."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
