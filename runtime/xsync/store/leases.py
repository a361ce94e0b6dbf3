"""Leases in the store: which runner works on which object, and which runner leads.

Several runners of one synchronizer share its work through two small tables:

- `xsync_claims` (synchronizer, object id) -> holder, expires: a runner works on an object
  only while it holds a live lease on it;
- `xsync_leaders` synchronizer -> holder, expires: the one runner that runs what must run once
  (policies, pull steps, the reaper).

Why lease rows rather than `SELECT ... FOR UPDATE SKIP LOCKED` or advisory locks: a row lock
or an advisory lock lives in one database session, so it needs a transaction (or a session)
held open for as long as the work lasts, it cannot cross `xsync core`'s gRPC API, and nobody
else can see it. A lease row is one short statement to take, renew or give up, works the same
through the core, and `xsync status` can read it. Its expiry hands a dead runner's objects over.

Every time comes from the store's clock (PostgreSQL's `clock_timestamp()`), never a runner's,
so runners on machines whose clocks disagree still agree on when a lease ends.

A lease is taken only if it ended before `seen_at`, the store time at which the claimer began
reading the objects: a runner whose copy of an object predates another runner's last work on
it would sync it from stale data, so it must wait for its next read. A runner's own lease is
always its to take again: its last work on the object ended before its current read.

All statements touch rows in object-id order (the VALUES of one INSERT in order, renewals
through `ORDER BY ... FOR UPDATE`), so two runners' statements never wait for each other in a
cycle: no deadlocks.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import sqlalchemy as sa

from .now import now_sql

CLAIMS_TABLE = "xsync_claims"
LEADERS_TABLE = "xsync_leaders"
# A release is sent as a row with this expiry (the lease ends now); no real lease is negative.
_RELEASE = -1.0


def lease_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    claims = sa.Table(
        CLAIMS_TABLE,
        metadata,
        sa.Column("owner", sa.Text, primary_key=True),  # the synchronizer's name
        sa.Column("object_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),  # store time, seconds since the epoch
    )
    leaders = sa.Table(
        LEADERS_TABLE,
        metadata,
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )
    return claims, leaders


class SqlLeases:
    """The lease statements on one engine (PostgreSQL, or SQLite behind a single core)."""

    def __init__(self, engine: sa.Engine, lock: threading.RLock) -> None:
        self._engine = engine
        postgres = engine.dialect.name == "postgresql"
        # On SQLite (one process: the core) the store's write lock orders the statements.
        self._lock = lock if not postgres else None
        self._now = now_sql(engine.dialect.name)
        now = self._now
        self._claim_sql = (
            f"INSERT INTO {CLAIMS_TABLE} (owner, object_id, holder, expires) VALUES {{rows}} "
            "ON CONFLICT (owner, object_id) DO UPDATE SET holder = excluded.holder, "
            f"expires = CASE WHEN excluded.expires < 0 THEN {now} ELSE excluded.expires END "
            # A runner may always take its own lease again: one it could not release (the store
            # was down) must not lock it out of the object while its renewals keep the lease live.
            f"WHERE (excluded.expires >= 0 AND ({CLAIMS_TABLE}.expires < :seen_at "
            f"OR {CLAIMS_TABLE}.holder = excluded.holder)) "
            f"OR (excluded.expires < 0 AND {CLAIMS_TABLE}.holder = excluded.holder) "
            f"RETURNING object_id, {CLAIMS_TABLE}.expires"
        )
        lock_mine = (
            f"SELECT object_id FROM {CLAIMS_TABLE} WHERE owner = :owner AND holder = :holder "
            f"AND expires > {now} ORDER BY object_id" + (" FOR UPDATE" if postgres else "")
        )
        self._renew_sql = sa.text(
            f"UPDATE {CLAIMS_TABLE} SET expires = {now} + :lease WHERE owner = :owner "
            f"AND object_id IN ({lock_mine})"
        )
        self._release_all_sql = sa.text(
            f"UPDATE {CLAIMS_TABLE} SET expires = {now} WHERE owner = :owner "
            f"AND object_id IN ({lock_mine})"
        )
        self._holders_sql = sa.text(
            f"SELECT holder, count(*) FROM {CLAIMS_TABLE} WHERE owner = :owner "
            f"AND expires > {now} GROUP BY holder ORDER BY holder"
        )
        self._lead_sql = sa.text(
            f"INSERT INTO {LEADERS_TABLE} (owner, holder, expires) "
            f"VALUES (:owner, :holder, {now} + :lease) "
            "ON CONFLICT (owner) DO UPDATE SET holder = excluded.holder, expires = excluded.expires "
            f"WHERE {LEADERS_TABLE}.holder = excluded.holder OR {LEADERS_TABLE}.expires < {now} "
            "RETURNING holder"
        )
        self._leader_sql = sa.text(
            f"SELECT holder FROM {LEADERS_TABLE} WHERE owner = :owner AND expires > {now}"
        )
        self._resign_sql = sa.text(
            f"UPDATE {LEADERS_TABLE} SET expires = {_RELEASE} "
            "WHERE owner = :owner AND holder = :holder"
        )
        self._clock_sql = sa.text(f"SELECT {now}")
        self._forget_sql = sa.text(
            f"DELETE FROM {CLAIMS_TABLE} WHERE owner = :owner AND expires < {now} - :age"
        )

    def _execute(
        self, statement: sa.TextClause, params: dict[str, object]
    ) -> tuple[list[Any], int]:
        """One statement in a transaction of its own: the rows it returns and its row count."""
        lock = self._lock
        if lock is not None:
            lock.acquire()
        try:
            with self._engine.connect() as conn:
                conn.execution_options(xsync_write=True)
                with conn.begin():
                    result = conn.execute(statement, params)
                    rows = list(result) if result.returns_rows else []
                    return rows, int(result.rowcount)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, statement: sa.TextClause, params: dict[str, object]) -> list[Any]:
        return self._execute(statement, params)[0]

    def _count(self, statement: sa.TextClause, params: dict[str, object]) -> int:
        return self._execute(statement, params)[1]

    def clock(self) -> float:
        """The store's time now, in seconds since the epoch."""
        return float(self._run(self._clock_sql, {})[0][0])

    def claim(
        self,
        owner: str,
        holder: str,
        ids: Sequence[int],
        *,
        seen_at: float,
        lease_seconds: float,
        release: Sequence[int] = (),
    ) -> list[int]:
        """Give up the leases on `release`, then take those of `ids` that are free since before
        `seen_at`, for `lease_seconds`; returns the ids taken. One statement, one round trip."""
        taking = sorted(set(ids))
        giving = sorted(set(release) - set(taking))
        if not taking and not giving:
            return []
        rows: list[str] = []
        params: dict[str, object] = {
            "owner": owner,
            "holder": holder,
            "seen_at": seen_at,
            "lease": lease_seconds,
        }
        wanted = set(taking)
        for index, object_id in enumerate(sorted([*taking, *giving])):
            params[f"i{index}"] = object_id
            if object_id in wanted:
                rows.append(f"(:owner, :i{index}, :holder, {self._now} + :lease)")
            else:
                rows.append(f"(:owner, :i{index}, :holder, {_RELEASE})")
        statement = sa.text(self._claim_sql.format(rows=", ".join(rows)))
        found = self._run(statement, params)
        return sorted(int(row[0]) for row in found if int(row[0]) in wanted)

    def renew(self, owner: str, holder: str, lease_seconds: float) -> int:
        """Extend every live lease of `holder`; returns how many there are."""
        params = {"owner": owner, "holder": holder, "lease": lease_seconds}
        return self._count(self._renew_sql, params)

    def release_all(self, owner: str, holder: str) -> int:
        """End every lease of `holder` now (a runner that stops)."""
        return self._count(self._release_all_sql, {"owner": owner, "holder": holder})

    def holders(self, owner: str) -> dict[str, int]:
        """Live leases per holder."""
        return {str(row[0]): int(row[1]) for row in self._run(self._holders_sql, {"owner": owner})}

    def lead(self, owner: str, holder: str, lease_seconds: float) -> bool:
        """Take or keep the leadership of `owner` for `lease_seconds`; True if `holder` leads."""
        found = self._run(
            self._lead_sql, {"owner": owner, "holder": holder, "lease": lease_seconds}
        )
        return bool(found) and str(found[0][0]) == holder

    def leader(self, owner: str) -> str | None:
        found = self._run(self._leader_sql, {"owner": owner})
        return str(found[0][0]) if found else None

    def resign(self, owner: str, holder: str) -> None:
        self._count(self._resign_sql, {"owner": owner, "holder": holder})

    def forget_ended(self, owner: str, age_seconds: float) -> int:
        """Delete the rows of leases that ended more than `age_seconds` ago; how many.

        A released lease keeps its row (its end time is what `seen_at` is compared with); a
        row ended long before any runner's current read says nothing a missing row does not.
        """
        return self._count(self._forget_sql, {"owner": owner, "age": age_seconds})
