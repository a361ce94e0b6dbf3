"""The change log and concurrent writers, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from store_support import SHOP, open_at, schema_from_text, shop, store_url  # noqa: F401 (fixtures)
from xprotogen.schema import Schema
from xsync.store import Change, SqlStore

WRITERS = 4
PER_WRITER = 25


def _read_all(store: SqlStore, expected: int, out: list[Change]) -> None:
    """Follow the log with waiting reads until `expected` changes have arrived (or 30 s pass)."""
    after = 0
    deadline = time.monotonic() + 30
    while len(out) < expected and time.monotonic() < deadline:
        batch = store.changes(after, timeout=1.0)
        out.extend(batch)
        if batch:
            after = batch[-1].seq


def test_changes_arrive_once_and_in_order_under_concurrent_writers(shop: SqlStore) -> None:
    total = WRITERS * PER_WRITER
    readers: list[list[Change]] = [[], []]
    created: list[int] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        for i in range(PER_WRITER):
            obj = shop.create("Shop", {"name": f"w{n}-{i}"})
            with lock:
                created.append(obj["id"])

    threads = [threading.Thread(target=_read_all, args=(shop, total, r)) for r in readers]
    threads += [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    for seen in readers:
        seqs = [c.seq for c in seen]
        assert seqs == sorted(set(seqs)) and len(seen) == total
        assert sorted(c.id for c in seen) == sorted(created)
    assert readers[0] == readers[1] == shop.changes()


def test_waiting_reader_wakes_on_commit(shop: SqlStore) -> None:
    mark = shop.create("Shop", {"name": "first"})
    after = shop.changes()[-1].seq
    timer = threading.Timer(0.3, lambda: shop.update("Shop", mark["id"], {"name": "second"}))
    started = time.monotonic()
    timer.start()
    got = shop.changes(after, timeout=10)
    timer.join()
    assert [(c.kind, c.id) for c in got] == [("update", mark["id"])]
    assert 0.2 < time.monotonic() - started < 5


def test_waiting_with_nothing_to_read_times_out(shop: SqlStore) -> None:
    shop.create("Shop", {"name": "x"})
    after = shop.changes()[-1].seq
    started = time.monotonic()
    assert shop.changes(after, timeout=0.3) == []
    assert 0.25 < time.monotonic() - started < 3


def test_reader_on_another_engine_sees_commits(
    open_at: Callable[[Schema], SqlStore], tmp_path: Path
) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    writer, reader = open_at(schema), open_at(schema)
    timer = threading.Timer(0.3, lambda: writer.create("Shop", {"name": "elsewhere"}))
    timer.start()
    got = reader.changes(0, timeout=10)
    timer.join()
    assert [c.kind for c in got] == ["create"]


def test_concurrent_user_and_synchronizer_updates_lose_nothing(shop: SqlStore) -> None:
    obj = shop.create("Shop", {"name": "start"})
    rounds = 30

    def user() -> None:
        for i in range(rounds):
            shop.update("Shop", obj["id"], {"name": f"user{i}", "rank": i})

    def synchronizer() -> None:
        for i in range(rounds):
            seen = shop.get("Shop", obj["id"])
            shop.update(
                "Shop",
                obj["id"],
                {
                    **seen,
                    "enacted": seen["updated"],
                    "backend_status": f"sync{i}",
                    "backend_code": 1,
                },
                actor="synchronizer",
                update_fields=["enacted", "backend_status", "backend_code"],
            )

    threads = [threading.Thread(target=user), threading.Thread(target=synchronizer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    final = shop.get("Shop", obj["id"])
    assert (final["name"], final["rank"]) == (f"user{rounds - 1}", rounds - 1)
    assert final["backend_status"] == f"sync{rounds - 1}"
    assert final["enacted"] <= final["updated"]
    assert len(shop.changes()) == 1 + 2 * rounds
