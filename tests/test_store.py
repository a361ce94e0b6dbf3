"""The SQL store on SQLite and PostgreSQL: round trips, the XOS save rules, pending work, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from store_support import (  # noqa: F401 (fixtures)
    HELLO,
    SHOP,
    core_and_service,
    ids,
    open_at,
    schema_from_text,
    shop,
    store_url,
)
from xprotogen.loader import load_schema
from xprotogen.schema import Schema
from xsync.store import (
    InvalidArgument,
    NotFound,
    PendingQuery,
    PermissionDenied,
    SqlStore,
)

OpenAt = Callable[..., SqlStore]


def _shop_with_shelf(store: SqlStore, **shelf: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    s = store.create("Shop", {"name": "corner"})
    return s, store.create("Shelf", {"name": "top", "shop_id": s["id"], **shelf})


# --- round trips ---------------------------------------------------------------------------


def test_hello_round_trip(open_at: OpenAt) -> None:
    store = open_at(load_schema([HELLO]))
    world = store.create("World", {"name": "earth"})
    country = store.create("Country", {"name": "France", "world_id": world["id"]})
    greeting = store.create("Greeting", {"message": "bonjour", "country_id": country["id"]})

    assert store.get("Greeting", greeting["id"]) == greeting
    assert greeting["fail"] is False and greeting["leaf_model_name"] == "Greeting"
    assert greeting["backend_status"] == "Provisioning in progress"
    assert greeting["created"] == greeting["updated"] and greeting["enacted"] is None

    updated = store.update("Country", country["id"], {"name": "Francia"})
    assert store.get("Country", country["id"]) == updated and updated["name"] == "Francia"

    store.delete("World", world["id"])
    with pytest.raises(NotFound):
        store.get("Country", country["id"])
    assert store.get("Greeting", greeting["id"], include_deleted=True)["deleted"] is True
    assert store.model_names() == ["World", "Country", "Greeting"]


def test_core_and_service_round_trip_through_base_classes(open_at: OpenAt) -> None:
    store = open_at(core_and_service())
    service = store.create("SimpleExampleService", {"name": "simple", "service_message": "hi"})
    assert service["kind"] == "generic" and service["enabled"] is True
    color = store.create("ColorNew", {"name": "red", "html_code": "#f00"})
    # `owner` links to Service: a SimpleExampleService row is a Service.
    instance = store.create(
        "SimpleExampleServiceInstance",
        {"owner_id": service["id"], "tenant_message": "hello", "foreground_color_id": color["id"]},
    )
    assert store.get("SimpleExampleServiceInstance", instance["id"]) == instance
    assert instance["link_deleted_count"] == 0

    as_base = store.get("ServiceInstance", instance["id"])
    assert as_base["leaf_model_name"] == "SimpleExampleServiceInstance"
    assert "tenant_message" not in as_base and as_base["owner_id"] == service["id"]
    assert ids(store.query("Service", filters={"name": "simple"})) == [service["id"]]
    store.update("ServiceInstance", instance["id"], {"name": "via base"})
    assert store.get("SimpleExampleServiceInstance", instance["id"])["name"] == "via base"

    store.delete("Service", service["id"])
    assert store.get("ServiceInstance", instance["id"], include_deleted=True)["deleted"] is True
    assert store.get("ColorNew", color["id"])["deleted"] is False  # optional link: no cascade


def test_every_column_kind_round_trips(shop: SqlStore) -> None:
    values = {
        "name": "big",
        "rank": -(2**31),
        "big": 2**62,
        "ratio": 0.25,
        "open": False,
        "opened_at": 1700000000.5,
        "visitors": 2**32 - 1,
        "label": "é ünïcode",
    }
    created = shop.create("Shop", values)
    assert {k: created[k] for k in values} == values
    assert {k: shop.get("Shop", created["id"])[k] for k in values} == values


def test_defaults_come_from_the_xproto(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    assert (created["rank"], created["ratio"], created["open"], created["label"]) == (
        0,
        1.5,
        True,
        "plain",
    )
    assert created["big"] is None and created["opened_at"] is None
    assert created["backend_register"] == "{}" and created["policy_status"] == "Policy in process"
    assert created["xos_managed"] is True and created["backend_code"] == 0


def test_many_to_many_reads_as_id_lists(shop: SqlStore) -> None:
    a, b = shop.create("Tag", {"name": "a"}), shop.create("Tag", {"name": "b"})
    _, shelf = _shop_with_shelf(shop, tags_ids=[b["id"], a["id"]])
    assert shelf["tags_ids"] == sorted([a["id"], b["id"]])
    shop.update("Shelf", shelf["id"], {"tags_ids": [b["id"]]})
    assert shop.get("Shelf", shelf["id"])["tags_ids"] == [b["id"]]
    assert shop.query("Shelf")[0]["tags_ids"] == [b["id"]]


# --- timestamps and who writes ---------------------------------------------------------


def test_user_update_stamps_updated(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update("Shop", created["id"], {"name": "y"})
    assert after["updated"] > created["updated"]
    assert shop.get("Shop", created["id"])["updated"] == after["updated"]


@pytest.mark.parametrize("actor", ["synchronizer", "policy"])
def test_non_user_update_keeps_updated(shop: SqlStore, actor: Any) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update("Shop", created["id"], {"enacted": 5.0, "updated": 1.0}, actor=actor)
    assert after["updated"] == created["updated"] == shop.get("Shop", created["id"])["updated"]


def test_always_update_timestamp_with_update_fields_persists_updated(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    shop.update(
        "Shop",
        created["id"],
        {"backend_status": "boom", "backend_code": 2},
        actor="synchronizer",
        update_fields=["backend_status", "backend_code"],
        always_update_timestamp=True,
    )
    stored = shop.get("Shop", created["id"])
    assert stored["updated"] > created["updated"]  # XOS loses this write (reference 11, item 9)
    assert (stored["backend_status"], stored["backend_code"]) == ("boom", 2)


def test_synchronizer_important_change_stamps_changed_by_step(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update("Shop", created["id"], {"rank": 3}, actor="synchronizer")
    assert after["changed_by_step"] is not None and after["changed_by_policy"] is None


def test_synchronizer_bookkeeping_change_is_not_important(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update(
        "Shop",
        created["id"],
        {
            "enacted": 1.0,
            "policed": 1.0,
            "backend_status": "OK",
            "backend_need_delete": True,
            "policy_code": 1,
        },
        actor="synchronizer",
    )
    assert after["changed_by_step"] is None and after["backend_status"] == "OK"


def test_synchronizer_resending_same_values_changes_nothing(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    mark = shop.changes()[-1].seq
    after = shop.update("Shop", created["id"], dict(created), actor="synchronizer")
    assert after == created and shop.changes(mark) == []


def test_policy_important_change_stamps_changed_by_policy(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update("Shop", created["id"], {"label": "fancy"}, actor="policy")
    assert after["changed_by_policy"] is not None and after["changed_by_step"] is None
    assert after["updated"] == created["updated"]


def test_update_fields_writes_only_listed_columns(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    shop.update("Shop", created["id"], {"name": "ignored", "rank": 7}, update_fields=["rank"])
    stored = shop.get("Shop", created["id"])
    assert (stored["name"], stored["rank"]) == ("x", 7)


def test_update_fields_accept_link_field_names(shop: SqlStore) -> None:
    s, shelf = _shop_with_shelf(shop)
    other = shop.create("Shop", {"name": "other"})
    shop.update(
        "Shelf", shelf["id"], {"backup_id": other["id"], "name": "no"}, update_fields="backup"
    )
    stored = shop.get("Shelf", shelf["id"])
    assert (stored["backup_id"], stored["name"]) == (other["id"], "top")


def test_user_edit_during_sync_is_kept_and_stays_pending(shop: SqlStore) -> None:
    obj = shop.create("Shop", {"name": "before"})
    seen_by_sync = shop.get("Shop", obj["id"])  # the synchronizer's copy at the start of its pass
    shop.update("Shop", obj["id"], {"name": "after"})  # the user edits meanwhile
    shop.update(
        "Shop",
        obj["id"],
        {
            **seen_by_sync,
            "enacted": seen_by_sync["updated"],
            "backend_status": "OK",
            "backend_code": 1,
        },
        actor="synchronizer",
        update_fields=["enacted", "backend_status", "backend_code"],
    )
    stored = shop.get("Shop", obj["id"])
    assert stored["name"] == "after" and stored["backend_status"] == "OK"
    assert ids(shop.pending("Shop", PendingQuery.DIRTY_OBJECTS)) == [obj["id"]]


# --- feedback state ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "backend_status",
        "backend_code",
        "backend_register",
        "policy_code",
        "backend_handle",
        "secret_state",
    ],
)
def test_user_may_not_write_feedback_state(shop: SqlStore, column: str) -> None:
    created = shop.create("Shop", {"name": "x"})
    mark = shop.changes()[-1].seq
    value: Any = 9 if column.endswith("_code") else "forged"
    with pytest.raises(PermissionDenied, match=f"Shop.{column}"):
        shop.update("Shop", created["id"], {"name": "y", column: value})
    assert shop.get("Shop", created["id"]) == created and shop.changes(mark) == []
    with pytest.raises(PermissionDenied, match=f"Shop.{column}"):
        shop.create("Shop", {"name": "z", column: value})
    assert len(shop.query("Shop")) == 1


def test_policy_saves_as_the_synchronizer_and_may_write_feedback_state(shop: SqlStore) -> None:
    # XOS: the policy thread saves with caller_kind "synchronizer"; only changed_by_policy differs.
    created = shop.create("Shop", {"name": "x"})
    after = shop.update(
        "Shop",
        created["id"],
        {"policy_code": 1, "backend_status": "OK", "secret_state": "s", "label": "l"},
        actor="policy",
    )
    assert (after["policy_code"], after["backend_status"], after["secret_state"]) == (1, "OK", "s")
    assert after["updated"] == created["updated"] and after["changed_by_policy"] is not None


def test_user_resending_unchanged_feedback_state_is_allowed(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update("Shop", created["id"], {**created, "name": "y"})
    assert after["name"] == "y"


def test_synchronizer_writes_feedback_state(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    after = shop.update(
        "Shop", created["id"], {"secret_state": "s", "backend_code": 1}, actor="synchronizer"
    )
    assert (after["secret_state"], after["backend_code"]) == ("s", 1)


# --- delete and purge -------------------------------------------------------------------


def test_soft_delete_clears_enacted_and_policed(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x"})
    shop.update("Shop", created["id"], {"enacted": 10.0, "policed": 10.0}, actor="synchronizer")
    shop.delete("Shop", created["id"])
    stored = shop.get("Shop", created["id"], include_deleted=True)
    assert (stored["deleted"], stored["enacted"], stored["policed"]) == (True, None, None)
    assert stored["updated"] == created["updated"]
    assert shop.query("Shop") == [] and ids(shop.query("Shop", deleted=True)) == [created["id"]]


def test_write_protected_object_is_not_deleted(shop: SqlStore) -> None:
    created = shop.create("Shop", {"name": "x", "write_protect": True})
    mark = shop.changes()[-1].seq
    shop.delete("Shop", created["id"])
    assert shop.get("Shop", created["id"])["deleted"] is False and shop.changes(mark) == []


def test_delete_cascades_through_required_links_transitively(shop: SqlStore) -> None:
    s, shelf = _shop_with_shelf(shop)
    item = shop.create("Item", {"name": "cup", "shelf_id": shelf["id"]})
    spare = shop.create("Shop", {"name": "spare"})
    backed = shop.create("Shelf", {"name": "b", "shop_id": spare["id"], "backup_id": s["id"]})
    shop.delete("Shop", s["id"])
    assert shop.get("Item", item["id"], include_deleted=True)["deleted"] is True
    assert shop.get("Shelf", shelf["id"], include_deleted=True)["deleted"] is True
    assert shop.get("Shelf", backed["id"])["deleted"] is False  # optional link: no cascade
    kinds = [(c.kind, c.model, c.id) for c in shop.changes()][-3:]
    assert kinds == [
        ("delete", "Shop", s["id"]),
        ("delete", "Shelf", shelf["id"]),
        ("delete", "Item", item["id"]),
    ]


def test_cascade_leaves_write_protected_objects_alone(shop: SqlStore) -> None:
    s, shelf = _shop_with_shelf(shop, write_protect=True)
    shop.delete("Shop", s["id"])
    assert shop.get("Shelf", shelf["id"])["deleted"] is False


def test_purge_removes_the_row_and_its_links(shop: SqlStore) -> None:
    tag = shop.create("Tag", {"name": "t"})
    s, shelf = _shop_with_shelf(shop, tags_ids=[tag["id"]])
    shop.delete("Tag", tag["id"])
    shop.purge("Tag", tag["id"])
    with pytest.raises(NotFound):
        shop.get("Tag", tag["id"], include_deleted=True)
    assert shop.get("Shelf", shelf["id"])["tags_ids"] == []
    shop.purge("Shelf", shelf["id"])
    assert shop.query("Shelf", deleted=None) == []
    assert shop.changes()[-1].kind == "delete"


# --- pending work (reference table 3.1) -------------------------------------------------

NOW = object()  # stands for the object's own `updated`


def _at(updated: float, value: Any) -> Any:
    if value is NOW:
        return updated
    if isinstance(value, tuple):
        return updated + value[0]
    return value


PENDING_CASES: list[tuple[str, dict[str, Any], bool, set[PendingQuery]]] = [
    # (name, columns (times as offsets from `updated`), soft-deleted?, queries that select it)
    ("fresh", {}, False, {PendingQuery.DIRTY_OBJECTS, PendingQuery.DIRTY_POLICIES}),
    ("in sync", {"enacted": NOW, "policed": NOW}, False, set()),
    (
        "enacted before updated",
        {"enacted": (-1,), "policed": NOW},
        False,
        {PendingQuery.DIRTY_OBJECTS},
    ),
    ("enacted after updated", {"enacted": (1,), "policed": (1,)}, False, set()),
    (
        "changed by policy after enacted",
        {"enacted": NOW, "policed": NOW, "changed_by_policy": (1,)},
        False,
        {PendingQuery.DIRTY_OBJECTS},
    ),
    (
        "changed by policy before enacted",
        {"enacted": NOW, "policed": NOW, "changed_by_policy": (-1,)},
        False,
        set(),
    ),
    (
        "changed by step after policed",
        {"enacted": NOW, "policed": NOW, "changed_by_step": (1,)},
        False,
        {PendingQuery.DIRTY_POLICIES},
    ),
    ("lazy blocked", {"lazy_blocked": True, "policed": NOW}, False, set()),
    ("no sync", {"no_sync": True}, False, {PendingQuery.DIRTY_POLICIES}),
    ("no policy", {"no_policy": True}, False, {PendingQuery.DIRTY_OBJECTS}),
    ("deleted", {}, True, {PendingQuery.DELETED_OBJECTS, PendingQuery.DELETED_POLICIES}),
    ("deleted, policed", {"policed": NOW}, True, {PendingQuery.DELETED_OBJECTS}),
    (
        "deleted, policed earlier",
        {"policed": (-1,)},
        True,
        {PendingQuery.DELETED_OBJECTS, PendingQuery.DELETED_POLICIES},
    ),
    (
        "deleted, reaped, no sync",
        {"policed": NOW, "backend_need_reap": True, "no_sync": True},
        True,
        {PendingQuery.DELETED_OBJECTS},
    ),
    (
        "deleted, no policy, changed by step",
        {"policed": NOW, "no_policy": True, "changed_by_step": (1,)},
        True,
        {PendingQuery.DELETED_OBJECTS},
    ),
]


@pytest.mark.parametrize(
    "name,columns,deleted,selected", PENDING_CASES, ids=[c[0] for c in PENDING_CASES]
)
def test_pending_queries_follow_table_3_1(
    shop: SqlStore, name: str, columns: dict[str, Any], deleted: bool, selected: set[PendingQuery]
) -> None:
    obj = shop.create("Shop", {"name": "x"})
    if deleted:
        shop.delete("Shop", obj["id"])
    flags = {k: v for k, v in columns.items() if isinstance(v, bool)}
    if flags:
        shop.update("Shop", obj["id"], flags)  # bookkeeping flags are the user's to set
    obj = shop.get("Shop", obj["id"], include_deleted=True)
    times = {k: _at(obj["updated"], v) for k, v in columns.items() if not isinstance(v, bool)}
    shop.update("Shop", obj["id"], times, actor="synchronizer")
    for query in PendingQuery:
        assert (ids(shop.pending("Shop", query)) == [obj["id"]]) == (query in selected), query


# --- bad requests --------------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, Callable[[SqlStore, int], Any], type[Exception], str]] = [
    ("unknown model", lambda s, i: s.create("Nope", {"name": "x"}), InvalidArgument, "Nope"),
    (
        "unknown field",
        lambda s, i: s.create("Shop", {"name": "x", "colour": 1}),
        InvalidArgument,
        "Shop.*colour",
    ),
    (
        "link by field name",
        lambda s, i: s.create("Shelf", {"name": "x", "shop": i}),
        InvalidArgument,
        "shop_id",
    ),
    (
        "string for int32",
        lambda s, i: s.create("Shop", {"name": "x", "rank": "3"}),
        InvalidArgument,
        "Shop.rank",
    ),
    (
        "int32 out of range",
        lambda s, i: s.update("Shop", i, {"rank": 2**31}),
        InvalidArgument,
        "Shop.rank",
    ),
    (
        "negative uint32",
        lambda s, i: s.update("Shop", i, {"visitors": -1}),
        InvalidArgument,
        "Shop.visitors",
    ),
    (
        "bool for int",
        lambda s, i: s.update("Shop", i, {"rank": True}),
        InvalidArgument,
        "Shop.rank",
    ),
    (
        "non-bool for bool",
        lambda s, i: s.update("Shop", i, {"open": 1}),
        InvalidArgument,
        "Shop.open",
    ),
    (
        "string for float",
        lambda s, i: s.update("Shop", i, {"ratio": "1.0"}),
        InvalidArgument,
        "Shop.ratio",
    ),
    (
        "string for date",
        lambda s, i: s.update("Shop", i, {"opened_at": "2020-01-01"}),
        InvalidArgument,
        "Shop.opened_at",
    ),
    (
        "too long",
        lambda s, i: s.update("Shop", i, {"name": "x" * 21}),
        InvalidArgument,
        "Shop.name",
    ),
    (
        "None for required",
        lambda s, i: s.update("Shop", i, {"name": None}),
        InvalidArgument,
        "Shop.name",
    ),
    ("missing required", lambda s, i: s.create("Shop", {"rank": 1}), InvalidArgument, "Shop.name"),
    (
        "missing required link",
        lambda s, i: s.create("Shelf", {"name": "x"}),
        InvalidArgument,
        "Shelf.shop_id",
    ),
    (
        "link to missing",
        lambda s, i: s.create("Shelf", {"name": "x", "shop_id": 999}),
        InvalidArgument,
        "Shelf.shop_id",
    ),
    (
        "link to wrong model",
        lambda s, i: s.create("Item", {"name": "x", "shelf_id": i}),
        InvalidArgument,
        "Item.shelf_id",
    ),
    (
        "m2m not a list",
        lambda s, i: s.create("Shelf", {"name": "x", "shop_id": i, "tags_ids": 3}),
        InvalidArgument,
        "Shelf.tags_ids",
    ),
    (
        "m2m to missing",
        lambda s, i: s.create("Shelf", {"name": "x", "shop_id": i, "tags_ids": [999]}),
        InvalidArgument,
        "Shelf.tags_ids",
    ),
    (
        "id on create",
        lambda s, i: s.create("Shop", {"name": "x", "id": 5}),
        InvalidArgument,
        "Shop.id",
    ),
    ("id changes", lambda s, i: s.update("Shop", i, {"id": i + 1}), InvalidArgument, "Shop.id"),
    (
        "unknown update field",
        lambda s, i: s.update("Shop", i, {}, update_fields=["colour"]),
        InvalidArgument,
        "colour",
    ),
    ("unknown actor", lambda s, i: s.update("Shop", i, {"name": "y"}, actor="root"), InvalidArgument, "root"),  # type: ignore[arg-type]
    ("missing id", lambda s, i: s.get("Shop", 999), NotFound, "Shop 999"),
    ("update missing", lambda s, i: s.update("Shop", 999, {"name": "y"}), NotFound, "Shop 999"),
    ("delete missing", lambda s, i: s.delete("Shop", 999), NotFound, "Shop 999"),
    ("purge missing", lambda s, i: s.purge("Shop", 999), NotFound, "Shop 999"),
    ("id of another model", lambda s, i: s.get("Tag", i), NotFound, f"Tag"),
    (
        "filter unknown",
        lambda s, i: s.query("Shop", filters={"colour": 1}),
        InvalidArgument,
        "colour",
    ),
    (
        "filter bad type",
        lambda s, i: s.query("Shop", filters={"rank__gt": "a"}),
        InvalidArgument,
        "Shop.rank",
    ),
    (
        "filter in needs list",
        lambda s, i: s.query("Shop", filters={"rank__in": 3}),
        InvalidArgument,
        "rank__in",
    ),
    (
        "order by unknown",
        lambda s, i: s.query("Shop", order_by=["-colour"]),
        InvalidArgument,
        "colour",
    ),
]


@pytest.mark.parametrize("name,call,error,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_is_refused_and_writes_nothing(
    shop: SqlStore,
    name: str,
    call: Callable[[SqlStore, int], Any],
    error: type[Exception],
    message: str,
) -> None:
    existing = shop.create("Shop", {"name": "x"})
    before = {m: shop.query(m, deleted=None) for m in shop.model_names()}
    mark = shop.changes()[-1].seq
    with pytest.raises(error, match=message):
        call(shop, existing["id"])
    assert {m: shop.query(m, deleted=None) for m in shop.model_names()} == before
    assert shop.changes(mark) == []


def test_link_to_deleted_object_is_refused(shop: SqlStore) -> None:
    s = shop.create("Shop", {"name": "gone"})
    shop.delete("Shop", s["id"])
    with pytest.raises(InvalidArgument, match="Shelf.shop_id.*deleted"):
        shop.create("Shelf", {"name": "x", "shop_id": s["id"]})


def test_abstract_model_cannot_be_created(open_at: OpenAt) -> None:
    store = open_at(core_and_service())
    with pytest.raises(InvalidArgument, match="XOSBase is abstract"):
        store.create("XOSBase", {})


# --- queries ----------------------------------------------------------------------------------


def test_query_filters_and_excludes(shop: SqlStore) -> None:
    made = [
        shop.create("Shop", {"name": f"s{i}", "rank": i, "big": None if i % 2 else i})
        for i in range(5)
    ]
    r = [m["id"] for m in made]
    assert ids(shop.query("Shop", filters={"rank": 2})) == [r[2]]
    assert ids(shop.query("Shop", filters={"rank__in": [1, 3]})) == [r[1], r[3]]
    assert ids(shop.query("Shop", filters={"rank__gt": 2})) == [r[3], r[4]]
    assert ids(shop.query("Shop", filters={"rank__gte": 2, "rank__lt": 4})) == [r[2], r[3]]
    assert ids(shop.query("Shop", filters={"rank__lte": 0})) == [r[0]]
    assert ids(shop.query("Shop", filters={"big__isnull": True})) == [r[1], r[3]]
    assert ids(shop.query("Shop", filters={"big": None})) == [r[1], r[3]]
    assert ids(shop.query("Shop", excludes={"rank__gt": 0, "big__isnull": True})) == [
        r[0],
        r[2],
        r[4],
    ]
    assert ids(shop.query("Shop", order_by=["-rank"], limit=2)) == [r[4], r[3]]
    assert ids(shop.query("Shop", order_by=["big", "id"])) == [r[0], r[2], r[4], r[1], r[3]]
    assert ids(shop.query("Shop", filters={"id__in": [r[0], r[4]]})) == [r[0], r[4]]


def test_query_on_links(shop: SqlStore) -> None:
    s, shelf = _shop_with_shelf(shop)
    _shop_with_shelf(shop)
    assert ids(shop.query("Shelf", filters={"shop_id": s["id"]})) == [shelf["id"]]


def test_query_on_a_base_class_merges_subclass_tables(open_at: OpenAt) -> None:
    store = open_at(core_and_service())
    plain = store.create("Service", {"name": "b"})
    simple = store.create("SimpleExampleService", {"name": "a", "service_message": "m"})
    assert ids(store.query("Service", order_by=["name"])) == [simple["id"], plain["id"]]
    assert ids(store.query("Service", order_by=["-name"], limit=1)) == [plain["id"]]
    assert ids(store.pending("Service", PendingQuery.DIRTY_OBJECTS)) == sorted(
        [plain["id"], simple["id"]]
    )


# --- opening, reopening, evolving -------------------------------------------------------------

V1 = """
message Box (XOSBase) {
    required string name = 1;
}
"""
V2 = """
message Box (XOSBase) {
    required string name = 1;
    optional int32 size = 2 [default = 7];
    optional string colour = 3 [default = "grey"];
}
message Lid (XOSBase) {
    required manytoone box->Box:lids = 1:1001;
}
"""


def test_schema_evolution_keeps_rows(open_at: OpenAt, tmp_path: Path) -> None:
    first = open_at(schema_from_text(tmp_path, V1, "v1"), core_version="1.0")
    box = first.create("Box", {"name": "old"})
    first.close()

    second = open_at(schema_from_text(tmp_path, V2, "v2"), core_version="2.0")
    kept = second.get("Box", box["id"])
    assert {k: kept[k] for k in box} == box
    assert (kept["size"], kept["colour"]) == (7, "grey")
    lid = second.create("Lid", {"box_id": box["id"]})
    assert second.get("Lid", lid["id"])["box_id"] == box["id"]
    assert second.core_version() == "2.0"
    assert [c.kind for c in second.changes()] == ["create", "create"]


def test_reopened_store_keeps_data_in_a_new_process(
    open_at: OpenAt, store_url: str, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    schema_path = tmp_path / "shop.xproto"
    schema_path.write_text(SHOP)
    store = open_at(load_schema([schema_path]))
    made = store.create("Shop", {"name": "kept", "ratio": 2.5})
    store.close()
    script = (
        "import json, sys\n"
        "from xprotogen.loader import load_schema\n"
        "from xsync.store import open_store\n"
        "s = open_store(sys.argv[1], load_schema([sys.argv[2]]))\n"
        "print(json.dumps(s.get('Shop', int(sys.argv[3]))))\n"
        "s.create('Shop', {'name': 'from child'})\n"
        "s.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, store_url, str(schema_path), str(made["id"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == made
    reopened = open_at(load_schema([schema_path]))
    assert [r["name"] for r in reopened.query("Shop")] == ["kept", "from child"]
