"""A synchronizer project on disk (models, steps, config) and ways to run `xsync` on it."""

from __future__ import annotations

import json
import socket
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


USER, PASSWORD = "sync", "s3cret-pass"  # what `Core` asks of its callers


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
    text = path.read_text()
    lines = text.splitlines()
    if not text.endswith("\n"):
        lines = lines[:-1]  # still being written by a running process
    return [json.loads(line) for line in lines if line.strip()]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def non_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the interface
        return str(probe.getsockname()[0])


class Core:
    """`xsync core` serving the project's models on `endpoint`, TLS or plaintext; with
    `client_ca`, only to callers with a client certificate it signed."""

    def __init__(
        self,
        project: Path,
        listen: str,
        tls: tuple[Path, Path] | None,
        *,
        client_ca: Path | None = None,
    ) -> None:
        config = project / "core.yaml"
        config.write_text(
            json.dumps(
                {
                    "name": "core",
                    "models_dir": "models",
                    "store": "sqlite:///core.db",
                    "accessor": {"endpoint": listen, "username": USER, "password": PASSWORD},
                }
            )
        )
        extra = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
        if client_ca is not None:
            extra += ["--tls-client-ca", str(client_ca)]
        self.process = start_xsync("core", str(config), "--listen", listen, *extra)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "serving" in line, self.process.stderr.read()  # type: ignore[union-attr]
        self.config = config

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_once_syncs_a_region(config: Path) -> None:
    """`xsync run CONFIG --once` exits 0 and syncs a Region saved through `config`."""
    from xsync.connect import connect

    with connect(config) as api:
        region = api.Region(name="eu")
        region.save()
    result = xsync("run", str(config), "--once", timeout=60)
    assert result.returncode == 0, result.stderr
    with connect(config) as api:
        assert api.Region.objects.get(id=region.id).backend_code == 1


def runner_config(
    project: Path, endpoint: str, tls: dict[str, Any] | None, *, password: str = PASSWORD
) -> Path:
    """A synchronizer config that reaches the core at `endpoint` (with `accessor.tls`)."""
    accessor: dict[str, Any] = {"endpoint": endpoint, "username": USER, "password": password}
    if tls is not None:
        accessor["tls"] = tls
    config = project / "sync.yaml"
    config.write_text(
        json.dumps(
            {
                "name": "cloud",
                "models_dir": "models",
                "steps_dir": "steps",
                "accessor": accessor,
                "logging": {"format": "json", "destination": "sync.log"},
            }
        )
    )
    return config
