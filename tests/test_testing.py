"""`xsync.testing.Harness`: a synchronizer's code run in-process on a temporary store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xsync.testing import Call, Harness

MODELS = """option app_label = "lab";

message Region (XOSBase) {
    required string name = 1 [max_length = 40];
}
message Cluster (XOSBase) {
    required string name = 1 [max_length = 40];
    required manytoone region->Region:clusters = 2:1001;
}
"""

STEPS = """from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        if obj.name == "bad":
            raise RuntimeError("the backend refused bad")


class SyncCluster(SyncStep):
    observes = "Cluster"

    def sync_record(self, obj):
        pass
"""

POLICIES = """from xsync import Policy


class RegionPolicy(Policy):
    model_name = "Region"

    def handle_create(self, obj):
        self.model_accessor.Cluster(name=obj.name + "-default", region=obj).save()
"""

PULLS = """from xsync import PullStep


class PullRegions(PullStep):
    def pull_records(self):
        self.model_accessor.Region(name="pulled").save()
"""

EVENTS = """import json

from xsync import EventStep


class RegionEvents(EventStep):
    topics = ["lab.regions"]

    def process_event(self, event):
        self.model_accessor.Region(name=json.loads(event.value)["name"]).save()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder, name, text in (
        ("models", "lab.xproto", MODELS),
        ("steps", "sync_lab.py", STEPS),
        ("model_policies", "policy_region.py", POLICIES),
        ("pull_steps", "pull_regions.py", PULLS),
        ("event_steps", "event_regions.py", EVENTS),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(text)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "name": "lab",
                "models_dir": "models",
                "steps_dir": "steps",
                "model_policies_dir": "model_policies",
                "pull_steps_dir": "pull_steps",
                "event_steps_dir": "event_steps",
                "store": "sqlite:///never-used.db",
            }
        )
    )
    return config


def test_one_pass_runs_policies_then_steps_and_records_the_calls(project: Path) -> None:
    with Harness(project) as h:
        north = h.create("Region", name="north")
        h.run_pass()
        assert h.outcome("Region", north.id) == "synced"
        assert h.status("Region", north.id) == (1, "OK")
        # The pull step is due too in a pass, as in `xsync run --once`.
        assert [r.name for r in h.api.Region.objects.all()] == ["north", "pulled"]
        (cluster,) = h.api.Cluster.objects.all()
        assert cluster.name == "north-default"
        assert h.calls_to("handle_create") == [
            Call("RegionPolicy", "handle_create", "Region", north.id)
        ]
        assert Call("SyncRegion", "sync_record", "Region", north.id) in h.calls
    # The config's own store was never opened.
    assert not (project.parent / "never-used.db").exists()


def test_a_failure_shows_in_the_outcome_and_the_status_and_holds_dependents(project: Path) -> None:
    with Harness(project) as h:
        bad = h.create("Region", name="bad")
        h.run_pass()  # the policy makes bad-default, a Cluster that depends on bad
        h.run_pass()
        assert h.outcome("Region", bad.id) in ("failed", "skipped")
        code, status = h.status("Region", bad.id)
        assert code == 2 and "the backend refused bad" in status
        cluster = h.api.Cluster.objects.get(name="bad-default")
        assert h.outcome("Cluster", cluster.id) == "held"


def test_pull_steps_run_on_demand(project: Path) -> None:
    with Harness(project) as h:
        (run,) = h.run_pull_steps()
        assert run.ok
        assert [r.name for r in h.api.Region.objects.all()] == ["pulled"]
        assert h.calls_to("pull_records") == [Call("PullRegions", "pull_records")]


def test_an_event_is_fed_to_the_steps_of_its_topic(project: Path) -> None:
    with Harness(project) as h:
        assert h.feed_event("lab.regions", json.dumps({"name": "east"})) == 1
        assert h.feed_event("other.topic", "{}") == 0
        assert [r.name for r in h.api.Region.objects.all()] == ["east"]
        assert h.calls_to("process_event") == [Call("RegionEvents", "process_event", "lab.regions")]
        assert h.run_until_idle(timeout=20)
        east = h.api.Region.objects.get(name="east")
        assert h.status("Region", east.id) == (1, "OK")


def test_closing_puts_the_classes_back(project: Path) -> None:
    with Harness(project) as h:
        (step,) = [s for s in h.runtime.steps if s.__name__ == "SyncRegion"]
        recorded = step.sync_record
    assert step.sync_record is not recorded
    with Harness(project) as again:
        again.create("Region", name="west")
        again.run_pass()
        synced = {(c.model, c.id) for c in again.calls_to("sync_record")}
        assert len(synced) == len(again.calls_to("sync_record")) >= 2  # west, west-default, ...
