"""`write_outcomes`: the synchronizer's outcomes for many objects in one transaction.

On the real SQLite and PostgreSQL: the same rows, change log and per-item errors as the same
updates one by one; one transaction (all or nothing); and, on PostgreSQL, writers that no
longer queue on one lock while Watch still sees every change once, in order.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core_support import LiveCore, credentials, live_core  # noqa: F401  (fixture)
from pg import fresh_schema
from store_support import SHOP, open_at, schema_from_text, shop, store_url  # noqa: F401  (fixtures)
from xprotogen.schema import Schema
from xsync.store import SqlStore, open_store
from xsync.store.base import (
    Change,
    InvalidArgument,
    NotFound,
    OutcomeWrite,
    PermissionDenied,
    StoreError,
    Unavailable,
)

MODELS = ("Shop", "Shelf", "Tag")
STAMPS = ("updated", "changed_by_step", "changed_by_policy")


@pytest.fixture
def twins(store_url: str, tmp_path: Path) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two empty stores of the same kind: one written in batches, one update by update."""
    schema = schema_from_text(tmp_path, SHOP)
    with contextlib.ExitStack() as stack:
        if store_url.startswith("sqlite"):
            twin_url = f"sqlite:///{tmp_path / 'twin.db'}"
        else:
            twin_url = stack.enter_context(fresh_schema())
        batched = open_store(store_url, schema)
        stack.callback(batched.close)
        twin = open_store(twin_url, schema)
        stack.callback(twin.close)
        yield batched, twin


def one_by_one(store: SqlStore, writes: list[OutcomeWrite], actor: Any) -> list[Any]:
    results: list[Any] = []
    for w in writes:
        try:
            store.update(w.model, w.id, w.values, actor=actor, update_fields=list(w.values))
        except StoreError as exc:
            results.append(exc)
        else:
            results.append(None)
    return results


def shown(results: list[Any]) -> list[Any]:
    return [None if r is None else (type(r).__name__, str(r)) for r in results]


def snapshot(store: SqlStore) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for m in MODELS for r in store.query(m, deleted=None)}


def normalised(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]) -> Any:
    """Rows with the store's own times replaced by whether they moved in the batch."""
    out = {}
    for id, row in after.items():
        plain = {k: v for k, v in row.items() if k not in STAMPS and k != "created"}
        plain["moved"] = tuple(row[s] != before[id][s] for s in STAMPS)
        out[id] = plain
    return out


def log_after(store: SqlStore, seq: int) -> list[tuple[str, str, int]]:
    return [(c.kind, c.model, c.id) for c in store.changes(seq)]


def last_seq(store: SqlStore) -> int:
    found = store.changes(0)
    return found[-1].seq if found else 0


def populate(store: Any, shops: int, purged: int) -> dict[str, list[int]]:
    """The same objects in every store given the same arguments (ids come in order)."""
    shop_ids = [store.create("Shop", {"name": f"s{i}"})["id"] for i in range(shops)]
    tags = [store.create("Tag", {"name": f"t{i}"})["id"] for i in range(2)]
    store.delete("Tag", tags[1])  # a link to it is refused
    shelves = [store.create("Shelf", {"name": "sh", "shop_id": s})["id"] for s in shop_ids[:2]]
    gone = []
    for i in range(purged):
        gone.append(store.create("Shop", {"name": f"gone{i}"})["id"])
        store.purge("Shop", gone[-1])
    return {"Shop": shop_ids, "Tag": tags, "Shelf": shelves, "gone": gone}


VALUES = st.fixed_dictionaries(
    {},
    optional={
        "backend_status": st.sampled_from(["ok", "failed"]),
        "backend_code": st.sampled_from([0, 1, 2]),
        "enacted": st.sampled_from([None, 1.0, 2.5]),
        "backend_need_delete": st.booleans(),
        "deleted": st.booleans(),
        "secret_state": st.sampled_from(["a", "b"]),  # the Shop's own feedback state
        "name": st.sampled_from(["n1", "n2"]),  # an important change
        "rank": st.sampled_from([0, 3]),
        "tags_ids": st.lists(st.sampled_from([0, 1]), max_size=2),  # tag 1 is deleted
        "backup_id": st.sampled_from([None, 0, 1]),  # a shop, perhaps deleted earlier in the batch
    },
)
# Fields each model has: others are dropped from its values, unless the item is "foreign".
FIELDS = {
    "Shop": {"secret_state", "name", "rank"},
    "Shelf": {"name", "tags_ids", "backup_id"},
    "Tag": {"name"},
}
COMMON = {"backend_status", "backend_code", "enacted", "backend_need_delete", "deleted"}
BAD: dict[str, dict[str, Any]] = {
    "foreign": {},
    "unknown field": {"nope": 1},
    "too long": {"backend_status": "x" * 1030},
    "out of range": {"backend_code": 2**40},
    "wrong type": {"enacted": "soon"},
    "id changes": {"id": 10**6},
}
ITEM = st.tuples(
    st.sampled_from(["Shop", "Shop", "Shelf", "Tag", "Nope"]),
    st.integers(0, 4),
    VALUES,
    st.sampled_from([None] * 6 + sorted(BAD)),
)


def build(
    objects: dict[str, list[int]], raw: list[tuple[str, int, dict[str, Any], str | None]]
) -> Any:
    writes = []
    for model, pick, values, bad in raw:
        pool = objects.get(model) or objects["Shop"]
        id = objects["gone"][0] if pick == 4 and objects["gone"] else pool[pick % len(pool)]
        own = FIELDS.get(model, set()) | COMMON
        values = {k: v for k, v in values.items() if bad == "foreign" or k in own}
        if "tags_ids" in values:
            values["tags_ids"] = [objects["Tag"][i] for i in values["tags_ids"]]
        if values.get("backup_id") is not None:
            values["backup_id"] = objects["Shop"][values["backup_id"] % len(objects["Shop"])]
        values.update(BAD.get(bad or "", {}))
        writes.append(OutcomeWrite(model, id, values))
    return writes


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(  # a link to an object that an earlier item of the batch deleted is refused
    shops=1,
    purged=0,
    raw=[("Shop", 0, {"deleted": True}, None), ("Shelf", 0, {"backup_id": 0}, None)],
    actor="synchronizer",
)
@given(
    shops=st.integers(1, 3),
    purged=st.integers(0, 1),
    raw=st.lists(ITEM, max_size=14),
    actor=st.sampled_from(["synchronizer", "synchronizer", "policy", "user"]),
)
def test_a_batch_is_the_same_updates_one_by_one(
    twins: tuple[SqlStore, SqlStore],
    shops: int,
    purged: int,
    raw: list[tuple[str, int, dict[str, Any], str | None]],
    actor: Any,
) -> None:
    batched, twin = twins
    objects = populate(batched, shops, purged)
    assert populate(twin, shops, purged) == objects
    writes = build(objects, raw)
    before = (snapshot(batched), snapshot(twin))
    seqs = (last_seq(batched), last_seq(twin))

    got = batched.write_outcomes(writes, actor=actor)
    expected = one_by_one(twin, writes, actor)

    assert shown(got) == shown(expected)
    assert normalised(before[0], snapshot(batched)) == normalised(before[1], snapshot(twin))
    assert log_after(batched, seqs[0]) == log_after(twin, seqs[1])


def test_errors_come_back_in_their_slot_and_the_rest_is_saved(shop: SqlStore) -> None:
    a = shop.create("Shop", {"name": "a"})["id"]
    b = shop.create("Shop", {"name": "b"})["id"]
    shop.purge("Shop", b)
    seq = last_seq(shop)
    results = shop.write_outcomes(
        [
            OutcomeWrite("Shop", a, {"backend_status": "first"}),
            OutcomeWrite("Nope", a, {"backend_status": "x"}),
            OutcomeWrite("Shop", b, {"backend_status": "x"}),
            OutcomeWrite("Shop", a, {"rank": "high"}),
            OutcomeWrite("Shop", a, {"backend_status": "last", "backend_code": 1}),
            OutcomeWrite("Shop", a, {"backend_code": 1}),  # changes nothing: no log entry
        ]
    )
    assert results[0] is None and results[4] is None and results[5] is None
    assert isinstance(results[1], InvalidArgument) and "unknown model 'Nope'" in str(results[1])
    assert isinstance(results[2], NotFound) and str(results[2]) == f"Shop {b} does not exist"
    assert isinstance(results[3], InvalidArgument) and "Shop.rank" in str(results[3])
    row = shop.get("Shop", a)
    assert (row["backend_status"], row["backend_code"]) == ("last", 1)
    assert log_after(shop, seq) == [("update", "Shop", a), ("update", "Shop", a)]


def test_a_user_may_not_write_feedback_state(shop: SqlStore) -> None:
    a = shop.create("Shop", {"name": "a"})["id"]
    results = shop.write_outcomes(
        [
            OutcomeWrite("Shop", a, {"backend_status": "done"}),
            OutcomeWrite("Shop", a, {"secret_state": "s"}),
            OutcomeWrite("Shop", a, {"name": "renamed"}),
        ],
        actor="user",
    )
    assert isinstance(results[0], PermissionDenied)
    assert "Shop.backend_status is feedback state" in str(results[0])
    assert isinstance(results[1], PermissionDenied) and "Shop.secret_state" in str(results[1])
    assert results[2] is None
    row = shop.get("Shop", a)
    assert (row["name"], row["backend_status"], row["secret_state"]) == (
        "renamed",
        "Provisioning in progress",
        None,
    )


def _refuse_boom(store_url: str, table: str, column: str) -> None:
    """A real trigger that makes the database refuse a row whose `column` is 'boom'."""
    if store_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        conn.execute(
            f"CREATE TRIGGER refuse_boom BEFORE UPDATE ON {table} "
            f"WHEN NEW.{column} = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
        )
        conn.commit()
        conn.close()
        return
    with psycopg.connect(store_url) as pg:
        pg.execute(
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.{column} = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; "
            "RETURN NEW; END $$"
        )
        pg.execute(
            f"CREATE TRIGGER refuse_boom BEFORE UPDATE OR INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
        )


@pytest.mark.parametrize("where", ["row", "change log"])
def test_a_failing_batch_saves_nothing(shop: SqlStore, store_url: str, where: str) -> None:
    ids = [shop.create("Shop", {"name": f"s{i}"})["id"] for i in range(4)]
    seq = last_seq(shop)
    if where == "row":
        _refuse_boom(store_url, "shop", "backend_status")
        statuses = ["ok", "ok", "boom", "ok"]
    else:
        if store_url.startswith("sqlite"):
            pytest.skip("SQLite inserts the change log as it goes; the row case covers it")
        # The change log's insert is the last statement before COMMIT: make it fail.
        with psycopg.connect(store_url) as conn:
            conn.execute(
                "ALTER TABLE xsync_changes ADD CONSTRAINT no_updates CHECK (kind <> 'update')"
            )
        statuses = ["ok"] * 4
    writes = [OutcomeWrite("Shop", i, {"backend_status": s}) for i, s in zip(ids, statuses)]
    with pytest.raises(Unavailable, match="store write failed"):
        shop.write_outcomes(writes)
    assert [shop.get("Shop", i)["backend_status"] for i in ids] == ["Provisioning in progress"] * 4
    assert last_seq(shop) == seq


def test_a_reader_never_sees_half_a_batch(shop: SqlStore) -> None:
    ids = [r["id"] for r in shop.create_many("Shop", [{"name": f"s{i}"} for i in range(300)])]
    stop = threading.Event()
    seen: list[set[int]] = []

    def read() -> None:
        while not stop.is_set():
            seen.append({r["backend_code"] for r in shop.query("Shop")})

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for code in range(1, 9):
            results = shop.write_outcomes(
                [OutcomeWrite("Shop", i, {"backend_code": code}) for i in ids]
            )
            assert results == [None] * len(ids)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert len(seen) > 1
    assert all(len(codes) == 1 for codes in seen), [c for c in seen if len(c) > 1][:3]


# --- PostgreSQL: writers in parallel, Watch still exact --------------------------------------


@pytest.fixture
def pg_pair(tmp_path: Path) -> Iterator[tuple[str, SqlStore, SqlStore]]:
    """Two stores (as two runners would have) on one fresh PostgreSQL schema."""
    schema = schema_from_text(tmp_path, SHOP)
    with fresh_schema() as url:
        first = open_store(url, schema)
        second = open_store(url, schema)
        try:
            yield url, first, second
        finally:
            first.close()
            second.close()


def test_pg_writers_do_not_wait_for_each_others_whole_transaction(
    pg_pair: tuple[str, SqlStore, SqlStore],
) -> None:
    url, first, second = pg_pair
    x = first.create("Shop", {"name": "x"})["id"]
    y = first.create("Shop", {"name": "y"})["id"]
    blocked_done = threading.Event()
    others_done = threading.Event()

    def others() -> None:
        assert second.write_outcomes([OutcomeWrite("Shop", y, {"backend_code": 2})]) == [None]
        second.update("Shop", y, {"backend_status": "fine"}, actor="synchronizer")
        second.create("Shop", {"name": "z"})
        others_done.set()

    # Another session holds object x's row: a writer of x waits inside its transaction.
    with psycopg.connect(url) as holder:
        holder.execute("UPDATE shop SET rank = 7 WHERE id = %s", (x,))

        def blocked() -> None:
            first.write_outcomes([OutcomeWrite("Shop", x, {"backend_code": 1})])
            blocked_done.set()

        waiting = threading.Thread(target=blocked)
        waiting.start()
        time.sleep(0.3)  # the first writer is now inside its transaction, waiting for the row
        passing = threading.Thread(target=others)
        passing.start()
        # With the change-log lock taken at the start, these would wait for the first writer.
        passed = others_done.wait(timeout=5)
        first_still_waiting = not blocked_done.is_set()
        holder.rollback()
    waiting.join(timeout=30)
    passing.join(timeout=30)
    assert passed, "a writer of another object waited for a writer blocked on a row"
    assert first_still_waiting
    assert blocked_done.is_set()
    assert first.get("Shop", x)["backend_code"] == 1
    assert second.get("Shop", y)["backend_status"] == "fine"


_TRIGGERS: list[str] = []  # the property's examples share one schema: one trigger


def _slow_change_log(url: str, seconds: float, when: str = "true") -> None:
    """A real trigger that pauses a writer after it drew its change `seq`, before its commit:
    the moment where a writer drawing a later `seq` could otherwise commit first."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE FUNCTION slow_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM pg_sleep({seconds}); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER slow_change AFTER INSERT ON xsync_changes FOR EACH ROW "
            f"WHEN ({when}) EXECUTE FUNCTION slow_change()"
        )


def test_pg_a_later_seq_never_commits_before_an_earlier_one(
    pg_pair: tuple[str, SqlStore, SqlStore],
) -> None:
    url, first, second = pg_pair
    shop_id = first.create("Shop", {"name": "s"})["id"]
    start = last_seq(first)
    _slow_change_log(url, 0.5, "NEW.model = 'Tag'")
    slow = threading.Thread(target=lambda: first.create("Tag", {"name": "slow"}))
    slow.start()
    time.sleep(0.2)  # the Tag's writer has drawn its seq and sleeps before its commit
    second.write_outcomes([OutcomeWrite("Shop", shop_id, {"backend_code": 5})])
    watched = second.changes(start, timeout=5)  # what a Watch reader sees at this moment
    slow.join(timeout=10)
    assert not slow.is_alive()
    later = second.changes(watched[-1].seq)
    assert [(c.model, c.kind) for c in watched + later] == [("Tag", "create"), ("Shop", "update")]


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    plans=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["batch", "update", "create"]), st.integers(1, 30)),
            min_size=3,
            max_size=8,
        ),
        min_size=2,
        max_size=3,
    )
)
def test_pg_watch_sees_every_change_once_in_order_with_writers_in_parallel(
    pg_pair: tuple[str, SqlStore, SqlStore], plans: list[list[tuple[str, int]]]
) -> None:
    url, first, second = pg_pair
    ids = [r["id"] for r in first.create_many("Shop", [{"name": f"s{i}"} for i in range(30)])]
    if url not in _TRIGGERS:
        _slow_change_log(url, 0.003)  # widens the window between drawing a seq and committing
        _TRIGGERS.append(url)
    start = last_seq(first)
    errors: list[BaseException] = []

    def writer(store: SqlStore, plan: list[tuple[str, int]], salt: int) -> None:
        try:
            for step, (kind, n) in enumerate(plan):
                code = salt * 1000 + step
                if kind == "batch":
                    chosen = ids[:n] if salt % 2 else ids[-n:]
                    store.write_outcomes(
                        [OutcomeWrite("Shop", i, {"backend_code": code}) for i in chosen]
                    )
                elif kind == "update":
                    store.update("Shop", ids[n - 1], {"backend_code": code}, actor="synchronizer")
                else:
                    store.create_many("Shop", [{"name": f"w{salt}"}] * n)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(first if k % 2 else second, plan, k + 1))
        for k, plan in enumerate(plans)
    ]
    watched: list[Change] = []
    for t in threads:
        t.start()
    after = start
    while any(t.is_alive() for t in threads):
        found = second.changes(after, timeout=0.05)
        watched.extend(found)
        if found:
            after = found[-1].seq
    for t in threads:
        t.join(timeout=60)
    watched.extend(second.changes(after))
    assert errors == []
    everything = first.changes(start)
    assert [c.seq for c in watched] == sorted({c.seq for c in watched})  # once each, in order
    assert watched == everything  # and none skipped


# --- over gRPC: the core's server on loopback ------------------------------------------------


class _Counter(grpc.UnaryUnaryClientInterceptor):
    """Counts the calls a client makes, by method."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.calls.append(details.method)
        return continuation(details, request)


@pytest.fixture
def core(live_core: LiveCore) -> LiveCore:
    """The core's gRPC server on loopback, over a SQLite store (one for the module)."""
    return live_core


def remote(core: LiveCore, tmp_path: Path, username: str = "hello-sync") -> Any:
    """A client of the core whose calls are counted (`client.counter.calls`)."""
    client = core.client(username)
    counter = _Counter()
    client._channel = grpc.intercept_channel(client._channel, counter)
    client.counter = counter  # type: ignore[attr-defined]
    return client


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shops=st.integers(1, 2),
    purged=st.integers(0, 1),
    raw=st.lists(ITEM, min_size=1, max_size=10),
    actor=st.sampled_from(["synchronizer", "policy", "user"]),
)
def test_over_grpc_a_batch_is_one_call_with_the_local_results(
    core: LiveCore,
    tmp_path: Path,
    shops: int,
    purged: int,
    raw: list[tuple[str, int, dict[str, Any], str | None]],
    actor: Any,
) -> None:
    client = remote(core, tmp_path, "root")  # an admin may write as any actor
    local = open_store("sqlite://", core.schema)
    try:
        objects = populate(client, shops, purged)
        twin_objects = populate(local, shops, purged)
        local_writes = build(twin_objects, raw)
        writes = build(objects, raw)
        before = len(client.counter.calls)
        got = client.write_outcomes(writes, actor=actor)
        assert client.counter.calls[before:] == ["/xsync.Outcomes/Write"]
        expected = local.write_outcomes(local_writes, actor=actor)
        assert [type(r) for r in got] == [type(r) for r in expected]
        # Messages name ids, which differ between the two stores; the rest must agree.
        assert [re.sub(r"\d+", "#", str(r)) for r in got] == [
            re.sub(r"\d+", "#", str(r)) for r in expected
        ]
    finally:
        local.close()
        client.close()


def test_over_grpc_values_round_trip_exactly(core: LiveCore, tmp_path: Path) -> None:
    client = remote(core, tmp_path)
    try:
        a = client.create("Shop", {"name": "exact"})["id"]
        tags = [client.create("Tag", {"name": f"t{i}"})["id"] for i in range(3)]
        shelf = client.create("Shelf", {"name": "s", "shop_id": a})["id"]
        values = {
            "ratio": 0.1 + 0.2,
            "enacted": 1.7e9 + 1e-6,
            "big": 2**62 + 1,
            "rank": -7,
            "open": False,
            "opened_at": None,
            "label": 'naïve ☃ \u2028 "quoted"',
            "backend_status": "",
        }
        results = client.write_outcomes(
            [
                OutcomeWrite("Shop", a, values),
                OutcomeWrite("Shelf", shelf, {"tags_ids": (tags[2], tags[0])}),
            ]
        )
        assert results == [None, None]
        row = client.get("Shop", a)
        for key, value in values.items():
            assert row[key] == value and type(row[key]) is type(value), key
        assert client.get("Shelf", shelf)["tags_ids"] == [tags[0], tags[2]]
        # A value JSON cannot carry is refused in its slot, naming the field; the rest saved.
        results = client.write_outcomes(
            [
                OutcomeWrite("Shop", a, {"label": {"not": "a value"}}),
                OutcomeWrite("Shop", a, {"backend_code": 3}),
            ]
        )
        assert isinstance(results[0], InvalidArgument) and "Shop.label" in str(results[0])
        assert results[1] is None and client.get("Shop", a)["backend_code"] == 3
    finally:
        client.close()


def test_over_grpc_the_core_refuses_bad_values_naming_the_field(
    core: LiveCore, tmp_path: Path
) -> None:
    channel = grpc.insecure_channel(core.server.endpoint)
    call: Any = channel.unary_unary("/xsync.Outcomes/Write")
    metadata = (*credentials("hello-sync"), ("actor", "synchronizer"))
    try:
        for body, named in [
            ({"writes": [["Shop", 1, {"rank": {"deep": 1}}]]}, "outcomes item 0 (Shop.rank)"),
            ({"writes": [["Shop", 1, {"name": [1, 2]}]]}, "outcomes item 0 (Shop.name)"),
            ({"writes": [["Shop", 1, {"tags_ids": ["x"]}]]}, "outcomes item 0 (Shop.tags_ids)"),
            ({"writes": [["Shop", "one", {}]]}, "outcomes item 0"),
            ({"items": []}, "'writes' list"),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                call(json.dumps(body).encode(), metadata=metadata, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert named in str(caught.value.details())
    finally:
        channel.close()


def test_over_grpc_rights_are_those_of_an_update(core: LiveCore, tmp_path: Path) -> None:
    sync, user = remote(core, tmp_path), remote(core, tmp_path, "alice")
    try:
        a = sync.create("Shop", {"name": "rights"})["id"]
        with pytest.raises(PermissionDenied, match="may not write as synchronizer"):
            user.write_outcomes([OutcomeWrite("Shop", a, {"backend_code": 1})])
        results = user.write_outcomes(
            [
                OutcomeWrite("Shop", a, {"backend_status": "mine"}),
                OutcomeWrite("Shop", a, {"name": "renamed"}),
                OutcomeWrite("Shop", 10**6, {"name": "x"}),
            ],
            actor="user",
        )
        assert isinstance(results[0], PermissionDenied) and "feedback state" in str(results[0])
        assert results[1] is None
        assert isinstance(results[2], NotFound)  # a per-item NotFound, not a failed call
        assert sync.get("Shop", a)["name"] == "renamed"
    finally:
        sync.close()
        user.close()


def test_over_grpc_a_large_batch_is_sent_in_few_calls(core: LiveCore, tmp_path: Path) -> None:
    client = remote(core, tmp_path)
    try:
        made = client.create_many("Shop", [{"name": f"s{i}"} for i in range(1200)])
        writes = [OutcomeWrite("Shop", r["id"], {"backend_code": 9}) for r in made] * 10
        before = len(client.counter.calls)
        assert client.write_outcomes(writes) == [None] * len(writes)
        assert client.counter.calls[before:] == ["/xsync.Outcomes/Write"] * 2  # 12,000 items
        assert {r["backend_code"] for r in client.query("Shop", filters={"name": "s7"})} == {9}
    finally:
        client.close()
