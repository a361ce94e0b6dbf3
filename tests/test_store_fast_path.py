"""The cheap create path and `create_many`, on both backends.

On SQLite a create runs on a raw connection kept for writing, not through SQLAlchemy; these
tests hold it to the store's rules: one transaction per create (per batch for
`create_many`), a change-log row per object in commit order, nothing half-written on error,
and a connection that is usable again after a failure.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from store_support import (  # noqa: F401 - open_at and store_url are fixtures
    SHOP,
    OpenStore,
    ids,
    open_at,
    schema_from_text,
    shop,
    store_url,
)
from xsync.store import InvalidArgument, PermissionDenied, SqlStore, open_store


def test_create_many_records_match_get_and_log_one_change_each(shop: SqlStore) -> None:
    tag = shop.create("Tag", {"name": "new"})
    home = shop.create("Shop", {"name": "home"})
    mark = shop.changes()[-1].seq
    made = shop.create_many(
        "Shelf",
        [
            {"name": "a", "shop_id": home["id"], "tags_ids": [tag["id"]]},
            {"name": "b", "shop_id": home["id"], "backup_id": home["id"]},
            {"name": "c", "shop_id": home["id"]},
        ],
    )
    assert [r["name"] for r in made] == ["a", "b", "c"]
    made_ids = [int(r["id"]) for r in made]
    assert made_ids == sorted(made_ids) and len(set(made_ids)) == 3
    assert [r["tags_ids"] for r in made] == [[tag["id"]], [], []]
    for record in made:
        assert shop.get("Shelf", record["id"]) == record
    changes = shop.changes(mark)
    assert [(c.kind, c.model, c.id) for c in changes] == [
        ("create", "Shelf", r["id"]) for r in made
    ]
    stamps = [r["updated"] for r in made]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert all(r["created"] == r["updated"] for r in made)


def test_create_many_by_the_synchronizer_is_stamped_like_create(shop: SqlStore) -> None:
    one = shop.create("Shop", {"name": "one", "secret_state": "s"}, actor="synchronizer")
    (many,) = shop.create_many("Shop", [{"name": "two", "secret_state": "s"}], actor="synchronizer")
    for record in (one, many):
        assert record["changed_by_step"] == record["updated"]
        assert record["secret_state"] == "s"
    with pytest.raises(PermissionDenied, match="Shop.secret_state"):
        shop.create_many("Shop", [{"name": "x"}, {"name": "y", "secret_state": "s"}])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"name": "x", "colour": "red"}, "'colour'"),
        ({"name": "x", "rank": "high"}, "Shop.rank"),
        ({"rank": 1}, "Shop.name is required"),
        ({"name": "x", "id": 7}, "Shop.id"),
        ({"name": "x" * 21}, "Shop.name"),
    ],
)
def test_a_bad_item_fails_the_whole_batch_and_writes_nothing(
    shop: SqlStore, bad: dict[str, Any], message: str
) -> None:
    shop.create("Shop", {"name": "first"})
    before = shop.changes()
    with pytest.raises(InvalidArgument, match=message):
        shop.create_many("Shop", [{"name": "ok"}, bad, {"name": "ok too"}])
    assert shop.changes() == before
    assert [r["name"] for r in shop.query("Shop")] == ["first"]


def test_a_failed_link_check_inside_the_transaction_rolls_back_earlier_rows(
    shop: SqlStore,
) -> None:
    home = shop.create("Shop", {"name": "home"})
    before = shop.changes()
    # The first shelf is inserted before the second one's link is found to be missing.
    with pytest.raises(InvalidArgument, match=r"Shelf.shop_id = 99999: there is no Shop"):
        shop.create_many(
            "Shelf", [{"name": "a", "shop_id": home["id"]}, {"name": "b", "shop_id": 99999}]
        )
    assert shop.changes() == before and shop.query("Shelf") == []
    shop.delete("Shop", home["id"])
    with pytest.raises(InvalidArgument, match="is deleted"):
        shop.create("Shelf", {"name": "c", "shop_id": home["id"]})
    # The write connection is not left inside a transaction: the next create commits.
    again = shop.create("Shop", {"name": "again"})
    assert shop.get("Shop", again["id"]) == again


def test_create_many_refuses_what_is_not_a_list_and_accepts_an_empty_one(
    shop: SqlStore,
) -> None:
    before = shop.changes()
    assert shop.create_many("Shop", []) == []
    for wrong in ({"name": "x"}, "name", None):
        with pytest.raises(InvalidArgument, match="list of Shop values"):
            shop.create_many("Shop", wrong)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="must be a mapping"):
        shop.create_many("Shop", [["name", "x"]])  # type: ignore[list-item]
    assert shop.changes() == before


def test_creates_from_threads_and_a_second_store_keep_change_order_equal_to_commit_order(
    open_at: OpenStore, tmp_path: Path  # noqa: F811
) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    first, second = open_at(schema), open_at(schema)  # two stores: as two processes would
    errors: list[BaseException] = []

    def writer(store: SqlStore, k: int, bulk: bool) -> None:
        try:
            for i in range(15):
                if bulk:
                    store.create_many("Tag", [{"name": f"{k}-{i}-a"}, {"name": f"{k}-{i}-b"}])
                else:
                    store.create("Tag", {"name": f"{k}-{i}"})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(store, k, k % 2 == 1))
        for k, store in enumerate([first, second, first, second])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    changes = first.changes()
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    if first.shared_by_runners:
        # PostgreSQL: writers draw ids in parallel and take the change-log lock only to insert
        # the log and commit (`store.changelog`), so ids need not follow commit order; each
        # writer's own ids still do.
        for k in range(4):
            mine = [c.id for c in changes if first.get("Tag", c.id)["name"].startswith(f"{k}-")]
            assert mine == sorted(mine)
    else:
        # SQLite: one writer at a time from BEGIN to COMMIT, so both orders agree.
        assert [c.id for c in changes] == sorted(c.id for c in changes)
    assert len(changes) == 2 * 15 + 2 * 30
    assert sorted(c.id for c in changes) == ids(second.query("Tag"))


def test_a_create_is_visible_to_another_store_on_the_same_database(
    store_url: str, tmp_path: Path  # noqa: F811
) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    writer, reader = open_store(store_url, schema), open_store(store_url, schema)
    try:
        made = writer.create("Shop", {"name": "seen"})
        assert reader.get("Shop", made["id"]) == made
        assert [c.id for c in reader.changes()] == [made["id"]]
    finally:
        writer.close()
        reader.close()


def test_a_closed_store_can_be_reopened_and_written(tmp_path: Path) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    url = f"sqlite:///{tmp_path / 'reopen.db'}"
    made = []
    for name in ("one", "two"):
        store = open_store(url, schema)
        try:
            made.append(store.create("Shop", {"name": name}))
        finally:
            store.close()
    store = open_store(url, schema)
    try:
        assert store.query("Shop") == made
    finally:
        store.close()


def test_the_in_memory_store_uses_the_same_path(tmp_path: Path) -> None:
    store = open_store("sqlite://", schema_from_text(tmp_path, SHOP))
    try:
        made = store.create_many("Shop", [{"name": "a"}, {"name": "b"}])
        assert store.query("Shop") == made
        assert [c.id for c in store.changes()] == ids(made)
    finally:
        store.close()
