"""The XOS save rules (reference: xos-synchronizer-runtime.md 2.1, 2.4, 3.1) as plain functions.

Who writes decides which timestamps move: a user's save is a new version (`updated`), a
synchronizer's or a policy's save with "important changes" is recorded in `changed_by_step`
or `changed_by_policy` so that the other loop notices it.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable

import sqlalchemy as sa

from .base import Actor, PendingQuery, PermissionDenied

_UNIMPORTANT = frozenset({"policed", "updated", "enacted", "changed_by_step", "changed_by_policy"})
# Writers that run inside the synchronizer process. In XOS both the sync threads and the
# policy thread save with caller_kind "synchronizer" (reference 2.1 and 9.3): a model policy
# may set feedback state, and only the changed_by_* stamp tells the two apart.
_SYNCHRONIZER_SIDE = frozenset({"synchronizer", "policy"})


def is_important(column: str) -> bool:
    """Whether a change to `column` counts as an "important change" (reference 2)."""
    return not (column in _UNIMPORTANT or column.startswith(("backend_", "policy_")))


def check_feedback(
    model: str, actor: Actor, changed: Iterable[str], feedback: frozenset[str]
) -> None:
    """Refuse a change to feedback state from outside the synchronizer, naming the first field."""
    if actor in _SYNCHRONIZER_SIDE:
        return
    for column in sorted(changed):
        if column in feedback:
            raise PermissionDenied(
                f"{model}.{column} is feedback state: only the synchronizer may change it "
                f"(the writer is {actor!r})"
            )


def stamps(
    actor: Actor, changed: Iterable[str], *, always_update_timestamp: bool, now: float
) -> dict[str, float]:
    """The timestamp columns a save by `actor` that changes `changed` must also write."""
    out: dict[str, float] = {}
    if actor == "user" or always_update_timestamp:
        out["updated"] = now
    if actor != "user" and any(is_important(c) for c in changed):
        out["changed_by_step" if actor == "synchronizer" else "changed_by_policy"] = now
    return out


def pending_predicate(table: sa.Table, query: PendingQuery) -> sa.ColumnElement[bool]:
    """The exact selection of the reference's table 3.1, including its base manager."""
    c = table.c
    if query is PendingQuery.DIRTY_OBJECTS:
        return sa.and_(
            c.deleted.is_(False),
            sa.or_(c.enacted.is_(None), c.enacted < c.updated, c.enacted < c.changed_by_policy),
            c.lazy_blocked.is_(False),
            c.no_sync.is_(False),
        )
    if query is PendingQuery.DELETED_OBJECTS:
        return c.deleted.is_(True)
    if query is PendingQuery.DIRTY_POLICIES:
        return sa.and_(
            c.deleted.is_(False),
            sa.or_(c.policed.is_(None), c.policed < c.updated, c.policed < c.changed_by_step),
            c.no_policy.is_(False),
        )
    return sa.and_(c.deleted.is_(True), sa.or_(c.policed < c.updated, c.policed.is_(None)))


def dirty_in_python(row: dict[str, object], query: PendingQuery) -> bool:
    """The same predicates over a record, with SQL's rule that a comparison with NULL is false."""

    def lt(a: object, b: object) -> bool:
        return a is not None and b is not None and a < b  # type: ignore[operator]

    if query is PendingQuery.DIRTY_OBJECTS:
        return (
            not row["deleted"]
            and (
                row["enacted"] is None
                or lt(row["enacted"], row["updated"])
                or lt(row["enacted"], row["changed_by_policy"])
            )
            and not row["lazy_blocked"]
            and not row["no_sync"]
        )
    if query is PendingQuery.DELETED_OBJECTS:
        return bool(row["deleted"])
    if query is PendingQuery.DIRTY_POLICIES:
        return (
            not row["deleted"]
            and (
                row["policed"] is None
                or lt(row["policed"], row["updated"])
                or lt(row["policed"], row["changed_by_step"])
            )
            and not row["no_policy"]
        )
    return bool(row["deleted"]) and (row["policed"] is None or lt(row["policed"], row["updated"]))


class Clock:
    """Wall-clock seconds that never repeat in this process, so each version is distinct."""

    STEP = 1e-6

    def __init__(self) -> None:
        self._last = 0.0
        self._lock = threading.Lock()

    def now(self, *, after: float | None = None) -> float:
        """The current time, later than any earlier reading and than `after`."""
        with self._lock:
            t = max(time.time(), self._last + self.STEP)
            if after is not None:
                t = max(t, after + self.STEP)
            self._last = t
            return t
