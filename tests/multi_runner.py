"""Several `xsync run` processes of one synchronizer on a real PostgreSQL store.

Each step call writes a "start" and an "end" line (pid, object, time) to a shared log with
one `write` per line on a file opened for appending, so lines of several processes never mix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ROOT
from sync_project import MODELS

STEPS = """
import os
import time

from xsync import SyncStep

CALLS = {calls!r}
SLEEP = {sleep!r}


def _note(what, obj):
    line = f"{{what}} {{os.getpid()}} {{obj.model_name}} {{obj.id}} {{time.time():.6f}}\\n"
    fd = os.open(CALLS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class CloudStep(SyncStep):
    def sync_record(self, obj):
        _note("start", obj)
        time.sleep(SLEEP)
        _note("end", obj)


class SyncRegion(CloudStep):
    observes = "Region"


class SyncCluster(CloudStep):
    observes = "Cluster"
"""


def make_runner_project(
    root: Path, store: str | None, *, sleep: float = 0.005, **extra: Any
) -> Path:
    """A project whose steps log every call to `root/calls.log`; returns its config."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "cloud.xproto").write_text(MODELS)
    (root / "steps").mkdir(exist_ok=True)
    calls = str(root / "calls.log")
    (root / "steps" / "sync_cloud.py").write_text(STEPS.format(calls=calls, sleep=sleep))
    options: dict[str, Any] = {
        "name": "cloud",
        "models_dir": "models",
        "steps_dir": "steps",
        "store": store,
        "max_workers": 4,
        "lease_seconds": 2,
        "backoff_base_seconds": 1,
        "backoff_cap_seconds": 5,
        "loop_interval_seconds": 0.5,
        "logging": {"level": "WARNING", "format": "json", "destination": "stderr"},
        **extra,
    }
    path = root / "sync.yaml"
    path.write_text(json.dumps(options))
    return path


def start_runner(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", "run", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@dataclass
class Call:
    pid: int
    key: tuple[str, int]
    start: float
    end: float | None = None


@dataclass
class CallLog:
    calls: list[Call] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path, killed: dict[int, float] | None = None) -> CallLog:
        """The calls of the log; a call of a killed pid without an end ends at its kill time."""
        open_calls: dict[tuple[int, str, int], Call] = {}
        log = cls()
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            what, pid, model, oid, at = line.split()
            key = (int(pid), model, int(oid))
            if what == "start":
                call = Call(int(pid), (model, int(oid)), float(at))
                open_calls[key] = call
                log.calls.append(call)
            else:
                open_calls.pop(key).end = float(at)
        for (pid, _, _), call in open_calls.items():
            call.end = (killed or {}).get(pid, float("inf"))
        return log

    def by_object(self) -> dict[tuple[str, int], list[Call]]:
        out: dict[tuple[str, int], list[Call]] = {}
        for call in self.calls:
            out.setdefault(call.key, []).append(call)
        return out

    def overlaps(self) -> list[tuple[Call, Call]]:
        """Pairs of calls on one object that were running at the same time."""
        found = []
        for calls in self.by_object().values():
            calls = sorted(calls, key=lambda c: c.start)
            for first, then in zip(calls, calls[1:]):
                assert first.end is not None
                if then.start < first.end:
                    found.append((first, then))
        return found

    def pids(self) -> set[int]:
        return {call.pid for call in self.calls}


def kill(process: subprocess.Popen[str]) -> float:
    """SIGKILL `process`; the time it was killed."""
    at = time.time()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return at


def stop_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
