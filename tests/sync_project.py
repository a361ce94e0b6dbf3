"""A synchronizer project on disk (models, steps, config) and ways to run `xsync` on it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from conftest import ROOT, corpus_file

MODELS = """
option app_label = "cloud";

message Region (XOSBase) {
    required string name = 1;
}
message Cluster (XOSBase) {
    required string name = 1;
    required manytoone region->Region:clusters = 2:1001;
}
"""


def make_project(root: Path, steps: str, *, models: str = MODELS, **config: Any) -> Path:
    """`root` as a project with the core models, `models`, one step file and `sync.yaml`."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "core.xproto").write_text(corpus_file("core").read_text())
    (root / "models" / "cloud.xproto").write_text(models)
    (root / "steps").mkdir(exist_ok=True)
    (root / "steps" / "sync_cloud.py").write_text(steps)
    return write_config(root, **config)


def write_config(root: Path, **extra: Any) -> Path:
    options: dict[str, Any] = {
        "name": "cloud",
        "models_dir": "models",
        "steps_dir": "steps",
        "store": "sqlite:///sync.db",
        "backoff_base_seconds": 60,
        "backoff_cap_seconds": 600,
        "loop_interval_seconds": 2,
        "logging": {"level": "INFO", "format": "json", "destination": "sync.log"},
        **extra,
    }
    options = {key: value for key, value in options.items() if value is not None}
    path = root / "sync.yaml"
    path.write_text(json.dumps(options))  # JSON is YAML
    return path


def xsync(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`xsync ARGS` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "xsync.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def start_xsync(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def log_lines(root: Path) -> list[dict[str, Any]]:
    path = root / "sync.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")
