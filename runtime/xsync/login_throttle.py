"""Slowing password guessing: the one place that decides how long a login attempt waits.

Failed logins are counted per key: the peer's address and the account's name. An attempt
on a key with `n` recent failures gets its turn `base * 2**(n-1)` seconds (at most `cap`)
after the previous attempt on that key, so guesses from one peer, or at one account, come
at most one per delay however many run at once, and a right guess is answered no sooner
than a wrong one. A success clears both keys. Attempts whose turn is further than
`max_wait` away are refused at once, so waiting guessers cost no more than their count.

`login` is the whole rule, for the core and the UI alike. A client whose password was
already proven, from a peer with no failures, is let in at once: guessing at its account
from elsewhere does not slow it. Waits are asyncio sleeps, so a waiting attempt holds no
thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

BASE_DELAY = 0.1
CAP_DELAY = 10.0
MAX_WAIT = 30.0
FORGET_AFTER = 900.0  # seconds without a failure after which a key starts afresh
MAX_KEYS = 10_000  # bounded memory under a spray of addresses or names


@dataclass(slots=True)
class _Key:
    failures: int = 0
    next_turn: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Exponential delays for failed logins, per peer and per account."""

    def __init__(
        self,
        *,
        base: float = BASE_DELAY,
        cap: float = CAP_DELAY,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.cap = cap
        self.max_wait = max_wait
        self.clock = clock
        self._keys: OrderedDict[str, _Key] = OrderedDict()
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        """The spacing between attempts on a key with `failures` recent failures."""
        return 0.0 if failures <= 0 else min(self.cap, self.base * 2 ** min(failures - 1, 60))

    def reserve(self, keys: Iterable[str]) -> float | None:
        """Book the next turn on every key: seconds to wait before checking, or None (refuse)."""
        with self._lock:
            now = self.clock()
            entries = [self._entry(k, now) for k in keys]
            turn = max([now, *(e.next_turn for e in entries)])
            if turn - now > self.max_wait:
                return None
            for entry in entries:
                entry.next_turn = turn + self.delay(entry.failures)
            return turn - now

    def failed(self, keys: Iterable[str]) -> None:
        with self._lock:
            now = self.clock()
            for key in keys:
                entry = self._entry(key, now)
                entry.failures += 1
                entry.last_failure = now
                entry.next_turn = max(entry.next_turn, now + self.delay(entry.failures))

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._keys.pop(key, None)

    def failures(self, key: str) -> int:
        with self._lock:
            entry = self._keys.get(key)
            return entry.failures if entry is not None else 0

    def _entry(self, key: str, now: float) -> _Key:
        entry = self._keys.get(key)
        if entry is None or (entry.failures and now - entry.last_failure > FORGET_AFTER):
            entry = self._keys[key] = _Key()
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        return entry


class TooManyAttempts(Exception):
    """The attempt's turn is too far away: refused without checking the password."""


async def login(
    throttle: LoginThrottle,
    *,
    peer: str,
    username: str,
    known: Callable[[], T | None],
    check: Callable[[], Awaitable[T | None]],
) -> T | None:
    """Who logs in (None: wrong credentials), with the waits above.

    `known` is the cheap test of an already proven password; `check` the full one.
    Raises `TooManyAttempts` when the attempt's turn is more than `max_wait` away.
    """
    keys = (peer_key(peer), account_key(username))
    found = known()
    if found is not None and throttle.failures(keys[0]) == 0:
        return found
    wait = throttle.reserve(keys)
    if wait is None:
        raise TooManyAttempts("too many failed logins; try again later")
    if wait:
        await asyncio.sleep(wait)
    found = await check()
    if found is None:
        throttle.failed(keys)
    else:
        throttle.succeeded(keys)
    return found


def peer_key(address: str) -> str:
    """The throttling key of a peer: its address without the port (ports change per connection)."""
    return f"peer:{address}"


def account_key(username: str) -> str:
    return f"account:{username[:256]}"


def grpc_peer_address(peer: str) -> str:
    """'ipv4:127.0.0.1:5000' / 'ipv6:[::1]:5000' -> the address alone."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host = unquote(rest).rsplit(":", 1)[0]
        return host.strip("[]")
    return peer
