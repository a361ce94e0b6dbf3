"""One thread reads the store's change log and feeds every open Watch stream.

Each stream is a `Subscription` living on the server's event loop: it waits on an asyncio
event, not a thread. The hub keeps the latest `RECENT` changes, so a stream that starts
from a recent point is served from memory (a thousand watchers starting at once would
otherwise be a thousand reads of the log). A stream that starts further back, or falls more
than `QUEUE_LIMIT` changes behind, reads from the change log itself, so a slow client costs
a bounded amount of memory.

The log keeps changes for a retention window only (`Store.forget_changes`), but it always
keeps the newest one: a stream that starts (or falls) behind what was pruned still gets a
change whenever anything committed after its position, so a watcher that only wants to be
woken is never left asleep; one that needs every change sees the gap in `seq`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

from ..store.base import Change, Store

log = logging.getLogger("xsync.grpc.server")
_UNKNOWN = 2**63  # `_complete_after` while the log's end is not known: memory serves no one

QUEUE_LIMIT = 1000  # changes a stream may lag behind in memory
RECENT = 1000  # latest changes kept for streams that start
POLL_SECONDS = 0.25  # how long one read of the log waits for a commit; bounds stopping
IDLE_SECONDS = 1.0  # with no stream open, the log is read this often, not on every commit


class Subscription:
    """One stream's view of the feed; every method runs on the event loop."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.overflowed = False
        self.closed = False
        self._pending: list[Change] = []
        self._event = asyncio.Event()

    def offer(self, changes: list[Change]) -> None:
        if self.overflowed or self.closed:
            return
        if len(self._pending) + len(changes) > QUEUE_LIMIT:
            self.overflowed = True
            self._pending = []
        else:
            self._pending.extend(changes)
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def wait(self, timeout: float | None) -> bool:
        """True when there is something to take (or the feed closed); False after `timeout`."""
        if self._pending or self.overflowed or self.closed:
            return True
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def drain(self) -> list[Change]:
        out, self._pending = self._pending, []
        self._event.clear()
        return out

    def clear(self) -> None:
        """Forget what is held in memory; the caller reads on from the log after `after`."""
        self.overflowed = False
        self.drain()

    def take_newer(self, changes: list[Change]) -> list[Change]:
        """The changes not yet delivered, in order; moves `after` past them."""
        out = [c for c in changes if c.seq > self.after]
        if out:
            self.after = out[-1].seq
        return out


class ChangeHub:
    """Follows `store.changes` in one thread and offers each batch to every subscription."""

    def __init__(self, store: Store, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.latest = 0
        self._recent: deque[Change] = deque(maxlen=RECENT)
        # `_recent` holds every change after this seq; until the log's end is known, none.
        self._complete_after = _UNKNOWN
        self._position_known = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: set[Subscription] = set()
        self._stop = threading.Event()
        self._wanted = threading.Event()  # set when a stream opens: follow closely again
        self._thread: threading.Thread | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        try:
            self._take_position()
        except Exception as exc:  # noqa: BLE001 - a store that is not ready is retried below
            log.warning("cannot read the store's change log: %s", exc)
        self._thread = threading.Thread(target=self._follow, name="xsync-core-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End every subscription and the follower thread (within one poll)."""
        self._stop.set()
        self._wanted.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._close_all)
            except RuntimeError:
                pass  # the loop has stopped: nobody is waiting any more
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 5)
            self._thread = None

    def subscribe(self, after: int) -> Subscription:
        """A subscription for changes after `after`; call on the event loop."""
        sub = Subscription(after)
        if self._stop.is_set():
            sub.close()
        self._subscriptions.add(sub)
        self._wanted.set()
        return sub

    def recent(self, after: int) -> list[Change] | None:
        """Every change after `after` from memory, or None when memory does not reach back
        that far (read the log then); call on the event loop."""
        if after < self._complete_after:
            return None
        return [c for c in self._recent if c.seq > after]

    def _remember(self, changes: list[Change]) -> None:
        """Keep `changes` (the next ones, in order) in `_recent`, forgetting the oldest."""
        for change in changes:
            if len(self._recent) == RECENT:
                self._complete_after = self._recent[0].seq  # about to be forgotten
            self._recent.append(change)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def _close_all(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()

    def _offer_all(self, changes: list[Change]) -> None:
        self._remember(changes)
        for sub in list(self._subscriptions):
            sub.offer(changes)

    def _take_position(self) -> None:
        """Start following at the log's end: where the next change will be read from."""
        self.latest = self.store.latest_change()
        self._complete_after = self.latest
        self._position_known = True

    def _next_changes(self) -> list[Change]:
        if not self._position_known:
            self._take_position()
            return []
        if self._subscriptions:
            return self.store.changes(self.latest, timeout=self.poll_seconds)
        # Nobody is watching: one read a second keeps `_recent` current without a read of
        # the log after every commit (which halved the rate of single creates).
        self._wanted.wait(IDLE_SECONDS)
        self._wanted.clear()
        return self.store.changes(self.latest)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                changes = self._next_changes()
            except Exception as exc:  # noqa: BLE001 - the store may be restarting
                log.warning("reading the change log failed: %s", exc)
                self._stop.wait(1.0)
                continue
            if not changes:
                continue
            self.latest = changes[-1].seq
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._offer_all, changes)
            except RuntimeError:
                return  # the loop is closed: the server has stopped
