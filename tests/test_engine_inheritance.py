"""Objects seen through a base model and through their own model are one piece of work."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import CORE_XPROTO
from xprotogen.loader import load_schema
from xprotogen.targets.deps import model_deps
from xsync import SyncStep
from xsync.backoff import BackoffPolicy
from xsync.connect import ModelAccessor
from xsync.engines.sync import SyncEngine
from xsync.executor import Outcome
from xsync.store import open_store

MODELS = """
option app_label = "fancy";

message FancyService (Service) {
    optional string color = 1 [max_length = 10];
}
"""

CALLS: list[tuple[str, str, int]] = []
ACTIVE: set[int] = set()
OVERLAPS: list[int] = []
FAILING: set[int] = set()
LOCK = threading.Lock()


class Recording(SyncStep):
    def sync_record(self, obj: Any) -> None:
        with LOCK:
            if obj.id in ACTIVE:
                OVERLAPS.append(obj.id)
            ACTIVE.add(obj.id)
            CALLS.append((type(self).__name__, obj.model_name, obj.id))
        try:
            if obj.id in FAILING:
                raise RuntimeError(f"backend refused {obj.id}")
        finally:
            with LOCK:
                ACTIVE.discard(obj.id)


class SyncService(Recording):
    observes = "Service"


class SyncFancyService(Recording):
    observes = "FancyService"


class SyncServiceInstance(Recording):
    observes = "ServiceInstance"


@pytest.fixture()
def setup(tmp_path: Path) -> Iterator[tuple[SyncEngine, Any]]:
    CALLS.clear(), ACTIVE.clear(), OVERLAPS.clear(), FAILING.clear()
    path = tmp_path / "fancy.xproto"
    path.write_text(MODELS)
    schema = load_schema([CORE_XPROTO, path])
    store = open_store(f"sqlite:///{tmp_path / 'sync.db'}", schema)
    sync_api = ModelAccessor(store, schema, actor="synchronizer", owns_store=False)
    engine = SyncEngine(
        store,
        [SyncServiceInstance, SyncService, SyncFancyService],
        model_deps(schema),
        wrap=lambda model, record: sync_api.get_model_class(model).from_record(record),
        accessor=sync_api,
        max_workers=4,
        backoff=BackoffPolicy(base_seconds=10, cap_seconds=100, jitter=0),
    )
    yield engine, store
    store.close()


def _make(store: Any) -> tuple[int, int]:
    fancy = store.create("FancyService", {"name": "fancy", "color": "red"})["id"]
    instance = store.create("ServiceInstance", {"name": "si", "owner_id": fancy})["id"]
    return int(fancy), int(instance)


def test_an_object_seen_through_its_base_is_synced_once_by_both_steps(setup: Any) -> None:
    engine, store = setup
    fancy, instance = _make(store)
    report = engine.run_pass()
    fancy_calls = [(step, model) for step, model, i in CALLS if i == fancy]
    # Both steps ran, each once, on the leaf object, and never at the same time.
    assert sorted(fancy_calls) == [
        ("SyncFancyService", "FancyService"),
        ("SyncService", "FancyService"),
    ]
    assert OVERLAPS == []
    assert report.outcomes[("FancyService", fancy)] == Outcome.SYNCED
    order = [i for _, _, i in CALLS]
    assert order.index(fancy) < order.index(instance)


def test_a_link_to_the_base_model_waits_for_the_failing_subclass_object(setup: Any) -> None:
    engine, store = setup
    fancy, instance = _make(store)
    FAILING.add(fancy)
    report = engine.run_pass()
    assert report.outcomes[("FancyService", fancy)] == Outcome.FAILED
    assert report.outcomes[("ServiceInstance", instance)] == Outcome.HELD
    assert instance not in [i for _, _, i in CALLS]
    status = store.get("ServiceInstance", instance)["backend_status"]
    assert f"id {fancy}" in status
