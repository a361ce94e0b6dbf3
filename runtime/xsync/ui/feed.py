"""Live updates: one thread follows the store's Watch feed and hands every change to the pages.

Each change is read back and summarized once, in the follower thread, then offered to every
subscriber's asyncio queue through its event loop. A subscriber that falls too far behind is
told to re-read the list (`resync`) instead of being sent an ever longer queue.

The change log keeps changes for a retention window only (`Store.forget_changes`), always
keeping the newest. Pruning removes only its oldest entries, so a reader at `seq` has missed
some exactly when the first change it reads is numbered above `seq + 1`: then the feed cannot
say what changed, and every page re-reads its list instead (as for a full queue).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..store.base import Change, NotFound, Record
from .index import StatusIndex
from .state import StatusReader

Message = dict[str, Any]
QUEUE_LIMIT = 1000  # messages a page may lag behind before it is told to reload its list
CLOSED: Message = {"closed": True}
RESYNC: Message = {"resync": True}  # changes were missed: re-read the list

log = logging.getLogger("xsync.ui")


@dataclass(eq=False, slots=True)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, message: Message) -> None:
        """Runs in the subscriber's loop."""
        if message is CLOSED:
            self.queue.put_nowait(message)
        elif message is RESYNC:
            self.overflowed = True  # the stream sends "resync" when it takes the next message
            self.queue.put_nowait(message)
        elif self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
        else:
            self.queue.put_nowait(message)


class ChangeFeed:
    """Follows `reader.store.changes`, keeps `index` up to date, and broadcasts a message per
    change of a shown model."""

    def __init__(
        self,
        reader: StatusReader,
        index: StatusIndex,
        *,
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reader = reader
        self.index = index
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.latest_seq = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.latest_seq = self._current_seq()
        self._thread = threading.Thread(target=self._follow, name="xsync-ui-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """End every open event stream and ask the follower to stop; does not wait."""
        self._stop.set()
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            _call_soon(sub, CLOSED)

    def stop(self) -> None:
        """`close`, then wait for the follower thread to end."""
        self.close()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 5)
            self._thread = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def subscribe(self) -> Subscription:
        """A new subscription for the running event loop; call from that loop."""
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        if self._stop.is_set():
            sub.offer(CLOSED)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def backlog(self, after: int) -> list[Message] | None:
        """Messages for the changes after `after`, newest state only; None if too many."""
        changes = self.reader.store.changes(after)
        if len(changes) > QUEUE_LIMIT or _missed(after, changes):
            return None
        return self.messages(changes)

    def messages(self, changes: Sequence[Change]) -> list[Message]:
        # Several changes to one object need one message: its state now.
        last: dict[tuple[str, int], Change] = {}
        for change in changes:
            if self.reader.has_model(change.model):
                last.pop((change.model, change.id), None)
                last[(change.model, change.id)] = change
        now = self.clock()
        found: list[Message] = []
        for change in last.values():
            summary = self.index.update(change.model, change.id, self._read(change), now)
            found.append(
                {
                    "seq": change.seq,
                    "kind": change.kind,
                    "model": change.model,
                    "id": change.id,
                    "object": summary.as_json() if summary is not None else None,
                }
            )
        return found

    def _read(self, change: Change) -> Record | None:
        try:
            return self.reader.store.get(change.model, change.id, include_deleted=True)
        except NotFound:
            return None

    def _current_seq(self) -> int:
        try:
            return self.reader.store.latest_change()
        except Exception as exc:
            log.warning("cannot read the store's change feed: %s", exc)
            return 0

    def _resync(self) -> None:
        """Changes were pruned before this feed read them: reload the index, tell the pages."""
        log.warning("the change log was pruned past this page's position: reloading the list")
        self.index.load(self.clock())
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            _call_soon(sub, RESYNC)

    def _follow(self) -> None:
        # The index is read here, not in `start`: 100,000 objects take seconds, and the server
        # answers meanwhile (`StatusIndex.wait_ready`). Read after the position is taken, so a
        # change made while it reads is read again below.
        while not self._stop.is_set() and not self.index.ready.is_set():
            try:
                self.index.load(self.clock())
            except Exception as exc:
                log.warning("reading the store failed: %s", exc)
                self._stop.wait(1.0)
        while not self._stop.is_set():
            try:
                changes = self.reader.store.changes(self.latest_seq, timeout=self.poll_seconds)
                if _missed(self.latest_seq, changes):
                    self._resync()
                    messages = []  # the reload has read them
                else:
                    messages = self.messages(changes)
                self.index.refresh_due(self.clock())
            except Exception as exc:
                # The store may be restarting: say so once a second and keep trying.
                log.warning("watching the store failed: %s", exc)
                self._stop.wait(1.0)
                continue
            if not changes:
                continue
            self.latest_seq = changes[-1].seq
            with self._lock:
                subscribers = list(self._subscribers)
            for message in messages:
                for sub in subscribers:
                    _call_soon(sub, message)


def _missed(after: int, changes: Sequence[Change]) -> bool:
    """Whether entries after `after` were pruned before `changes` were read (see above)."""
    return bool(changes) and changes[0].seq > after + 1


def _call_soon(sub: Subscription, message: Message) -> None:
    try:
        sub.loop.call_soon_threadsafe(sub.offer, message)
    except RuntimeError:
        pass  # the page's loop is closed: it has gone away
