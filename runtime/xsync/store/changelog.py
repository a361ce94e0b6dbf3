"""The change-log rows of one write transaction, inserted as its last statement.

Watch readers (`SqlStore.changes`) rely on one rule: change `seq` order is commit order, so a
reader that has seen `seq = n` has seen every change committed before it, and reading
`seq > n` next time misses none. `seq` comes from a sequence, handed out when the row is
inserted, while visibility comes at commit: two writers inserting at the same time could
commit in the other order, and a reader between the two commits would see the later `seq`
and skip the earlier one for good.

On PostgreSQL a writer therefore inserts its change-log rows only at the very end of its
transaction, after `LOCK TABLE ... IN EXCLUSIVE MODE` on the change log, and commits at once.
Why this keeps the rule: the lock is held from before the first `seq` is drawn until the
commit, and only one transaction holds it at a time, so every `seq` a writer draws is larger
than the `seq` of every change already committed, and no other writer draws one until this
writer has committed: `seq` order is commit order. Why it does not serialise writers: all of
the transaction's other work (reads, row locks, updates) happens before the lock, in
parallel with other writers; the lock is held only for one INSERT and the COMMIT. Why it
cannot deadlock: a writer that holds the lock takes no row lock after it (the change log's
new rows are locked by no one else), so it never waits for a writer that waits for the lock.

SQLite needs none of this: its write lock is held by one writer for the whole transaction.
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from .base import ChangeKind
from .now import now_sql

_KEY = "xsync_pending_changes"


class PendingChanges:
    """Change-log rows collected during a transaction, in the order they happened."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, kind: ChangeKind, model: str, ids: Sequence[int]) -> None:
        self.rows.extend({"kind": kind, "model": model, "object_id": i} for i in ids)

    def flush(self, conn: sa.Connection, table: sa.Table, *, lock: bool) -> None:
        """Insert the rows as the transaction's last statement (after the lock, if `lock`)."""
        if not self.rows:
            return
        if lock:
            conn.execute(sa.text(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"))
        conn.execute(log_insert(table, conn.dialect.name), self.rows)
        self.rows = []


def log_insert(table: sa.Table, dialect_name: str) -> sa.Insert:
    """The INSERT of change-log rows; each is stamped with the store's clock (`now`)."""
    return sa.insert(table).values(at=sa.text(now_sql(dialect_name)))


def begin_collecting(conn: sa.Connection) -> PendingChanges:
    """Start collecting `conn`'s change-log rows (the write transaction has just begun)."""
    pending = PendingChanges()
    conn.info[_KEY] = pending
    return pending


def stop_collecting(conn: sa.Connection) -> None:
    conn.info.pop(_KEY, None)


def pending_changes(conn: sa.Connection) -> PendingChanges:
    """The rows collected in `conn`'s current write transaction."""
    found = conn.info.get(_KEY)
    assert isinstance(found, PendingChanges), "change-log rows outside a write transaction"
    return found
