"""The sync engine on a real store (SQLite file; PostgreSQL too, skipped locally when absent).

Scenarios of the reference's sections 5 and 6 (errors, propagation, backoff, deferral,
deletion) and the XOS contract of section 12 (what a success writes, and when).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import CORE_XPROTO
from pg import fresh_schema
from xprotogen.loader import load_schema
from xprotogen.schema import Schema
from xprotogen.targets.deps import model_deps
from xsync import DeferredException, SyncStep
from xsync.backend_state import sync_register
from xsync.backoff import BackoffPolicy, Register
from xsync.connect import ModelAccessor
from xsync.engines.sync import SyncEngine
from xsync.executor import Outcome
from xsync.store import open_store
from xsync.store.base import PendingQuery, Store

MODELS = """
option app_label = "cloud";

message Region (XOSBase) {
    required string name = 1;
}
message Label (XOSBase) {
    required string name = 1;
}
message Cluster (XOSBase) {
    required string name = 1;
    required manytoone region->Region:clusters = 2:1001;
    optional manytomany labels->Label/Cluster_labels:clusters = 3:1002;
}
message Machine (XOSBase) {
    required string name = 1;
    required manytoone cluster->Cluster:machines = 2:1001;
}
message Blob (XOSBase) {
    required string name = 1;
}
"""


class Script:
    """What the test steps do and what they saw; shared by every step instance."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, int]] = []  # (action, model, id)
        self.fail: dict[tuple[str, int], BaseException] = {}
        self.during: Callable[[str, Any], None] | None = None

    def act(self, action: str, obj: Any) -> None:
        with self.lock:
            self.calls.append((action, obj.model_name, obj.id))
        if self.during is not None:
            self.during(action, obj)
        error = self.fail.get((obj.model_name, obj.id))
        if error is not None:
            raise error

    def synced(self) -> list[tuple[str, int]]:
        return [(m, i) for action, m, i in self.calls if action == "sync"]

    def deleted(self) -> list[tuple[str, int]]:
        return [(m, i) for action, m, i in self.calls if action == "delete"]


SCRIPT = Script()


class CloudStep(SyncStep):
    """A base without `observes`: not a step itself."""

    def sync_record(self, obj: Any) -> None:
        SCRIPT.act("sync", obj)

    def delete_record(self, obj: Any) -> None:
        SCRIPT.act("delete", obj)


class SyncRegion(CloudStep):
    observes = "Region"


class SyncCluster(CloudStep):
    observes = ["Cluster"]


class SyncMachine(CloudStep):
    observes = "Machine"


class SyncLabel(CloudStep):
    observes = "Label"


class SyncBlob(CloudStep):
    observes = "Blob"


STEPS = [
    SyncMachine,
    SyncCluster,
    SyncRegion,
    SyncLabel,
    SyncBlob,
]  # deliberately not in dependency order


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Cloud:
    """A store with the test models, a user-side accessor, and an engine factory."""

    def __init__(self, store: Store, schema: Schema) -> None:
        self.store = store
        self.schema = schema
        self.user = ModelAccessor(store, schema, actor="user", owns_store=False)
        self.sync_api = ModelAccessor(store, schema, actor="synchronizer", owns_store=False)
        self.clock = Clock()

    def engine(self, steps: list[type[SyncStep]] = STEPS, **kwargs: Any) -> SyncEngine:
        kwargs.setdefault("backoff", BackoffPolicy(base_seconds=10, cap_seconds=100, jitter=0))
        kwargs.setdefault("max_workers", 4)
        return SyncEngine(
            self.store,
            steps,
            model_deps(self.schema),
            wrap=lambda model, record: self.sync_api.get_model_class(model)._from_record(record),
            accessor=self.sync_api,
            clock=self.clock,
            **kwargs,
        )

    def make(self, model: str, **values: Any) -> int:
        return int(self.store.create(model, values)["id"])

    def row(self, model: str, id: int) -> dict[str, Any]:
        return self.store.get(model, id, include_deleted=True)

    def exists(self, model: str, id: int) -> bool:
        return any(r["id"] == id for r in self.store.query(model, deleted=None))


@pytest.fixture(params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cloud]:
    SCRIPT.__init__()  # type: ignore[misc]
    path = tmp_path / "cloud.xproto"
    path.write_text(MODELS)
    schema = load_schema([CORE_XPROTO, path])
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'sync.db'}", schema)
        yield Cloud(store, schema)
        store.close()
    else:
        with fresh_schema() as url:
            store = open_store(url, schema)
            yield Cloud(store, schema)
            store.close()


def chain(cloud: Cloud) -> tuple[int, int, int]:
    site = cloud.make("Region", name="s")
    slice_ = cloud.make("Cluster", name="sl", region_id=site)
    instance = cloud.make("Machine", name="i", cluster_id=slice_)
    return site, slice_, instance


# --- success ---------------------------------------------------------------------------


def test_pass_syncs_dependencies_first_and_writes_the_xos_success_fields(cloud: Cloud) -> None:
    site, slice_, instance = chain(cloud)
    before = cloud.row("Machine", instance)
    report = cloud.engine().run_pass()
    assert set(report.outcomes.values()) == {Outcome.SYNCED}
    order = SCRIPT.synced()
    assert (
        order.index(("Region", site))
        < order.index(("Cluster", slice_))
        < order.index(("Machine", instance))
    )
    row = cloud.row("Machine", instance)
    assert row["enacted"] == before["updated"]
    assert (row["backend_code"], row["backend_status"], row["backend_need_delete"]) == (
        1,
        "OK",
        True,
    )
    register = json.loads(row["backend_register"])
    assert (
        register["failures"] == 0
        and register["next_run"] == 0
        and register["last_success"] == cloud.clock.now
    )
    assert cloud.store.pending("Machine", PendingQuery.DIRTY_OBJECTS) == []
    assert cloud.engine().run_pass().worked == 0


def test_steps_get_orm_objects_with_links(cloud: Cloud) -> None:
    _, slice_, _ = chain(cloud)
    seen: list[str] = []
    SCRIPT.during = lambda action, obj: (
        seen.append(obj.region.name) if obj.model_name == "Cluster" else None
    )
    cloud.engine().run_pass()
    assert seen == ["s"]


def test_backend_need_delete_is_saved_before_sync_record_runs(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    stored: list[bool] = []
    SCRIPT.during = lambda action, obj: stored.append(
        cloud.row("Region", obj.id)["backend_need_delete"]
    )
    cloud.engine().run_pass()
    assert stored == [True]


def test_object_changed_during_its_sync_stays_pending(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    cloud.clock.now += 0  # the store stamps `updated` with its own clock

    def edit(action: str, obj: Any) -> None:
        cloud.store.update("Region", obj.id, {"name": "renamed"}, actor="user")

    SCRIPT.during = edit
    cloud.engine().run_pass()
    assert [r["id"] for r in cloud.store.pending("Region", PendingQuery.DIRTY_OBJECTS)] == [site]


def test_many_to_many_links_order_objects_too(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    tag = cloud.make("Label", name="t")
    slice_ = cloud.make("Cluster", name="sl", region_id=site, labels_ids=[tag])
    cloud.engine(max_workers=1).run_pass()
    order = SCRIPT.synced()
    assert order.index(("Label", tag)) < order.index(("Cluster", slice_))


# --- failures and propagation (reference 5.4-5.6, fixed) -------------------------------


def test_failure_sets_code_2_and_holds_back_only_its_dependents(cloud: Cloud) -> None:
    bad_site, bad_slice, bad_instance = chain(cloud)
    good_site, good_slice, good_instance = chain(cloud)
    image = cloud.make("Blob", name="img")
    SCRIPT.fail[("Region", bad_site)] = RuntimeError("boom")
    report = cloud.engine().run_pass()

    assert report.outcomes[("Region", bad_site)] is Outcome.FAILED
    assert {report.outcomes[k] for k in [("Cluster", bad_slice), ("Machine", bad_instance)]} == {
        Outcome.HELD
    }
    for key in [
        ("Region", good_site),
        ("Cluster", good_slice),
        ("Machine", good_instance),
        ("Blob", image),
    ]:
        assert report.outcomes[key] is Outcome.SYNCED
    assert ("Cluster", bad_slice) not in SCRIPT.synced()

    failed = cloud.row("Region", bad_site)
    assert (failed["backend_code"], failed["backend_status"]) == (
        2,
        "Provisioning in progress // boom",
    )
    assert sync_register(failed["backend_register"]).failures == 1
    held = cloud.row("Machine", bad_instance)
    assert (
        held["backend_status"]
        == f"Provisioning in progress // Failed due to error in model Region id {bad_site}: boom"
    )
    assert held["backend_code"] == 0
    assert sync_register(held["backend_register"]).failures == 0  # held objects do not back off


def test_status_keeps_the_last_two_distinct_messages(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    engine = cloud.engine(backoff=BackoffPolicy(base_seconds=0.0, cap_seconds=0.0, jitter=0))
    statuses = []
    for message in ["boom", "other", "other", "third"]:
        SCRIPT.fail[("Region", site)] = RuntimeError(message)
        engine.run_pass()
        statuses.append(cloud.row("Region", site)["backend_status"])
    assert statuses == [
        "Provisioning in progress // boom",
        "boom // other",
        "boom // other",
        "other // third",
    ]
    SCRIPT.fail.clear()
    engine.run_pass()
    cloud.store.update("Region", site, {"name": "changed"}, actor="user")
    SCRIPT.fail[("Region", site)] = RuntimeError("x" * 2000)
    engine.run_pass()
    status = cloud.row("Region", site)["backend_status"]
    assert status.startswith("OK // xxx") and len(status) == 1024


def test_exception_without_message_is_named_by_its_type(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    SCRIPT.fail[("Region", site)] = KeyError()
    cloud.engine().run_pass()
    assert cloud.row("Region", site)["backend_status"].endswith("// KeyError")


# --- backoff (reference 5.7, enforced) ---------------------------------------------------


def test_backoff_delays_retries_exponentially_and_success_resets_it(cloud: Cloud) -> None:
    site, slice_, _ = chain(cloud)
    SCRIPT.fail[("Region", site)] = RuntimeError("down")
    engine = cloud.engine()
    start = cloud.clock.now

    engine.run_pass()
    assert sync_register(cloud.row("Region", site)["backend_register"]).next_run == start + 10

    cloud.clock.now = start + 9.9
    report = engine.run_pass()
    assert report.outcomes[("Region", site)] is Outcome.SKIPPED
    assert report.outcomes[("Cluster", slice_)] is Outcome.HELD
    assert report.next_retry == start + 10
    assert SCRIPT.synced().count(("Region", site)) == 1

    cloud.clock.now = start + 10
    engine.run_pass()
    register = sync_register(cloud.row("Region", site)["backend_register"])
    assert (register.failures, register.next_run) == (2, start + 10 + 20)

    cloud.clock.now = start + 30
    SCRIPT.fail.clear()
    report = engine.run_pass()
    assert report.outcomes[("Cluster", slice_)] is Outcome.SYNCED
    register = sync_register(cloud.row("Region", site)["backend_register"])
    assert (register.failures, register.next_run, register.last_success) == (0, 0.0, start + 30)


def test_backoff_never_exceeds_the_cap(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    SCRIPT.fail[("Region", site)] = RuntimeError("down")
    engine = cloud.engine(backoff=BackoffPolicy(base_seconds=10, cap_seconds=25, jitter=0))
    delays = []
    for _ in range(4):
        engine.run_pass()
        register = sync_register(cloud.row("Region", site)["backend_register"])
        delays.append(register.next_run - cloud.clock.now)
        cloud.clock.now = register.next_run
    assert delays == [10, 20, 25, 25]


def test_objects_that_fail_in_one_pass_retry_at_spread_out_times(cloud: Cloud) -> None:
    # The engine's default policy has jitter: without it, all would retry in the same second.
    regions = [cloud.make("Region", name=f"r{i}") for i in range(12)]
    for region in regions:
        SCRIPT.fail[("Region", region)] = RuntimeError("down")
    cloud.engine(backoff=BackoffPolicy(base_seconds=10, cap_seconds=100)).run_pass()
    delays = [
        sync_register(cloud.row("Region", r)["backend_register"]).next_run - cloud.clock.now
        for r in regions
    ]
    assert all(8.0 <= delay <= 10.0 for delay in delays), delays
    assert len(set(delays)) == len(delays), delays


# --- deferral ------------------------------------------------------------------------------


def test_deferred_object_is_not_an_error_does_not_back_off_and_is_retried(cloud: Cloud) -> None:
    site, slice_, _ = chain(cloud)
    SCRIPT.fail[("Region", site)] = DeferredException("waiting for the VIM")
    engine = cloud.engine()
    report = engine.run_pass()
    assert report.outcomes[("Region", site)] is Outcome.DEFERRED
    assert report.outcomes[("Cluster", slice_)] is Outcome.HELD
    row = cloud.row("Region", site)
    assert (row["backend_code"], row["backend_status"]) == (
        0,
        "Provisioning in progress // waiting for the VIM",
    )
    assert sync_register(row["backend_register"]) == Register()
    engine.run_pass()  # same clock: no backoff in the way
    assert SCRIPT.synced().count(("Region", site)) == 2


# --- errors outside per-object code (reference 5.8, fixed) -----------------------------------


class BrokenFetch(SyncStep):
    observes = "Blob"

    def fetch_pending(self, deleted: bool = False) -> list[Any]:
        if BROKEN[0]:
            raise ConnectionError("backend API down")
        return super().fetch_pending(deleted)

    def sync_record(self, obj: Any) -> None:
        SCRIPT.act("sync", obj)


BROKEN = [True]


def test_exception_in_fetch_pending_skips_that_step_for_that_pass_only(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    image = cloud.make("Blob", name="i")
    BROKEN[0] = True
    engine = cloud.engine([SyncRegion, BrokenFetch])
    report = engine.run_pass()
    assert report.skipped_steps == ["BrokenFetch", "BrokenFetch"]  # the sync and the deletion pass
    assert SCRIPT.synced() == [("Region", site)]
    BROKEN[0] = False
    engine.run_pass()
    assert SCRIPT.synced() == [("Region", site), ("Blob", image)]


def test_after_sync_save_failure_leaves_the_object_synced(cloud: Cloud) -> None:
    class WithHook(SyncRegion):
        def after_sync_save(self, obj: Any) -> None:
            raise ValueError("hook broke")

    site = cloud.make("Region", name="s")
    report = cloud.engine([WithHook]).run_pass()
    assert report.outcomes[("Region", site)] is Outcome.SYNCED
    assert cloud.row("Region", site)["backend_status"] == "OK"


def test_user_code_raising_system_exit_does_not_stop_the_pass(cloud: Cloud) -> None:
    a = cloud.make("Region", name="a")
    b = cloud.make("Region", name="b")
    SCRIPT.fail[("Region", a)] = SystemExit(3)
    report = cloud.engine(max_workers=1).run_pass()
    assert report.outcomes == {("Region", a): Outcome.FAILED, ("Region", b): Outcome.SYNCED}
    assert cloud.row("Region", a)["backend_status"].endswith("// SystemExit raised by user code: 3")


# --- deletion (reference section 6) -----------------------------------------------------------


def test_deletion_runs_dependents_first_then_purges(cloud: Cloud) -> None:
    site, slice_, instance = chain(cloud)
    engine = cloud.engine()
    engine.run_pass()
    cloud.store.delete("Region", site)  # cascades to the slice and the instance
    gone_when_site_deleted: list[bool] = []
    SCRIPT.during = lambda action, obj: (
        gone_when_site_deleted.append(not cloud.exists("Machine", instance))
        if (action, obj.model_name) == ("delete", "Region")
        else None
    )
    report = engine.run_pass()
    assert SCRIPT.deleted() == [("Machine", instance), ("Cluster", slice_), ("Region", site)]
    assert gone_when_site_deleted == [True]
    assert set(report.deletions.values()) == {Outcome.SYNCED}
    assert not any(
        cloud.exists(m, i)
        for m, i in [("Region", site), ("Cluster", slice_), ("Machine", instance)]
    )


def test_failed_deletion_keeps_the_row_and_holds_back_what_it_depends_on(cloud: Cloud) -> None:
    site, slice_, instance = chain(cloud)
    engine = cloud.engine()
    engine.run_pass()
    cloud.store.delete("Region", site)
    SCRIPT.fail[("Cluster", slice_)] = RuntimeError("cannot free")
    report = engine.run_pass()
    assert report.deletions == {
        ("Machine", instance): Outcome.SYNCED,
        ("Cluster", slice_): Outcome.FAILED,
        ("Region", site): Outcome.HELD,
    }
    row = cloud.row("Cluster", slice_)
    assert (row["backend_code"], row["backend_need_reap"], row["backend_status"]) == (
        2,
        False,
        "OK // cannot free",
    )
    assert cloud.exists("Region", site) and not cloud.exists("Machine", instance)
    assert ("Region", site) not in SCRIPT.deleted()


def test_object_already_marked_for_reaping_is_purged_without_a_second_delete(cloud: Cloud) -> None:
    site = cloud.make("Region", name="s")
    cloud.store.delete("Region", site)
    cloud.store.update("Region", site, {"backend_need_reap": True}, actor="synchronizer")
    cloud.engine().run_pass()
    assert SCRIPT.deleted() == []
    assert not cloud.exists("Region", site)


# --- loading steps (reference 4.1; checklist 11 and 13) ------------------------------------------


def test_loader_finds_direct_and_indirect_steps_and_skips_bases_and_test_files(
    tmp_path: Path,
) -> None:
    from xsync.loader import load_sync_steps

    (tmp_path / "base.py").write_text(
        "from xsync import SyncStep\nclass Base(SyncStep):\n    pass\n"
    )
    (tmp_path / "sync_ports.py").write_text(
        "from base import Base\nclass SyncPort(Base):\n    observes = 'Port'\n    requested_interval = 0\n"
    )
    (tmp_path / "sync_images.py").write_text(
        "from xsync import SyncStep\nclass SyncImages(SyncStep):\n    observes = ['Image']\n"
    )
    (tmp_path / "test_steps.py").write_text("raise RuntimeError('test files are not loaded')\n")
    steps = load_sync_steps(tmp_path)
    assert [s.__name__ for s in steps] == ["SyncImages", "SyncPort"]
    assert {s.__name__: s.observed_model_names() for s in steps} == {
        "SyncImages": ["Image"],
        "SyncPort": ["Port"],
    }


# --- a step call over its time limit -----------------------------------------------------------


def test_a_call_over_its_limit_is_taken_over_and_its_late_return_changes_nothing(
    cloud: Cloud,
) -> None:
    slow = cloud.make("Region", name="slow")
    waiting = cloud.make("Cluster", name="c", region_id=slow)
    others = [cloud.make("Region", name=f"r{i}") for i in range(5)]
    returned = threading.Event()

    def during(action: str, obj: Any) -> None:
        if obj.id == slow:
            # Outlives its 0.3 s limit, then returns as if it had worked.
            returned.wait(1.2)
            returned.set()

    SCRIPT.during = during
    # One worker: the pass can only go on if the stuck worker is replaced.
    engine = cloud.engine(max_workers=1, step_timeout=0.3)
    report = engine.run_pass()
    # The pass did not wait for the call: its workers went on without it.
    assert not returned.is_set()
    assert report.outcomes[("Region", slow)] is Outcome.FAILED
    assert report.outcomes[("Cluster", waiting)] is Outcome.HELD
    assert all(report.outcomes[("Region", i)] is Outcome.SYNCED for i in others)
    # Still running: the next pass leaves it alone.
    assert engine.run_pass().outcomes[("Region", slow)] is Outcome.SKIPPED
    assert SCRIPT.synced().count(("Region", slow)) == 1
    assert returned.wait(5)
    time.sleep(0.2)  # the late thread ends; it must save nothing
    row = cloud.row("Region", slow)
    assert row["backend_code"] == 2 and "timed out after 0.3 s" in row["backend_status"]
    assert row["enacted"] is None


def test_the_planner_reads_objects_that_are_not_pending_in_bulk(cloud: Cloud) -> None:
    region = cloud.make("Region", name="r")
    clusters = [cloud.make("Cluster", name=f"c{i}", region_id=region) for i in range(30)]
    cloud.engine().run_pass()
    # Pending: the region (changed again) and new machines on clusters that are in sync.
    cloud.store.update("Region", region, {"name": "r2"})
    machines = [cloud.make("Machine", name=f"m{i}", cluster_id=c) for i, c in enumerate(clusters)]
    SCRIPT.__init__()  # type: ignore[misc]
    reads: list[str] = []
    store = cloud.store
    real_get, real_query = store.get, store.query

    def get(model: str, id: int, **kwargs: Any) -> Any:
        reads.append(f"get {model}")
        return real_get(model, id, **kwargs)

    def query(model: str, **kwargs: Any) -> Any:
        reads.append(f"query {model}")
        return real_query(model, **kwargs)

    store.get, store.query = get, query  # type: ignore[method-assign]
    try:
        report = cloud.engine().run_pass()
    finally:
        store.get, store.query = real_get, real_query  # type: ignore[method-assign]
    assert all(report.outcomes[("Machine", m)] is Outcome.SYNCED for m in machines)
    order = SCRIPT.synced()
    # Each machine waited for the region, through its cluster, which was not pending.
    assert all(order.index(("Region", region)) < order.index(("Machine", m)) for m in machines)
    # The 30 clusters were read in one query, not one read each.
    assert reads.count("query Cluster") == 1 and not any(r.startswith("get") for r in reads)


def test_slow_steps_get_every_worker_and_quick_ones_one_thread(cloud: Cloud) -> None:
    regions = [cloud.make("Region", name=f"r{i}") for i in range(12)]
    lock = threading.Lock()
    running: set[int] = set()
    most: list[int] = [0]
    threads: set[int] = set()

    def during(action: str, obj: Any) -> None:
        with lock:
            running.add(obj.id)
            most[0] = max(most[0], len(running))
            threads.add(threading.get_ident())
        time.sleep(0.05)  # a step waiting on a backend
        with lock:
            running.discard(obj.id)

    SCRIPT.during = during
    started = time.monotonic()
    report = cloud.engine(max_workers=4).run_pass()
    assert all(report.outcomes[("Region", r)] is Outcome.SYNCED for r in regions)
    # Four at a time once the first call proved slow: 12 objects in about 3 rounds, not 12.
    assert most[0] == 4
    assert time.monotonic() - started < 12 * 0.05 * 0.75
    # Quick steps: more threads would only take turns at the interpreter lock.
    SCRIPT.during = lambda action, obj: threads.add(threading.get_ident())
    threads.clear()
    for r in regions:
        cloud.store.update("Region", r, {"name": f"again{r}"})
    assert len(cloud.engine(max_workers=4).run_pass().outcomes) == 12
    # (One thread unless the machine stalled a call past the 2 ms that add a worker.)
    assert len(threads) < 4
