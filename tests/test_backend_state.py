"""An object's backend state: what each outcome writes, the register's parts, and `classify`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsync import backend_state as bs
from xsync.backend_state import (
    BackendRegister,
    Code,
    PolicyState,
    State,
    classify,
    held_message,
    policy_register,
    register_json,
    sync_register,
)
from xsync.backoff import BackoffPolicy, Register, RetryBook

NOW = 1_800_000_000.0
BOOK = RetryBook(BackoffPolicy(base_seconds=10, cap_seconds=100, jitter=0), clock=lambda: NOW)


def record(**values: Any) -> dict[str, Any]:
    """An object as the store returns it: in sync and policed unless the test says otherwise."""
    base: dict[str, Any] = {
        "id": 1,
        "name": "o",
        "created": NOW - 100,
        "updated": NOW - 50,
        "enacted": NOW - 50,
        "policed": NOW - 50,
        "changed_by_policy": None,
        "changed_by_step": None,
        "deleted": False,
        "lazy_blocked": False,
        "no_sync": False,
        "no_policy": False,
        "backend_code": 1,
        "backend_status": "OK",
        "backend_register": "{}",
        "backend_need_reap": False,
        "policy_code": 1,
        "policy_status": "done",
    }
    base.update(values)
    return base


def after(rec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    return {**rec, **values}


DIRTY = {"enacted": None}
BACKING_OFF = register_json(Register(failures=2, next_run=NOW + 30, last_failure=NOW - 1))
BACKOFF_OVER = register_json(Register(failures=2, next_run=NOW - 1, last_failure=NOW - 31))
HELD = BackendRegister({}).with_held_by(("Site", 3)).to_json()


# --- record -> state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "state", "next_retry"),
    [
        ({}, State.OK, None),
        ({"enacted": NOW - 60}, State.PENDING, None),  # changed by a user since it was synced
        ({**DIRTY, "backend_code": 0, "backend_status": bs.FRESH_STATUS}, State.PENDING, None),
        ({**DIRTY, "backend_code": 0, "backend_status": "OK // not yet"}, State.DEFERRED, None),
        ({**DIRTY, "backend_code": 2, "backend_status": "boom"}, State.ERROR, None),
        ({**DIRTY, "backend_code": 2, "backend_register": BACKING_OFF}, State.ERROR, NOW + 30),
        ({**DIRTY, "backend_code": 0, "backend_register": BACKING_OFF}, State.BACKING_OFF, NOW + 30),
        ({**DIRTY, "backend_code": 1, "backend_register": BACKOFF_OVER}, State.PENDING, None),
        (
            {**DIRTY, "backend_code": 0, "backend_status": held_message("Site", 3, "boom"),
             "backend_register": HELD},
            State.HELD,
            None,
        ),
        ({"deleted": True, "backend_code": 1}, State.PENDING, None),  # waits for the deletion pass
        ({"deleted": True, "backend_code": 2, "backend_status": "gone wrong"}, State.ERROR, None),
        ({"no_sync": True, "enacted": None}, State.OK, None),  # never selected for sync
    ],
    ids=[
        "in-sync", "changed", "fresh", "deferred", "failed", "failed-backing-off", "backing-off",
        "backoff-over", "held-by-failure", "deleting", "delete-failed", "no-sync",
    ],
)  # fmt: skip
def test_state_of_an_object(values: dict[str, Any], state: State, next_retry: float | None) -> None:
    c = classify(record(**values), NOW)
    assert (c.state, c.next_retry) == (state, next_retry)


timestamps = st.one_of(st.none(), st.floats(NOW - 1000, NOW + 1000))


@given(
    enacted=timestamps,
    code=st.sampled_from(list(Code)),
    status=st.sampled_from(["OK", "Provisioning in progress", "boom", "a // b"]),
    next_run=st.floats(0, NOW + 1000),
    failures=st.integers(0, 5),
    deleted=st.booleans(),
    held=st.booleans(),
)
def test_state_rules_hold_for_any_lifecycle_values(
    enacted: float | None,
    code: Code,
    status: str,
    next_run: float,
    failures: int,
    deleted: bool,
    held: bool,
) -> None:
    register = BackendRegister.parse(register_json(Register(failures=failures, next_run=next_run)))
    if held:
        register = register.with_held_by(("Site", 3))
    values = record(
        enacted=enacted,
        backend_code=code,
        backend_status=status,
        deleted=deleted,
        backend_register=register.to_json(),
    )
    c = classify(values, NOW)
    in_sync = not deleted and enacted is not None and enacted >= values["updated"]
    assert (c.state is State.OK) == in_sync
    if not in_sync and code == Code.ERROR:
        assert c.state is State.ERROR
    if not in_sync and code != Code.ERROR:
        assert (c.state is State.HELD) == held
    # A retry time is given exactly when an object still has to wait for its backoff.
    assert c.next_retry == (next_run if next_run > NOW else None)
    if c.state is State.BACKING_OFF:
        assert c.next_retry is not None


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ({}, PolicyState.OK),
        ({"policed": None}, PolicyState.PENDING),
        ({"policed": None, "policy_code": 2}, PolicyState.ERROR),
        ({"policed": NOW - 60, "no_policy": True}, PolicyState.OK),
        ({"deleted": True, "policed": NOW - 60}, PolicyState.PENDING),  # delete policies to run
    ],
    ids=["policed", "never-policed", "failed", "no-policy", "deleted"],
)
def test_policy_state_of_an_object(values: dict[str, Any], state: PolicyState) -> None:
    assert classify(record(**values), NOW).policy_state is state


# --- what each outcome writes, read back by classify ----------------------------------------


def test_each_outcome_reads_back_as_its_state() -> None:
    fresh = record(**DIRTY, backend_code=0, backend_status=bs.FRESH_STATUS)
    enacted = fresh["updated"]
    synced = after(fresh, bs.synced(register="{}", enacted=enacted, retries=BOOK))
    assert classify(synced, NOW).state is State.OK
    assert synced["backend_code"] == Code.OK and synced["backend_status"] == "OK"

    failed = after(
        fresh, bs.failed(status=bs.FRESH_STATUS, register="{}", message="boom", retries=BOOK)
    )
    c = classify(failed, NOW)
    assert (c.state, c.next_retry) == (State.ERROR, NOW + 10)
    assert failed["backend_status"] == f"{bs.FRESH_STATUS} // boom"

    deferred = after(fresh, bs.deferred(status=bs.FRESH_STATUS, register="{}", message="later"))
    assert classify(deferred, NOW).state is State.DEFERRED

    held = after(
        fresh,
        bs.held_back(
            status=bs.FRESH_STATUS, register="{}", code=0, cause=("Site", 3), reason="boom"
        ),
    )
    assert classify(held, NOW).state is State.HELD
    assert bs.last_message(held["backend_status"]) == held_message("Site", 3, "boom")
    assert sync_register(held["backend_register"]) == Register()  # held objects do not back off

    policy_failed = after(
        fresh, bs.policy_failed(register="{}", errors=["no quota", "no quota"], retries=BOOK)
    )
    c = classify({**policy_failed, "policed": None}, NOW)
    assert (c.policy_state, c.policy_next_retry) == (PolicyState.ERROR, NOW + 10)
    assert policy_failed["policy_status"] == "no quota"


def test_held_object_is_held_until_its_own_next_outcome() -> None:
    held = record(
        **DIRTY, **bs.held_back(status="", register="{}", code=0, cause=("A", 1), reason="x")
    )
    for outcome in (
        bs.synced(register=held["backend_register"], enacted=NOW, retries=BOOK),
        bs.failed(status="", register=held["backend_register"], message="y", retries=BOOK),
        bs.deferred(status="", register=held["backend_register"], message="z"),
    ):
        assert BackendRegister.parse(after(held, outcome)["backend_register"]).held_by is None


def test_holding_again_for_the_same_cause_writes_nothing() -> None:
    first = bs.held_back(status="", register="{}", code=1, cause=("A", 1), reason="x")
    again = bs.held_back(
        status=first["backend_status"],
        register=first["backend_register"],
        code=first["backend_code"],
        cause=("A", 1),
        reason="x",
    )
    assert again == {}


def test_policy_backoff_survives_every_sync_outcome() -> None:
    """The register keeps each writer's keys: a sync never drops the policy's backoff."""
    register = bs.policy_failed(register="{}", errors=["no"], retries=BOOK)["backend_register"]
    policy = policy_register(register)
    assert policy.failures == 1
    for outcome in (
        bs.synced(register=register, enacted=NOW, retries=BOOK),
        bs.failed(status="", register=register, message="y", retries=BOOK),
        bs.held_back(status="", register=register, code=0, cause=("A", 1), reason="x"),
    ):
        assert policy_register(outcome["backend_register"]) == policy
    # ... and the policy engine keeps the sync engine's.
    failed = bs.failed(status="", register="{}", message="y", retries=BOOK)["backend_register"]
    both = bs.policy_failed(register=failed, errors=["no"], retries=BOOK)["backend_register"]
    assert sync_register(both).failures == 1
    assert sync_register(bs.policed(register=both, policed=NOW)["backend_register"]).failures == 1
    assert policy_register(bs.policed(register=both, policed=NOW)["backend_register"]) == Register()


def test_unknown_keys_of_the_register_are_kept() -> None:
    register = json.dumps({"other_tool": {"x": 1}})
    for values in (
        bs.synced(register=register, enacted=NOW, retries=BOOK),
        bs.policy_failed(register=register, errors=["e"], retries=BOOK),
        bs.retry_now(register=register),
    ):
        assert json.loads(values["backend_register"])["other_tool"] == {"x": 1}


def test_retry_now_ends_both_backoffs_and_keeps_the_failure_count() -> None:
    register = bs.failed(status="", register="{}", message="y", retries=BOOK)["backend_register"]
    register = bs.policy_failed(register=register, errors=["no"], retries=BOOK)["backend_register"]
    cleared = bs.retry_now(register=register)["backend_register"]
    assert (sync_register(cleared).next_run, sync_register(cleared).failures) == (0.0, 1)
    assert (policy_register(cleared).next_run, policy_register(cleared).failures) == (0.0, 1)
    c = classify(record(**DIRTY, backend_code=2, backend_register=cleared), NOW)
    assert c.next_retry is None and c.policy_next_retry is None


# --- the register's format --------------------------------------------------------------------


def test_sync_part_is_written_in_xos_flat_keys() -> None:
    register = Register(failures=3, next_run=5.5, last_failure=4.0, last_success=1.0)
    data = json.loads(register_json(register))
    assert data == {
        "failures": 3, "exponent": 3, "next_run": 5.5, "last_failure": 4.0, "last_success": 1.0
    }  # fmt: skip
    assert sync_register(register_json(register)) == register


@pytest.mark.parametrize(
    "text", [None, "", "{}", "not json", "[1, 2]", '{"failures": "x", "next_run": true}']
)
def test_unreadable_register_is_a_fresh_one(text: str | None) -> None:
    assert sync_register(text) == Register()
    assert policy_register(text) == Register()
    assert BackendRegister.parse(text).held_by is None


def test_xos_register_is_read() -> None:
    # What XOS writes after a success: no failures key, an exponent.
    assert sync_register('{"next_run": 0, "exponent": 0, "last_success": 12.5}') == Register(
        last_success=12.5
    )
