"""Model policies on a real store (SQLite file; PostgreSQL too, skipped locally when absent).

Reference section 7 with the defects of section 11 fixed: every handler once per change,
`after_policy_save` for every policy, backoff on failure, policies before sync in a pass,
and deleted objects reaped only after their delete policies ran.
"""

from __future__ import annotations

import time

import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import CORE_XPROTO, run_cli
from pg import fresh_schema
from xprotogen.loader import load_schema
from xprotogen.schema import Schema
from xprotogen.targets.deps import model_deps
from xsync import Policy, SyncStep
from xsync.backoff import BackoffPolicy
from xsync.connect import ModelAccessor
from xsync.backend_state import policy_register
from xsync.engines.policies import PolicyEngine, PolicyOutcome
from xsync.engines.sync import SyncEngine
from xsync.loader import StepLoadError, load_policies
from xsync.runner import Runner
from xsync.store import open_store
from xsync.store.base import PendingQuery, Store

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


class Journal:
    """What handlers and steps were called with, shared by every instance."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, int]] = []
        self.fail_regions: set[str] = set()

    def add(self, what: str, obj: Any) -> None:
        with self.lock:
            self.calls.append((what, obj.model_name, obj.id))

    def of(self, what: str) -> list[tuple[str, int]]:
        return [(m, i) for w, m, i in self.calls if w == what]


J = Journal()


class RecordingPolicy(Policy):
    """A shared base without model_name: not a policy itself."""

    def handle_create(self, obj: Any) -> None:
        J.add(f"{type(self).__name__}.create", obj)

    def handle_update(self, obj: Any) -> None:
        J.add(f"{type(self).__name__}.update", obj)

    def handle_delete(self, obj: Any) -> None:
        J.add(f"{type(self).__name__}.delete", obj)


class RegionPolicy(RecordingPolicy):
    """Gives every new region a default cluster, through the policy accessor."""

    model_name = "Region"

    def handle_create(self, obj: Any) -> None:
        super().handle_create(obj)
        if obj.name in J.fail_regions:
            raise RuntimeError(f"cannot police {obj.name}")
        self.model_accessor.Cluster(name=f"{obj.name}-default", region_id=obj.id).save()

    def after_policy_save(self, obj: Any) -> None:
        J.add("RegionPolicy.after", obj)


class RegionAudit(RecordingPolicy):
    model_name = "Region"

    def after_policy_save(self, obj: Any) -> None:
        J.add("RegionAudit.after", obj)


class RegionQuiet(RecordingPolicy):
    """No after_policy_save: must not stop the others' (XOS honoured only the last policy's)."""

    model_name = "Region"


class Step(SyncStep):
    def sync_record(self, obj: Any) -> None:
        J.add("sync", obj)

    def delete_record(self, obj: Any) -> None:
        J.add("delete", obj)


class SyncRegion(Step):
    observes = "Region"


class SyncCluster(Step):
    observes = "Cluster"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, store: Store, schema: Schema) -> None:
        self.store = store
        self.user = ModelAccessor(store, schema, actor="user", owns_store=False)
        self.sync_api = ModelAccessor(store, schema, actor="synchronizer", owns_store=False)
        self.clock = Clock()
        self.schema = schema

    def policies(self, *classes: type[Policy]) -> PolicyEngine:
        return PolicyEngine(
            self.store,
            list(classes or (RegionPolicy, RegionAudit, RegionQuiet)),
            accessor=self.sync_api.as_actor("policy"),
            backoff=BackoffPolicy(base_seconds=10, cap_seconds=100, jitter=0),
            clock=self.clock,
        )

    def runner(self, policies: PolicyEngine) -> Runner:
        engine = SyncEngine(
            self.store,
            [SyncCluster, SyncRegion],
            model_deps(self.schema),
            wrap=lambda model, record: self.sync_api.get_model_class(model).from_record(record),
            accessor=self.sync_api,
            clock=self.clock,
            hold_deletion=policies.awaits_delete_policy,
        )
        return Runner(engine, self.store, clock=self.clock, policies=policies)

    def region(self, name: str) -> int:
        return int(self.store.create("Region", {"name": name})["id"])

    def row(self, model: str, id: int) -> dict[str, Any]:
        return self.store.get(model, id, include_deleted=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    J.__init__()  # type: ignore[misc]
    path = tmp_path / "cloud.xproto"
    path.write_text(MODELS)
    schema = load_schema([CORE_XPROTO, path])
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'p.db'}", schema)
        yield World(store, schema)
        store.close()
    else:
        with fresh_schema() as url:
            store = open_store(url, schema)
            yield World(store, schema)
            store.close()


# --- handlers ------------------------------------------------------------------------


def test_create_update_and_delete_each_call_the_right_handler_once(world: World) -> None:
    engine = world.policies(RegionAudit)
    rid = world.region("eu")
    engine.run_pass()
    engine.run_pass()  # nothing changed: nothing more is called
    assert J.calls == [("RegionAudit.create", "Region", rid), ("RegionAudit.after", "Region", rid)]

    world.store.update("Region", rid, {"name": "europe"})
    engine.run_pass()
    engine.run_pass()
    assert J.of("RegionAudit.update") == [("Region", rid)]

    world.store.delete("Region", rid)
    engine.run_pass()
    engine.run_pass()
    assert J.of("RegionAudit.delete") == [("Region", rid)]
    assert J.of("RegionAudit.create") == [("Region", rid)]
    assert len(J.of("RegionAudit.update")) == 1


def test_success_writes_policed_done_and_code_1_without_making_the_object_dirty(
    world: World,
) -> None:
    rid = world.region("eu")
    before = world.row("Region", rid)
    world.policies(RegionAudit).run_pass()
    row = world.row("Region", rid)
    assert (row["policed"], row["policy_code"], row["policy_status"]) == (
        before["updated"],
        1,
        "done",
    )
    assert row["updated"] == before["updated"]
    assert row["changed_by_step"] is None and row["changed_by_policy"] is None
    assert world.store.pending("Region", PendingQuery.DIRTY_POLICIES) == []


def test_a_sync_steps_important_change_calls_handle_update(world: World) -> None:
    engine = world.policies(RegionAudit)
    rid = world.region("eu")
    engine.run_pass()
    world.store.update("Region", rid, {"name": "eu-synced"}, actor="synchronizer")
    engine.run_pass()
    assert J.of("RegionAudit.update") == [("Region", rid)]


def test_after_policy_save_runs_for_every_policy_that_has_it(world: World) -> None:
    # RegionQuiet (no hook) comes last: XOS would have called no hook at all.
    rid = world.region("eu")
    world.policies(RegionPolicy, RegionAudit, RegionQuiet).run_pass()
    assert J.of("RegionPolicy.after") == [("Region", rid)]
    assert J.of("RegionAudit.after") == [("Region", rid)]
    assert J.of("RegionQuiet.create") == [("Region", rid)]


def test_saves_inside_handlers_are_policy_saves(world: World) -> None:
    rid = world.region("eu")
    world.policies(RegionPolicy).run_pass()
    cluster = world.store.query("Cluster", filters={"region_id": rid})[0]
    assert cluster["name"] == "eu-default"
    # Created by the policy actor: due for sync, never policed yet.
    assert [r["id"] for r in world.store.pending("Cluster", PendingQuery.DIRTY_OBJECTS)] == [
        cluster["id"]
    ]


# --- failures and backoff -----------------------------------------------------------


def test_failing_policy_sets_code_2_keeps_the_others_running_and_backs_off(world: World) -> None:
    J.fail_regions.add("bad")
    engine = world.policies(RegionPolicy, RegionAudit)
    rid = world.region("bad")
    report = engine.run_pass()
    assert report.outcomes[("Region", rid)] == ("create", PolicyOutcome.FAILED)
    row = world.row("Region", rid)
    assert row["policy_code"] == 2
    assert row["policy_status"] == "cannot police bad"
    assert row["policed"] is None
    # The other policy still ran; no after_policy_save for a failed object.
    assert J.of("RegionAudit.create") == [("Region", rid)]
    assert J.of("RegionAudit.after") == []
    register = policy_register(row["backend_register"])
    assert (register.failures, register.next_run) == (1, world.clock.now + 10)

    # Backing off: not retried before next_run, and the report says when it will be.
    world.clock.now += 9
    report = engine.run_pass()
    assert report.worked == 0 and report.next_retry == 1_000_010.0
    assert len(J.of("RegionPolicy.create")) == 1

    # Due again: retried, fails, and the delay doubles.
    world.clock.now += 1
    engine.run_pass()
    assert len(J.of("RegionPolicy.create")) == 2
    assert policy_register(world.row("Region", rid)["backend_register"]).next_run == (
        world.clock.now + 20
    )

    # Fixed: succeeds at the next due time and the backoff is cleared.
    J.fail_regions.clear()
    world.clock.now += 20
    engine.run_pass()
    row = world.row("Region", rid)
    assert (row["policy_code"], row["policy_status"]) == (1, "done")
    assert policy_register(row["backend_register"]).failures == 0


def test_policy_backoff_survives_a_new_engine(world: World) -> None:
    J.fail_regions.add("bad")
    world.region("bad")
    world.policies(RegionPolicy).run_pass()
    fresh = world.policies(RegionPolicy)  # as after a restart: only the store remembers
    world.clock.now += 5
    assert fresh.run_pass().worked == 0
    assert len(J.of("RegionPolicy.create")) == 1


def test_policy_backoff_is_kept_apart_from_the_sync_register(world: World) -> None:
    J.fail_regions.add("bad")
    rid = world.region("bad")
    world.store.update(
        "Region", rid, {"backend_register": json.dumps({"failures": 3})}, actor="synchronizer"
    )
    world.policies(RegionPolicy).run_pass()
    data = json.loads(world.row("Region", rid)["backend_register"])
    assert data["failures"] == 3 and data["policy"]["failures"] == 1


# --- with the sync engine -------------------------------------------------------------


def test_policy_created_object_is_synced_in_the_same_pass_in_dependency_order(
    world: World,
) -> None:
    runner = world.runner(world.policies(RegionPolicy))
    rid = world.region("eu")
    runner.run_once()
    cluster = world.store.query("Cluster", filters={"region_id": rid})[0]
    synced = J.of("sync")
    assert synced == [("Region", rid), ("Cluster", cluster["id"])]
    assert world.row("Cluster", cluster["id"])["backend_code"] == 1
    assert J.calls.index(("RegionPolicy.create", "Region", rid)) < J.calls.index(
        ("sync", "Region", rid)
    )


def test_until_idle_is_idle_once_policies_and_sync_are_done(world: World) -> None:
    runner = world.runner(world.policies(RegionPolicy))
    world.region("eu")
    assert runner.run_until_idle(timeout=30)
    assert len(J.of("RegionPolicy.create")) == 1
    assert len(J.of("sync")) == 2


def test_deleted_object_is_reaped_only_after_its_delete_policy_ran(world: World) -> None:
    policies = world.policies(RegionAudit)
    runner = world.runner(policies)
    rid = world.region("eu")
    runner.run_once()
    world.store.delete("Region", rid)
    # The sync engine alone (no policy pass) must not delete or reap it.
    runner.engine.run_pass()
    assert world.row("Region", rid)["deleted"] and J.of("delete") == []
    runner.run_once()
    assert J.of("RegionAudit.delete") == [("Region", rid)]
    assert J.of("delete") == [("Region", rid)]
    assert world.store.query("Region", deleted=None) == []


def test_backend_need_delete_policy_holds_an_object_without_local_policies(world: World) -> None:
    runner = world.runner(world.policies(RegionAudit))
    cid = int(world.store.create("Cluster", {"name": "c", "region_id": world.region("eu")})["id"])
    runner.run_once()
    world.store.update("Cluster", cid, {"backend_need_delete_policy": True}, actor="synchronizer")
    world.store.delete("Cluster", cid)
    runner.run_once()
    assert world.row("Cluster", cid)["deleted"]  # policed elsewhere, not yet: kept
    world.store.update(
        "Cluster", cid, {"policed": world.row("Cluster", cid)["updated"]}, actor="synchronizer"
    )
    runner.run_once()
    assert world.store.query("Cluster", deleted=None) == []


# --- discovery -------------------------------------------------------------------------


def test_discovery_finds_indirect_subclasses_and_skips_bases(tmp_path: Path) -> None:
    (tmp_path / "base_policy.py").write_text(
        "from xsync import Policy\nclass Base(Policy):\n    pass\n"
    )
    (tmp_path / "region_policy.py").write_text(
        "from base_policy import Base\n"
        "class RegionPolicy(Base):\n    model_name = 'Region'\n"
        "class ClusterPolicy(RegionPolicy):\n    model_name = 'Cluster'\n"
    )
    (tmp_path / "test_ignored.py").write_text("raise SystemExit('never imported')\n")
    found = load_policies(tmp_path)
    assert [p.__name__ for p in found] == ["RegionPolicy", "ClusterPolicy"]


def test_discovery_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken_policy.py").write_text("from xsync import Policy\n1/0\n")
    with pytest.raises(StepLoadError, match=r"broken_policy.py:2: ZeroDivisionError"):
        load_policies(tmp_path)


def _project(tmp_path: Path, policy_source: str) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "core.xproto").write_text(CORE_XPROTO.read_text())
    (tmp_path / "models" / "cloud.xproto").write_text(MODELS)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "model_policy_region.py").write_text(policy_source)
    config = {
        "name": "cloud",
        "models_dir": "models",
        "model_policies_dir": "policies",
        "store": "sqlite:///p.db",
        "backoff_base_seconds": 60,
        "logging": {"level": "WARNING", "destination": "sync.log"},
    }
    (tmp_path / "sync.yaml").write_text(json.dumps(config))
    return tmp_path / "sync.yaml"


def test_policy_for_an_unknown_model_is_one_line_naming_the_file(tmp_path: Path) -> None:
    config = _project(
        tmp_path, "from xsync import Policy\nclass P(Policy):\n    model_name = 'Nope'\n"
    )
    result = run_cli("xsync.cli", "run", str(config), "--once")
    assert result.returncode == 1
    assert "model_policy_region.py: policy P has model_name 'Nope'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_policy_file_that_fails_to_import_is_one_line_naming_it(tmp_path: Path) -> None:
    config = _project(tmp_path, "import no_such_module_here\n")
    result = run_cli("xsync.cli", "run", str(config), "--once")
    assert result.returncode == 1
    assert "model_policy_region.py:1: ModuleNotFoundError" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


POLICY_FILE = """
from xsync import Policy


class RegionPolicy(Policy):
    model_name = "Region"

    def handle_create(self, obj):
        if obj.name.startswith("bad"):
            raise RuntimeError("no quota for " + obj.name)
"""


def test_run_once_and_status_json_report_policy_failures(tmp_path: Path) -> None:
    config = _project(tmp_path, POLICY_FILE)
    with _user(config) as api:
        api.Region(name="good").save()
        bad = api.Region(name="bad")
        bad.save()
        api.Region(name="bad2").save()
    assert run_cli("xsync.cli", "run", str(config), "--once").returncode == 0
    result = run_cli("xsync.cli", "status", str(config), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"models", "blocked", "failing", "held_back", "policies"}
    region = report["policies"]["Region"]
    assert {k: region[k] for k in ("ok", "pending", "error", "backing_off")} == {
        "ok": 1,
        "pending": 0,
        "error": 2,  # failed, and waiting for their backoff
        "backing_off": 0,
    }
    assert region["next_retry"] > time.time()
    assert {"id": bad.id, "status": "no quota for bad"} in region["errors"]
    text = run_cli("xsync.cli", "status", str(config))
    assert f"Region {bad.id}: no quota for bad" in text.stdout


def _user(config: Path) -> ModelAccessor:
    from xsync.connect import connect

    return connect(config, actor="user")
