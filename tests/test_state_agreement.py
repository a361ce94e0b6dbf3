"""`xsync status --json`, the UI's API and the metrics read every object the same way.

One synchronizer run leaves objects in every state (synced, failed, deferred, held back,
backing off, policy failed), each state with its own number of objects, so that agreeing
counts mean agreeing objects. Everything runs as a user runs it: `xsync run`, `xsync status`
and `xsync ui` in subprocesses, on a real SQLite file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import CORE_XPROTO, run_cli
from xsync import backend_state as bs
from xsync.backoff import BackoffPolicy, RetryBook
from xsync.connect import ModelAccessor, connect

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
from xsync import DeferredException, SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        if obj.name.startswith("bad"):
            raise RuntimeError("backend refused " + obj.name)
        if obj.name.startswith("later"):
            raise DeferredException("not yet: " + obj.name)


class SyncCluster(SyncStep):
    observes = "Cluster"
"""

POLICIES = """
from xsync import Policy


class RegionPolicy(Policy):
    model_name = "Region"

    def handle_create(self, obj):
        if obj.name.startswith("nopolicy"):
            raise RuntimeError("no quota for " + obj.name)
"""

# How many objects of each kind the scenario makes: all different.
SYNCED, FAILED, DEFERRED, BACKING_OFF, POLICY_FAILED = 1, 2, 3, 4, 5
HELD_CLUSTERS, GOOD_CLUSTERS = 6, 7


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder, name, text in (
        ("models", "cloud.xproto", MODELS),
        ("steps", "sync_cloud.py", STEPS),
        ("policies", "region_policy.py", POLICIES),
    ):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_text(text)
    (tmp_path / "models" / "core.xproto").write_text(CORE_XPROTO.read_text())
    options = {
        "name": "cloud",
        "models_dir": "models",
        "steps_dir": "steps",
        "model_policies_dir": "policies",
        "store": "sqlite:///sync.db",
        "backoff_base_seconds": 600,
        "backoff_cap_seconds": 600,
    }
    (tmp_path / "sync.yaml").write_text(json.dumps(options))
    return tmp_path


def make_scenario(config: Path) -> None:
    with connect(config, actor="user") as api:
        good = _regions(api, "good", SYNCED)
        bad = _regions(api, "bad", FAILED)
        _regions(api, "later", DEFERRED)
        waiting = _regions(api, "later-waiting", BACKING_OFF)
        _regions(api, "nopolicy", POLICY_FAILED)
        for i in range(HELD_CLUSTERS):
            api.Cluster(name=f"held{i}", region=bad[i % len(bad)]).save()
        for i in range(GOOD_CLUSTERS):
            api.Cluster(name=f"fine{i}", region=good[0]).save()
    result = run_cli("xsync.cli", "run", str(config), "--once")
    assert result.returncode == 0, result.stderr
    # Backing off with no error of its own: a state no single pass leaves (a deferral with a
    # backoff still running from an earlier failure), written here as the synchronizer would.
    with connect(config, actor="synchronizer") as api:
        book = RetryBook(BackoffPolicy(base_seconds=600, cap_seconds=600))
        for region in waiting:
            row = api.store.get("Region", region.id)
            values = bs.failed(
                status="", register=row["backend_register"], message="x", retries=book
            )
            values.update(bs.deferred(status="", register=values["backend_register"], message="y"))
            api.store.update(
                "Region", region.id, values, actor="synchronizer", update_fields=list(values)
            )


def _regions(api: ModelAccessor, prefix: str, count: int) -> list[Any]:
    made = []
    for i in range(count):
        region = api.Region(name=f"{prefix}{i}")
        region.save()
        made.append(region)
    return made


@pytest.fixture
def ui(project: Path) -> Iterator[httpx.Client]:
    make_scenario(project / "sync.yaml")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xsync.cli",
            "ui",
            str(project / "sync.yaml"),
            "--listen",
            "127.0.0.1:0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("xsync ui: serving "), line
        url = line.split()[3]
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_status_and_ui_classify_every_object_the_same_way(project: Path, ui: httpx.Client) -> None:
    result = run_cli("xsync.cli", "status", str(project / "sync.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    states = [s.value for s in bs.STATES]

    regions = {k: status["models"]["Region"][k] for k in states}
    assert regions == {
        "ok": SYNCED + POLICY_FAILED, "pending": 0, "deferred": DEFERRED, "held": 0,
        "backing_off": BACKING_OFF, "error": FAILED,
    }  # fmt: skip
    clusters = {k: status["models"]["Cluster"][k] for k in states}
    assert clusters == {
        "ok": GOOD_CLUSTERS, "pending": 0, "deferred": 0, "held": HELD_CLUSTERS,
        "backing_off": 0, "error": 0,
    }  # fmt: skip
    assert len(status["blocked"]) == HELD_CLUSTERS

    api = {m["name"]: m["counts"] for m in ui.get("/api/models").json()["models"]}
    assert api["Region"] == regions and api["Cluster"] == clusters

    # Policy states: the UI's per-object answer, counted, is what status counts.
    objects = ui.get("/api/objects", params={"model": "Region"}).json()["objects"]
    policy_states = Counter(o["policy_state"] for o in objects)
    policies = status["policies"]["Region"]
    assert {k: policies[k] for k in policy_states} == dict(policy_states)
    assert policies["error"] == POLICY_FAILED
    assert sum(policies[s.value] for s in bs.POLICY_STATES) == len(objects)


def test_policy_backoff_survives_the_sync_that_follows(project: Path) -> None:
    """The policy engine fails an object, then the sync engine syncs it in the same pass: the
    register keeps both writers' parts, so the policy still waits for its backoff."""
    config = project / "sync.yaml"
    make_scenario(config)
    with connect(config, actor="user") as api:
        rows = [r for r in api.store.query("Region") if r["name"].startswith("nopolicy")]
    assert len(rows) == POLICY_FAILED
    for row in rows:
        assert row["backend_code"] == bs.Code.OK and row["policy_code"] == bs.Code.ERROR
        assert bs.sync_register(row["backend_register"]).last_success > 0
        policy = bs.policy_register(row["backend_register"])
        assert policy.failures == 1 and policy.next_run > row["enacted"] + 400
    # A second run leaves them alone: the policy is not due, the object is in sync.
    assert run_cli("xsync.cli", "run", str(config), "--once").returncode == 0
    with connect(config, actor="user") as api:
        again = {r["id"]: r for r in api.store.query("Region")}
    for row in rows:
        assert again[row["id"]]["backend_register"] == row["backend_register"]
