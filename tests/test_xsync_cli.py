"""`xsync run` and `xsync status`, run as a user would: in a subprocess, on a real store."""

from __future__ import annotations

import json
import re
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import CORE_XPROTO, ROOT, run_cli
from xsync.connect import ModelAccessor, connect
from xsync.store.base import PendingQuery

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

STEPS = """
from xsync import SyncStep


class CloudStep(SyncStep):
    def sync_record(self, obj):
        if obj.name.startswith("bad"):
            raise RuntimeError("backend refused " + obj.name)


class SyncRegion(CloudStep):
    observes = "Region"


class SyncCluster(CloudStep):
    observes = ["Cluster"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "core.xproto").write_text(CORE_XPROTO.read_text())
    (tmp_path / "models" / "cloud.xproto").write_text(MODELS)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "sync_cloud.py").write_text(STEPS)
    write_config(tmp_path)
    return tmp_path


def write_config(project: Path, **extra: Any) -> Path:
    options = {
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
    path = project / "sync.yaml"
    path.write_text(json.dumps(options))  # JSON is YAML
    return path


@pytest.fixture
def api(project: Path) -> Iterator[ModelAccessor]:
    accessor = connect(project / "sync.yaml", actor="user")
    yield accessor
    accessor.close()


def xsync(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("xsync.cli", *args)


def test_run_once_syncs_everything_and_exits_0(project: Path, api: ModelAccessor) -> None:
    region = api.Region(name="eu")
    region.save()
    api.Cluster(name="c1", region=region).save()
    result = xsync("run", str(project / "sync.yaml"), "--once")
    assert result.returncode == 0, result.stderr
    assert api.store.pending("Region", PendingQuery.DIRTY_OBJECTS) == []
    assert api.store.pending("Cluster", PendingQuery.DIRTY_OBJECTS) == []
    assert api.Cluster.objects.get(name="c1").backend_status == "OK"


def test_log_has_one_json_line_per_sync_with_model_id_outcome_and_duration(
    project: Path, api: ModelAccessor
) -> None:
    api.Region(name="eu").save()
    api.Region(name="bad").save()
    assert xsync("run", str(project / "sync.yaml"), "--once").returncode == 0
    lines = [json.loads(line) for line in (project / "sync.log").read_text().splitlines()]
    syncs = [line for line in lines if line["message"] == "sync"]
    assert sorted(line["outcome"] for line in syncs) == ["failed", "synced"]
    for line in syncs:
        assert (
            line["model"] == "Region" and isinstance(line["id"], int) and line["duration_ms"] >= 0
        )
    assert [line["error"] for line in syncs if line["outcome"] == "failed"] == [
        "backend refused bad"
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_workerz": 2}, "max_workerz: unknown option (did you mean 'max_workers'?)"),
        ({"max_workers": "four"}, "max_workers: expected an integer >= 1"),
        ({"steps_dir": "nowhere"}, "steps_dir: no such directory"),
    ],
)
def test_invalid_config_exits_1_with_one_line_naming_the_key(
    project: Path, options: dict[str, Any], expected: str
) -> None:
    config = write_config(project, **options)
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(config) in result.stderr and expected in result.stderr


def test_broken_step_file_exits_1_naming_the_file_and_line(project: Path) -> None:
    (project / "steps" / "sync_broken.py").write_text("x = 1\ndef broken(:\n")
    result = xsync("run", str(project / "sync.yaml"), "--once")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "sync_broken.py:2" in result.stderr and "SyntaxError" in result.stderr


def test_step_observing_an_unknown_model_exits_1(project: Path) -> None:
    (project / "steps" / "sync_other.py").write_text(
        "from xsync import SyncStep\nclass S(SyncStep):\n    observes = 'Nope'\n"
    )
    result = xsync("run", str(project / "sync.yaml"), "--once")
    assert result.returncode == 1 and "'Nope'" in result.stderr and "Traceback" not in result.stderr


def test_missing_config_exits_1(tmp_path: Path) -> None:
    result = xsync("status", str(tmp_path / "absent.yaml"))
    assert (
        result.returncode == 1
        and "no such file" in result.stderr
        and "Traceback" not in result.stderr
    )


NONE = {"ok": 0, "pending": 0, "deferred": 0, "held": 0, "backing_off": 0, "error": 0}


def test_status_json_counts_and_blocked_chain(project: Path, api: ModelAccessor) -> None:
    regions = [api.Region(name=f"r{i}") for i in range(3)]
    for region in regions:
        region.save()
    bad = api.Region(name="bad")
    bad.save()
    cluster = api.Cluster(name="c", region=bad)
    cluster.save()
    assert xsync("run", str(project / "sync.yaml"), "--once").returncode == 0
    result = xsync("status", str(project / "sync.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["models"]["Region"]["next_retry"] > time.time()
    assert report == {
        "models": {
            "Region": {
                **NONE,
                "ok": 3,
                "error": 1,
                "next_retry": report["models"]["Region"]["next_retry"],
            },
            "Cluster": {**NONE, "held": 1, "next_retry": None},
        },
        "blocked": [{"model": "Cluster", "id": cluster.id, "waits_for": [["Region", bad.id]]}],
        "failing": [
            {"model": "Region", "message": "backend refused bad", "count": 1, "examples": [bad.id]}
        ],
        "held_back": [
            {
                "model": "Cluster",
                "count": 1,
                "waits_for_model": "Region",
                "waits_for_state": "error",
                "waits_for_count": 1,
                "examples": [{"id": cluster.id, "waits_for": [["Region", bad.id]]}],
            }
        ],
    }
    text = xsync("status", str(project / "sync.yaml"))
    assert text.returncode == 0
    assert f"1 Region: backend refused bad  (Region {bad.id})" in text.stdout
    assert (
        f"1 Cluster waits for 1 failing Region  (e.g. Cluster {cluster.id} -> Region {bad.id})"
        in text.stdout
    )
    # The first retry is base (60 s) less up to 20% jitter, minus the seconds the run took.
    retry_in = re.search(r"in (\d+(?:\.\d+)?)s", text.stdout)
    assert retry_in is not None, text.stdout
    assert 40 <= float(retry_in.group(1)) <= 60


def test_until_idle_stops_when_only_backing_off_work_is_left(
    project: Path, api: ModelAccessor
) -> None:
    api.Region(name="bad").save()
    api.Region(name="good").save()
    started = time.monotonic()
    result = xsync("run", str(project / "sync.yaml"), "--until-idle", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    assert api.Region.objects.get(name="good").backend_code == 1


def _start(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", "run", str(project / "sync.yaml"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _wait_synced(api: ModelAccessor, model: str, id: int, timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.store.get(model, id)["backend_code"] == 1:
            return time.monotonic()
        time.sleep(0.005)
    raise AssertionError(f"{model} {id} was not synced within {timeout} s")


def test_long_running_mode_syncs_on_save_and_stops_cleanly_on_sigterm(
    project: Path, api: ModelAccessor
) -> None:
    write_config(project, loop_interval_seconds=30)  # the timer cannot be what wakes it
    process = _start(project, "--metrics-port", "0")
    try:
        first = api.Region(name="warm-up")
        first.save()
        _wait_synced(api, "Region", first.id, timeout=30)
        latencies = []
        for i in range(5):
            region = api.Region(name=f"r{i}")
            saved = time.monotonic()
            region.save()
            latencies.append(_wait_synced(api, "Region", region.id) - saved)
        assert statistics.median(latencies) < 1.0  # far below the 30 s timer
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_metrics_endpoint_reports_syncs_per_model(project: Path, api: ModelAccessor) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api.Region(name="eu").save()
    api.Region(name="bad").save()
    process = _start(project, "--metrics-port", str(port))
    expected = [
        'xsync_syncs_total{model="Region",outcome="synced"} 1',
        'xsync_errors_total{model="Region"} 1',
        # Every object by its state, classified as `xsync status` does.
        'xsync_objects{model="Region",state="ok"} 1',
        'xsync_objects{model="Region",state="error"} 1',
    ]
    try:
        deadline = time.monotonic() + 30
        body = ""
        while time.monotonic() < deadline:
            try:
                body = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
                    .read()
                    .decode()
                )
            except OSError:
                time.sleep(0.1)
                continue
            if all(line in body for line in expected):
                break
            time.sleep(0.1)
        for line in expected:
            assert line in body
        assert 'xsync_backing_off{model="Region"}' in body
        assert "xsync_step_duration_seconds_count" in body
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
