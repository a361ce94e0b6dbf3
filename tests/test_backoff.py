"""The retry book: the delay formula with its jitter, and when something is due again."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsync.backoff import BackoffPolicy, Register, RetryBook, earliest


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


@pytest.mark.parametrize("failures", [1, 2, 5, 40])
def test_jitter_takes_off_up_to_its_fraction_at_random(failures: int) -> None:
    policy = BackoffPolicy(base_seconds=4, cap_seconds=1000, jitter=0.25)
    full = min(4 * 2 ** (failures - 1), 1000)
    assert policy.delay(failures, lambda: 0.0) == full
    assert policy.delay(failures, lambda: 1.0) == pytest.approx(0.75 * full)
    assert policy.delay(failures, lambda: 0.5) == pytest.approx(0.875 * full)


def test_objects_that_fail_together_do_not_retry_together() -> None:
    book = RetryBook(BackoffPolicy(base_seconds=10, cap_seconds=100), rand=random.Random(7).random)
    next_runs = {book.after_failure(Register(), now=0.0).next_run for _ in range(50)}
    assert len(next_runs) == 50 and min(next_runs) >= 8.0 and max(next_runs) <= 10.0


def test_book_counts_failures_and_success_resets_it() -> None:
    book = RetryBook(BackoffPolicy(base_seconds=10, cap_seconds=1000, jitter=0))
    register = book.after_failure(Register(), now=100.0)
    assert (register.failures, register.next_run, register.last_failure) == (1, 110.0, 100.0)
    register = book.after_failure(register, now=110.0)
    assert (register.failures, register.next_run) == (2, 130.0)
    assert not book.is_due(register, 129.9) and book.is_due(register, 130.0)
    assert book.seconds_until_due(register, 125.0) == 5.0
    cleared = book.clear(register)
    assert book.is_due(cleared, 111.0) and cleared.failures == 2  # the next delay still doubles
    register = book.after_success(register, now=140.0)
    assert register == Register(last_failure=110.0, last_success=140.0)
    assert book.is_due(register, 0)


def test_book_reads_its_clock_when_no_time_is_given() -> None:
    now = [50.0]
    book = RetryBook(BackoffPolicy(base_seconds=1, cap_seconds=1, jitter=0), clock=lambda: now[0])
    register = book.after_failure(Register())
    assert register.next_run == 51.0 and not book.is_due(register)
    now[0] = 51.0
    assert book.is_due(register)


def test_earliest_ignores_missing_times() -> None:
    assert earliest([None, 5.0, 3.0, None]) == 3.0
    assert earliest([None]) is None and earliest([]) is None


def test_one_source_of_defaults() -> None:
    from xsync.config import Config

    policy = BackoffPolicy()
    fields = Config.__dataclass_fields__
    assert fields["backoff_base_seconds"].default == policy.base_seconds
    assert fields["backoff_cap_seconds"].default == policy.cap_seconds
