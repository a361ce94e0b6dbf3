"""The change log's end read in one statement, and its retention: old entries pruned in
batches, the newest kept, readers still correct (real SQLite files, real PostgreSQL, a real
core on loopback)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from core_support import LiveCore, wait_until
from multi_runner import make_runner_project
from pg import fresh_schema
from store_support import SHOP, open_at, schema_from_text, shop, store_url  # noqa: F401
from xprotogen.orm_specs import model_specs
from xsync.config import load_config
from xsync.engines.reaper import Reaper
from xsync.grpc.client import RemoteStore
from xsync.manager import StoreWatcher
from xsync.retention import ChangeLogRetention
from xsync.runner import Runner, build_runtime
from xsync.store import InvalidArgument, PermissionDenied, SqlStore
from xsync.store import sql as sql_store
from xsync.store.base import Change, Store

HOUR = 3600.0
log = logging.getLogger("test_change_log")


@contextlib.contextmanager
def statements(store: SqlStore, *, threads: str = "") -> Iterator[list[str]]:
    """The SQL statements `store` sends through its engine while the block runs (from threads
    whose name starts with `threads`)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not threading.current_thread().name.startswith(threads):
            return
        if statement.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", note)


def age_entries(store: SqlStore, seconds: float, *, upto: int | None = None) -> None:
    """Make the log's entries (up to `upto`) look written `seconds` earlier than they were."""
    table = store._changes
    stmt = sa.update(table).values(at=table.c.at - seconds)
    if upto is not None:
        stmt = stmt.where(table.c.seq <= upto)
    with store._engine.begin() as conn:
        conn.execute(stmt)


def make_changes(store: Store, count: int) -> None:
    store.create_many("Tag", [{"name": f"t{i}"} for i in range(count)])


# --- where the log ends ---------------------------------------------------------------------


def test_latest_change_is_the_last_changes_seq_in_one_statement(shop: SqlStore) -> None:
    assert shop.latest_change() == 0
    make_changes(shop, 3)
    tag = shop.create("Tag", {"name": "x"})
    shop.update("Tag", tag["id"], {"name": "y"})
    shop.delete("Tag", tag["id"])
    every = shop.changes(0)
    with statements(shop) as seen:
        latest = shop.latest_change()
    assert latest == every[-1].seq == 6
    # One statement, an aggregate of the primary key: the log's rows are not read.
    assert len(seen) == 1 and "max(xsync_changes.seq)" in seen[0].lower(), seen


def test_latest_change_over_grpc_for_any_account_that_reads(tmp_path: Path) -> None:
    core = LiveCore(tmp_path)
    try:
        viewer = core.client("viewer")
        assert viewer.latest_change() == 0
        make_changes(core.client("alice"), 4)
        # The core's calls run on its store threads (its change hub reads the log on its own).
        with statements(core.store, threads="xsync-store") as seen:
            assert viewer.latest_change() == core.store.changes(0)[-1].seq == 4
        assert len(seen) == 1 and "max(" in seen[0].lower(), seen
    finally:
        core.close()


# --- retention ------------------------------------------------------------------------------


def test_old_entries_are_pruned_in_batches_and_recent_ones_kept(
    shop: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_store, "FORGET_BATCH", 100)
    make_changes(shop, 250)
    age_entries(shop, 2 * HOUR)
    with shop._engine.begin() as conn:  # entries written before the log had times count as old
        conn.execute(sa.update(shop._changes).where(shop._changes.c.seq <= 10).values(at=None))
    make_changes(shop, 30)
    with statements(shop) as seen:
        assert shop.forget_changes(HOUR) == 250
    deletes = [s for s in seen if s.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 3  # 100 + 100 + 50, one transaction each
    left = shop.changes(0)
    assert [c.seq for c in left] == list(range(251, 281))
    assert shop.latest_change() == 280
    assert shop.forget_changes(HOUR) == 0  # nothing old is left: one short batch


def test_pruning_keeps_the_newest_entry_and_a_young_one_stops_it(shop: SqlStore) -> None:
    make_changes(shop, 5)
    age_entries(shop, 2 * HOUR)
    assert shop.forget_changes(HOUR) == 4
    assert shop.changes(0) == [Change(5, "create", "Tag", shop.changes(0)[0].id)]
    assert shop.latest_change() == 5
    # Entries from a clock behind: an old entry after a young one waits for it to age too.
    make_changes(shop, 3)
    age_entries(shop, 2 * HOUR)
    age_entries(shop, -2 * HOUR, upto=6)  # 6 is young again
    assert shop.forget_changes(HOUR) == 1  # 5 only
    assert [c.seq for c in shop.changes(0)] == [6, 7, 8]
    with pytest.raises(InvalidArgument):
        shop.forget_changes(-1)


def test_an_existing_log_gains_its_time_column_and_is_pruned(
    store_url: str, tmp_path: Path
) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    store = sql_store.open_store(store_url, schema)
    make_changes(store, 3)
    with store._engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE xsync_changes DROP COLUMN at"))
    store.close()
    store = sql_store.open_store(store_url, schema)  # as a store of the version before
    try:
        make_changes(store, 2)
        # The three written before the column count as old; the two after carry their time.
        assert store.forget_changes(HOUR) == 3
        assert [c.seq for c in store.changes(0)] == [4, 5]
    finally:
        store.close()


def test_the_reaper_reaps_an_object_whose_delete_entry_was_pruned(
    shop: SqlStore, tmp_path: Path
) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    reaper = Reaper(shop, model_specs(schema), observed=["Shelf", "Item"])
    assert reaper.run_pass() == 0  # the first pass scans all and takes the log's end
    tag = shop.create("Tag", {"name": "doomed"})
    shop.delete("Tag", tag["id"])
    shop.create("Shop", {"name": "after"})  # the newest entry: kept, and it names only Shop
    age_entries(shop, 2 * HOUR)
    assert shop.forget_changes(HOUR) == 2  # the Tag's create and delete are gone
    assert [c.model for c in shop.changes(0)] == ["Shop"]
    assert reaper.run_pass() == 1
    assert shop.query("Tag", deleted=None) == []


def test_a_waiting_runner_wakes_when_the_entries_after_its_position_were_pruned(
    shop: SqlStore,
) -> None:
    gate, positioned = threading.Event(), threading.Event()

    class HeldStore:
        """The store, with the watcher's first read held until the test has pruned."""

        def __getattr__(self, name: str) -> Any:
            return getattr(shop, name)

        def latest_change(self) -> int:
            try:
                return shop.latest_change()
            finally:
                positioned.set()

        def changes(self, after: int = 0, *, timeout: float | None = None) -> list[Change]:
            gate.wait(10)
            return shop.changes(after, timeout=timeout)

    make_changes(shop, 2)
    wake = threading.Event()
    watcher = StoreWatcher(HeldStore(), wake, interval=0.2, log=log)  # type: ignore[arg-type]
    watcher.start()
    try:
        assert positioned.wait(5)
        make_changes(shop, 3)  # after the watcher's position (2)
        age_entries(shop, 2 * HOUR)
        assert shop.forget_changes(HOUR) == 4  # 3, 4 and the first two: only 5 is left
        gate.set()
        assert wake.wait(5)
    finally:
        gate.set()
        watcher.stop()


def test_retention_runs_at_most_once_a_minute_and_logs_a_failure(shop: SqlStore) -> None:
    now = [1000.0]
    retention = ChangeLogRetention(shop, HOUR, log=log, clock=lambda: now[0])
    make_changes(shop, 4)
    age_entries(shop, 2 * HOUR)
    assert retention.run_due() == 3
    make_changes(shop, 1)
    age_entries(shop, 2 * HOUR)
    assert retention.run_due() == 0  # not due yet
    now[0] += 60
    assert retention.run_due() == 1
    shop.close()
    now[0] += 60
    assert retention.run_due() == 0  # a closed store: logged, tried again next minute


# --- who prunes ------------------------------------------------------------------------------


def test_only_the_leader_of_two_runners_prunes(tmp_path: Path) -> None:
    with fresh_schema() as url:
        runtimes = []
        try:
            for name in ("a", "b"):
                config = make_runner_project(tmp_path / name, url)
                runtimes.append(build_runtime(load_config(config)))
            calls = {0: 0, 1: 0}
            runners = []
            for index, runtime in enumerate(runtimes):
                assert runtime.leadership is not None and runtime.retention is not None
                forget = runtime.store.forget_changes

                def counted(age: float, index: int = index, forget: Any = forget) -> int:
                    calls[index] += 1
                    return int(forget(age))

                runtime.store.forget_changes = counted  # type: ignore[method-assign]
                runtime.retention.retention_seconds = HOUR
                runtime.start_sharing()
                runners.append(
                    Runner(
                        runtime.engine,
                        runtime.store,
                        leadership=runtime.leadership,
                        retention=runtime.retention,
                    )
                )
            assert wait_until(
                lambda: any(r.leadership is not None and r.leadership.is_leader() for r in runners),
                10,
            )
            store = runtimes[0].store
            assert isinstance(store, SqlStore)
            for i in range(5):
                store.create("Region", {"name": f"r{i}"})
            age_entries(store, 2 * HOUR)
            for runner in runners:
                runner.run_once()  # syncs the regions (new, young entries), then prunes
            leader = next(i for i, r in enumerate(runners) if r.leading())
            assert calls == {leader: 1, 1 - leader: 0}
            left = store.changes(0)
            assert left and left[0].seq > 5  # the five old entries went, the passes' stayed
        finally:
            for runtime in runtimes:
                runtime.close()


def test_pruning_through_the_core_needs_an_account_that_may_sync(tmp_path: Path) -> None:
    core = LiveCore(tmp_path)
    try:
        make_changes(core.client("alice"), 6)
        age_entries(core.store, 2 * HOUR)
        for refused in ("viewer", "alice"):
            with pytest.raises(PermissionDenied):
                core.client(refused).forget_changes(HOUR)
        remote: RemoteStore = core.client("hello-sync")
        with pytest.raises(InvalidArgument):
            remote.forget_changes(-5)
        retention = ChangeLogRetention(remote, HOUR, log=log)
        assert retention.run_due() == 5
        assert [c.seq for c in core.store.changes(0)] == [6]
        assert remote.latest_change() == 6
    finally:
        core.close()


def test_the_status_page_reloads_when_entries_it_had_not_read_were_pruned(
    tmp_path: Path,
) -> None:
    import asyncio

    from ui_support import HELLO, MODELS, Hello
    from xprotogen.loader import load_schema
    from xsync.planner import LinkFields
    from xsync.ui.feed import ChangeFeed
    from xsync.ui.index import StatusIndex
    from xsync.ui.state import StatusReader

    schema = load_schema([HELLO], core="auto")
    store = sql_store.open_store(f"sqlite:///{tmp_path / 'h.db'}", schema)
    hello = Hello(store, schema)
    earth = store.create("World", {"name": "earth"})["id"]
    gate = threading.Event()
    gate.set()

    class HeldStore:
        """The store, whose change-log reads wait while `gate` is clear."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def changes(self, after: int = 0, *, timeout: float | None = None) -> list[Change]:
            gate.wait(10)
            return store.changes(after, timeout=timeout)

    index = StatusIndex(store, MODELS, LinkFields.from_model_deps(hello.deps), MODELS)
    reader = StatusReader(HeldStore(), MODELS, hello.deps, index.waited_by)  # type: ignore[arg-type]
    feed = ChangeFeed(reader, index, poll_seconds=0.05)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def subscribe() -> Any:
        return feed.subscribe()

    feed.start()
    try:
        sub = asyncio.run_coroutine_threadsafe(subscribe(), loop).result(5)
        assert index.wait_ready(10)
        gate.clear()
        time.sleep(0.3)  # the feed now waits before its next read
        before = feed.latest_seq
        store.create("Country", {"name": "atlantis", "world_id": earth})
        store.create("Country", {"name": "mu", "world_id": earth})
        age_entries(store, 2 * HOUR)
        assert store.forget_changes(HOUR) >= 1
        assert store.changes(before)[0].seq > before + 1  # the feed's next entry is gone
        gate.set()
        assert wait_until(lambda: sub.overflowed, 5)  # told to re-read the list
        assert feed.backlog(before) is None  # a page reconnecting there re-reads it too
        assert index.counts()["Country"] and wait_until(
            lambda: sum(index.counts()["Country"].values()) == 2, 5
        )
    finally:
        gate.set()
        feed.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        store.close()


def test_a_watch_from_before_the_pruned_entries_still_gets_the_newest(tmp_path: Path) -> None:
    from core_support import account_book
    from xsync.grpc.server import serve
    from xsync.login_throttle import LoginThrottle

    core = LiveCore(tmp_path)
    try:
        make_changes(core.client("alice"), 3)
        make_changes(core.client("alice"), 3)
        age_entries(core.store, 2 * HOUR)
        assert core.store.forget_changes(HOUR) == 5
        # A core started after the pruning: its change hub holds nothing in memory, so the
        # watch reads the log from position 3, and gets what is left of it.
        second = serve(
            core.store,
            core.schema,
            listen="127.0.0.1:0",
            accounts=account_book(),
            throttle=LoginThrottle(base=0.01, cap=0.05),
        )
        try:
            viewer = RemoteStore(
                second.endpoint, core.schema, username="viewer", password="viewer-pw"
            )
            try:
                assert [c.seq for c in viewer.changes(3, timeout=5)] == [6]
                assert viewer.latest_change() == 6
                assert viewer.changes(6, timeout=0.2) == []
            finally:
                viewer.close()
        finally:
            second.stop(0)
    finally:
        core.close()
