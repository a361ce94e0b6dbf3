"""Backoff: the delay formula, the register format, and when an object is due again."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsync.backoff import BackoffPolicy, Register


def test_delay_doubles_up_to_the_cap_without_jitter() -> None:
    policy = BackoffPolicy(base_seconds=2, cap_seconds=20, jitter=0)
    assert [policy.delay(n) for n in range(1, 7)] == [2, 4, 8, 16, 20, 20]
    assert policy.delay(0) == 0


@given(st.integers(1, 10_000), st.floats(0, 1), st.floats(0.01, 100), st.floats(1, 10_000))
def test_jitter_only_shortens_and_never_exceeds_the_cap(
    failures: int, r: float, base: float, cap: float
) -> None:
    policy = BackoffPolicy(base_seconds=base, cap_seconds=cap, jitter=0.2)
    full = min(base * 2 ** min(failures - 1, 64), cap)
    assert 0.8 * full - 1e-9 <= policy.delay(failures, lambda: r) <= full + 1e-9


def test_register_counts_failures_and_success_resets_it() -> None:
    policy = BackoffPolicy(base_seconds=10, cap_seconds=1000, jitter=0)
    register = Register.parse("{}")
    register = register.after_failure(policy, now=100.0)
    assert (register.failures, register.next_run, register.last_failure) == (1, 110.0, 100.0)
    register = register.after_failure(policy, now=110.0)
    assert (register.failures, register.next_run) == (2, 130.0)
    assert not register.is_due(129.9) and register.is_due(130.0)
    register = register.after_success(now=140.0)
    assert (register.failures, register.next_run, register.last_success) == (0, 0.0, 140.0)
    assert register.is_due(0)


def test_register_round_trips_as_json_with_the_documented_keys() -> None:
    register = Register(failures=3, next_run=5.5, last_failure=4.0, last_success=1.0)
    data = json.loads(register.to_json())
    assert {"failures", "next_run", "last_failure", "last_success"} <= set(data)
    assert Register.parse(register.to_json()) == register


@pytest.mark.parametrize(
    "text", [None, "", "{}", "not json", "[1, 2]", '{"failures": "x", "next_run": true}']
)
def test_unreadable_register_is_a_fresh_one(text: str | None) -> None:
    assert Register.parse(text) == Register()


def test_xos_register_is_read() -> None:
    # What XOS writes after a success: no failures key, an exponent.
    register = Register.parse('{"next_run": 0, "exponent": 0, "last_success": 12.5}')
    assert register == Register(last_success=12.5)
