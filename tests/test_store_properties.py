"""Property: any sequence of writes by any actors keeps the store's invariants."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store_support import open_at, shop, store_url  # noqa: F401 (fixtures)
from xsync.store import InvalidArgument, NotFound, PendingQuery, PermissionDenied, SqlStore
from xsync.store.lifecycle import dirty_in_python

ACTORS = st.sampled_from(["user", "synchronizer", "policy"])
UPDATES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(alphabet="abc", min_size=1, max_size=3),
        "rank": st.integers(-3, 3),
        "no_sync": st.booleans(),
        "no_policy": st.booleans(),
        "lazy_blocked": st.booleans(),
        "backend_status": st.sampled_from(["OK", "boom"]),
        "policy_code": st.integers(0, 2),
        "enacted": st.one_of(st.none(), st.just("updated"), st.just("before")),
        "policed": st.one_of(st.none(), st.just("updated"), st.just("before")),
    },
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), ACTORS, st.just({})),
        st.tuples(st.just("update"), ACTORS, UPDATES),
        st.tuples(st.just("delete"), ACTORS, st.just({})),
    ),
    min_size=1,
    max_size=12,
)


def _resolve(values: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    # Timestamps are drawn relative to the object's own `updated`, so both orders get tested.
    out = dict(values)
    for key in ("enacted", "policed"):
        if out.get(key) == "updated":
            out[key] = current["updated"]
        elif out.get(key) == "before":
            out[key] = current["updated"] - 1.0
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, pick=st.randoms(use_true_random=False))
def test_random_writes_keep_invariants(
    shop: SqlStore, ops: list[tuple[str, Any, dict[str, Any]]], pick: Any
) -> None:
    start = shop.changes()[-1].seq if shop.changes() else 0
    mine: list[int] = []
    writes = 0
    for op, actor, values in ops:
        if op == "create" or not mine:
            mine.append(shop.create("Shop", {"name": "new"}, actor=actor)["id"])
            writes += 1
            continue
        target = pick.choice(mine)
        before = shop.get("Shop", target, include_deleted=True)
        if op == "delete":
            shop.delete("Shop", target, actor=actor)
            writes += 0 if before["deleted"] else 1
            continue
        try:
            after = shop.update("Shop", target, _resolve(values, before), actor=actor)
        except PermissionDenied:
            assert shop.get("Shop", target, include_deleted=True) == before
            continue
        except (
            InvalidArgument,
            NotFound,
        ) as exc:  # pragma: no cover - the strategy draws only valid values
            raise AssertionError(exc) from exc
        writes += 0 if after == before else 1
        if actor == "user":
            assert after["updated"] > before["updated"]
        else:
            assert after["updated"] == before["updated"]

    log = shop.changes(start)
    assert [c.seq for c in log] == sorted({c.seq for c in log})
    assert len(log) == writes
    for query in PendingQuery:
        selected = {r["id"] for r in shop.pending("Shop", query)}
        for obj_id in mine:
            record = shop.get("Shop", obj_id, include_deleted=True)
            assert (obj_id in selected) == dirty_in_python(record, query), (query, record)
