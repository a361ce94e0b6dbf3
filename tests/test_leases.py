"""The store's leases (`SqlStore.leases`), on SQLite and PostgreSQL: who may work on what."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core_support import LiveCore
from store_support import open_at, shop, store_url  # noqa: F401 - fixtures
from xsync.status import collect_runner_status
from xsync.store import InvalidArgument, PermissionDenied, SqlStore


def test_a_held_lease_is_refused_to_another_runner_until_released(shop: SqlStore) -> None:
    leases = shop.leases
    seen = leases.clock()
    assert leases.claim("sync", "a", [3, 1, 2], seen_at=seen, lease_seconds=30) == [1, 2, 3]
    assert leases.claim("sync", "b", [2, 3, 4], seen_at=seen, lease_seconds=30) == [4]
    # Another synchronizer's leases are its own.
    assert leases.claim("other", "b", [1], seen_at=seen, lease_seconds=30) == [1]
    assert leases.holders("sync") == {"a": 3, "b": 1}
    # Released: b read its copy before a gave it back, so b's copy may be stale.
    assert leases.claim("sync", "a", [], seen_at=seen, lease_seconds=30, release=[2]) == []
    assert leases.claim("sync", "b", [2], seen_at=seen, lease_seconds=30) == []
    time.sleep(0.01)
    assert leases.claim("sync", "b", [2], seen_at=leases.clock(), lease_seconds=30) == [2]
    assert leases.holders("sync") == {"a": 2, "b": 2}
    assert leases.release_all("sync", "a") == 2
    assert leases.holders("sync") == {"b": 2}


def test_a_lease_not_renewed_ends_and_is_taken_over(shop: SqlStore) -> None:
    leases = shop.leases
    assert leases.claim("sync", "a", [1, 2], seen_at=leases.clock(), lease_seconds=0.3) == [1, 2]
    assert leases.renew("sync", "a", 0.3) == 2
    time.sleep(0.4)
    assert leases.holders("sync") == {}
    assert leases.renew("sync", "a", 0.3) == 0  # ended: renewing cannot bring it back
    assert leases.claim("sync", "b", [1, 2], seen_at=leases.clock(), lease_seconds=30) == [1, 2]


def test_one_leader_at_a_time_and_failover_when_its_lease_ends(shop: SqlStore) -> None:
    leases = shop.leases
    assert leases.lead("sync", "a", 0.3) is True
    assert leases.lead("sync", "b", 0.3) is False
    assert leases.lead("sync", "a", 0.3) is True  # renewed
    assert leases.leader("sync") == "a"
    time.sleep(0.4)
    assert leases.leader("sync") is None
    assert leases.lead("sync", "b", 30) is True
    assert leases.lead("sync", "a", 30) is False
    status = collect_runner_status(leases, "sync")
    assert status.leader == "b"
    leases.resign("sync", "b")
    assert leases.lead("sync", "a", 30) is True
    assert collect_runner_status(leases, "sync").as_lines()[0] == "Runners (leader: a):"


def test_leases_through_the_core_and_only_for_accounts_that_may_sync(tmp_path: Path) -> None:
    core = LiveCore(tmp_path)
    try:
        a, b = core.client("hello-sync").leases, core.client("root").leases
        seen = a.clock()
        assert a.claim("sync", "a", [5, 6], seen_at=seen, lease_seconds=30) == [5, 6]
        assert b.claim("sync", "b", [6, 7], seen_at=seen, lease_seconds=30) == [7]
        assert a.lead("sync", "a", 30) is True and b.lead("sync", "b", 30) is False
        viewer = core.client("viewer").leases
        assert viewer.holders("sync") == {"a": 2, "b": 1}
        assert viewer.leader("sync") == "a"
        for refused in (core.client("viewer").leases, core.client("alice").leases):
            with pytest.raises(PermissionDenied):
                refused.claim("sync", "c", [8], seen_at=seen, lease_seconds=30)
            with pytest.raises(PermissionDenied):
                refused.lead("sync", "c", 30)
        with pytest.raises(InvalidArgument):
            a.claim("sync", "a", [-1], seen_at=seen, lease_seconds=30)
        a.resign("sync", "a")
        assert a.release_all("sync", "a") == 2
        assert b.lead("sync", "b", 30) is True
    finally:
        core.close()


def test_rows_of_long_ended_leases_are_forgotten_and_live_ones_kept(shop: SqlStore) -> None:
    leases = shop.leases
    seen = leases.clock()
    assert leases.claim("sync", "a", [1, 2, 3], seen_at=seen, lease_seconds=30) == [1, 2, 3]
    assert leases.claim("other", "a", [1], seen_at=seen, lease_seconds=0.05) == [1]
    time.sleep(0.3)
    leases.claim("sync", "a", [], seen_at=seen, lease_seconds=30, release=[1])
    # Only rows that ended more than 0.2 s ago, of that synchronizer: none yet for "sync".
    assert leases.forget_ended("sync", 0.2) == 0
    assert leases.forget_ended("other", 0.2) == 1
    time.sleep(0.15)
    assert leases.forget_ended("sync", 0.1) == 1  # the released one
    assert leases.holders("sync") == {"a": 2}
    # A forgotten lease is free to anyone whose read follows it, as an ended one was.
    assert leases.claim("sync", "b", [1], seen_at=seen, lease_seconds=30) == [1]


def test_forgetting_through_the_core_needs_an_account_that_may_sync(tmp_path: Path) -> None:
    core = LiveCore(tmp_path)
    try:
        a = core.client("hello-sync").leases
        assert a.claim("sync", "a", [5], seen_at=a.clock(), lease_seconds=0.05) == [5]
        time.sleep(0.2)
        with pytest.raises(PermissionDenied):
            core.client("viewer").leases.forget_ended("sync", 0.1)
        assert a.forget_ended("sync", 0.1) == 1
    finally:
        core.close()
