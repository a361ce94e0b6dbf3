"""Logs and metrics: one log line per sync, optional JSON lines, a Prometheus endpoint.

The endpoint uses the standard library's http.server so that metrics cost no dependency.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping

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
    """Counters and gauges the engine updates; rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._syncs: dict[tuple[str, str], int] = defaultdict(int)
        self._errors: dict[str, int] = defaultdict(int)
        self._pending: dict[str, int] = {}
        self._backing_off: dict[str, int] = {}
        self._seconds: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)
        self._events: dict[tuple[str, str], int] = defaultdict(int)
        self._leader: int | None = None  # with several runners: 1 while this one leads

    def set_leader(self, leading: bool) -> None:
        with self._lock:
            self._leader = int(leading)

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

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP xsync_syncs_total Objects processed, by model and outcome.",
                "# TYPE xsync_syncs_total counter",
                *(
                    f'xsync_syncs_total{{model="{m}",outcome="{o}"}} {n}'
                    for (m, o), n in sorted(self._syncs.items())
                ),
                "# HELP xsync_errors_total Failed syncs and deletions, by model.",
                "# TYPE xsync_errors_total counter",
                *(
                    f'xsync_errors_total{{model="{m}"}} {n}'
                    for m, n in sorted(self._errors.items())
                ),
                "# HELP xsync_pending Objects fetched as pending in the last pass.",
                "# TYPE xsync_pending gauge",
                *(f'xsync_pending{{model="{m}"}} {n}' for m, n in sorted(self._pending.items())),
                "# HELP xsync_backing_off Objects waiting for their backoff to expire.",
                "# TYPE xsync_backing_off gauge",
                *(
                    f'xsync_backing_off{{model="{m}"}} {n}'
                    for m, n in sorted(self._backing_off.items())
                ),
                "# HELP xsync_step_duration_seconds Time spent in step code, by model.",
                "# TYPE xsync_step_duration_seconds summary",
                *(
                    f'xsync_step_duration_seconds_sum{{model="{m}"}} {s:.6f}'
                    for m, s in sorted(self._seconds.items())
                ),
                *(
                    f'xsync_step_duration_seconds_count{{model="{m}"}} {n}'
                    for m, n in sorted(self._count.items())
                ),
                "# HELP xsync_events_total Events from the event bus, by topic and outcome.",
                "# TYPE xsync_events_total counter",
                *(
                    f'xsync_events_total{{topic="{t}",outcome="{o}"}} {n}'
                    for (t, o), n in sorted(self._events.items())
                ),
            ]
            if self._leader is not None:
                lines += [
                    "# HELP xsync_leader 1 while this runner leads (runs policies, pull steps).",
                    "# TYPE xsync_leader gauge",
                    f"xsync_leader {self._leader}",
                ]
        return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `/metrics` on a daemon thread until `close()`."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = _handler_for(metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="xsync-metrics", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler_for(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes every few seconds would drown the sync log.
            pass

    return Handler
