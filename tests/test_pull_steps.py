"""Pull steps: their own intervals, errors that cost one run only, `no_sync` objects left alone."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import CORE_XPROTO
from xprotogen.loader import load_schema
from xprotogen.targets.deps import model_deps
from xsync import PullStep, SyncStep
from xsync.connect import ModelAccessor
from xsync.engines.pull import PullScheduler
from xsync.engines.sync import SyncEngine
from xsync.loader import load_pull_steps
from xsync.runner import Runner
from xsync.store import open_store

MODELS = """
option app_label = "cloud";

message Region (XOSBase) {
    required string name = 1;
}
"""

RUNS: list[str] = []


class Fast(PullStep):
    requested_interval = 10

    def pull_records(self) -> None:
        RUNS.append("fast")


class Slow(PullStep):
    requested_interval = 25

    def pull_records(self) -> None:
        RUNS.append("slow")


class BrokenInit(PullStep):
    requested_interval = 10

    def __init__(self) -> None:  # XOS's documented shape, which its engine cannot build
        super().__init__()

    def pull_records(self) -> None:
        RUNS.append("never")


class Raises(PullStep):
    requested_interval = 10

    def pull_records(self) -> None:
        RUNS.append("raises")
        raise ConnectionError("backend down")


class Monotonic:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_runs() -> None:
    RUNS.clear()


def test_each_step_runs_at_start_then_on_its_own_interval() -> None:
    clock = Monotonic()
    scheduler = PullScheduler([Fast, Slow], accessor=None, clock=clock)
    scheduler.run_due()
    assert RUNS == ["fast", "slow"]
    for _ in range(6):  # 5 s ticks up to t+30
        clock.now += 5
        scheduler.run_due()
    assert RUNS.count("fast") == 4  # t, t+10, t+20, t+30
    assert RUNS.count("slow") == 2  # t, t+25
    assert scheduler.next_due() == 540.0  # fast, last run at t+30


def test_errors_in_constructor_or_pull_records_cost_that_run_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Monotonic()
    scheduler = PullScheduler([BrokenInit, Raises, Fast], accessor=None, clock=clock)
    with caplog.at_level(logging.ERROR):
        runs = scheduler.run_due()
        clock.now += 10
        scheduler.run_due()
    assert [(r.step, r.ok) for r in runs] == [
        ("BrokenInit", False),
        ("Raises", False),
        ("Fast", True),
    ]
    assert "backend down" in (runs[1].error or "")
    assert RUNS == ["raises", "fast", "raises", "fast"]
    assert sum("pull step failed" in r.getMessage() for r in caplog.records) == 4


def test_thread_keeps_running_after_failures_and_stops_on_request() -> None:
    class Quick(PullStep):
        requested_interval = 0.05

        def pull_records(self) -> None:
            RUNS.append("quick")
            raise RuntimeError("every time")

    scheduler = PullScheduler([Quick], accessor=None)
    scheduler.start()
    deadline = time.monotonic() + 10
    while RUNS.count("quick") < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scheduler.stop(timeout=5)
    count = RUNS.count("quick")
    assert count >= 4
    time.sleep(0.2)
    assert RUNS.count("quick") == count  # stopped means stopped


def test_discovery_takes_indirect_subclasses_and_skips_bases(tmp_path: Path) -> None:
    (tmp_path / "pull_base.py").write_text(
        "from xsync import PullStep\nclass Base(PullStep):\n    requested_interval = 5\n"
    )
    (tmp_path / "pull_regions.py").write_text(
        "from pull_base import Base\n"
        "class PullRegions(Base):\n    def pull_records(self):\n        pass\n"
    )
    (tmp_path / "test_pull.py").write_text("raise SystemExit('never imported')\n")
    assert [s.__name__ for s in load_pull_steps(tmp_path)] == ["PullRegions"]


# --- with the store and the sync engine ----------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ModelAccessor]:
    path = tmp_path / "cloud.xproto"
    path.write_text(MODELS)
    schema = load_schema([CORE_XPROTO, path])
    store = open_store(f"sqlite:///{tmp_path / 'pull.db'}", schema)
    accessor = ModelAccessor(store, schema, actor="synchronizer", owns_store=False)
    yield accessor
    store.close()


SYNCED: list[str] = []


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj: Any) -> None:
        SYNCED.append(obj.name)


class PullRegions(PullStep):
    requested_interval = 60

    def pull_records(self) -> None:
        Region = self.model_accessor.Region
        if not Region.objects.filter(name="pulled"):
            Region(name="pulled", no_sync=True).save()
            Region(name="pulled-for-sync").save()


def test_pulled_objects_with_no_sync_are_not_synced(api: ModelAccessor) -> None:
    SYNCED.clear()
    engine = SyncEngine(
        api.store,
        [SyncRegion],
        model_deps(api.schema),
        wrap=lambda model, record: api.get_model_class(model).from_record(record),
        accessor=api,
    )
    runner = Runner(engine, api.store, pulls=PullScheduler([PullRegions], accessor=api))
    assert runner.run_until_idle(timeout=30)
    assert SYNCED == ["pulled-for-sync"]
    pulled = api.store.query("Region", filters={"name": "pulled"})[0]
    assert pulled["enacted"] is None and pulled["no_sync"]
    # Pull saves are synchronizer saves: no user timestamp bump, nothing to police.
    assert pulled["changed_by_policy"] is None
