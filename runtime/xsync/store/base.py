"""The store contract: what every backend (SQLite, PostgreSQL, the gRPC client) provides.

Objects cross this boundary as plain dicts of column values: scalar fields by name, a link
to one object as `<field>_id`, a many-to-many link as `<field>_ids` (a list of ids), and
timestamps as float seconds since the epoch (None when unset), as the XOS API sends them.
Who writes matters (reference: xos-synchronizer-runtime.md section 2.1), so every write
names its `Actor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Mapping, Protocol, Sequence

Record = dict[str, Any]
Actor = Literal["user", "synchronizer", "policy"]
ChangeKind = Literal["create", "update", "delete"]


class PendingQuery(Enum):
    """The four selections of the reference's table 3.1 (values are XOS's QueryKind)."""

    DIRTY_OBJECTS = 2
    DELETED_OBJECTS = 3
    DIRTY_POLICIES = 4
    DELETED_POLICIES = 5


@dataclass(frozen=True, slots=True)
class OutcomeWrite:
    """Values the synchronizer saves on one object after working on it (see `write_outcomes`)."""

    model: str
    id: int
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change. `seq` grows by one per change, in commit order."""

    seq: int
    kind: ChangeKind
    model: str
    id: int


class StoreError(Exception):
    """Base of every error a store raises on purpose; the message names the problem."""


class NotFound(StoreError):
    pass


class InvalidArgument(StoreError):
    """A bad request: unknown model or field, wrong type, missing required field, bad link."""


class PermissionDenied(StoreError):
    """A writer that is not the synchronizer tried to change feedback state."""


class Unauthenticated(StoreError):
    pass


class Unavailable(StoreError):
    """The store cannot be reached now (a core down, a network cut); the message says why.

    Not a problem of any one object: callers wait and reconnect rather than fail objects.
    """


# Errors that say the store itself cannot be used (down, or refusing our credentials), as
# opposed to a problem with one object: an engine stops its pass instead of failing objects.
STORE_DOWN = (Unavailable, Unauthenticated)


class Store(Protocol):
    """A model store. Implementations must be safe to call from several threads."""

    def core_version(self) -> str: ...

    def model_names(self) -> list[str]: ...

    def create(self, model: str, values: Mapping[str, Any], *, actor: Actor = "user") -> Record: ...

    def create_many(
        self, model: str, values_list: Sequence[Mapping[str, Any]], *, actor: Actor = "user"
    ) -> list[Record]:
        """Create one object per item, as `create` would, but in one transaction: all or none.

        Each object still gets its own id (in list order) and its own change; a bad item
        fails the whole call with the error `create` would give for it.
        """
        ...

    def get(self, model: str, id: int, *, include_deleted: bool = False) -> Record: ...

    def get_many(self, model: str, ids: Sequence[int], *, deleted: bool = False) -> list[Record]:
        """The live objects of `model` with these ids (with `deleted`, the soft-deleted ones),
        in id order; an id with no such object is left out."""
        ...

    def query(
        self,
        model: str,
        *,
        filters: Mapping[str, Any] | None = None,
        excludes: Mapping[str, Any] | None = None,
        deleted: bool | None = False,
        order_by: Sequence[str] = ("id",),
        limit: int | None = None,
    ) -> list[Record]:
        """Objects whose columns equal every `filters` value and not all `excludes` values.

        `deleted=False` gives live objects, True soft-deleted ones, None both.
        """
        ...

    def update(
        self,
        model: str,
        id: int,
        values: Mapping[str, Any],
        *,
        actor: Actor = "user",
        update_fields: Sequence[str] | None = None,
        always_update_timestamp: bool = False,
    ) -> Record: ...

    def write_outcomes(
        self, writes: Sequence[OutcomeWrite], *, actor: Actor = "synchronizer"
    ) -> list[StoreError | None]:
        """Save each item as `update(w.model, w.id, w.values, actor=actor,
        update_fields=list(w.values))` would, all in one transaction (one round trip per
        statement kind, one call over gRPC).

        Returns one result per item, in order: None when it was saved (or had nothing to
        change), else the error `update` would have raised for it; the other items are saved
        all the same. Raises `Unavailable`/`Unauthenticated` (nothing saved) when the store
        cannot be used.
        """
        ...

    def delete(self, model: str, id: int, *, actor: Actor = "user") -> None:
        """Soft delete, cascading to the objects that link to this one."""
        ...

    def purge(self, model: str, id: int) -> None:
        """Remove the row for good (the reaper's job once backend_need_reap is set)."""
        ...

    def pending(
        self, model: str, query: PendingQuery, *, columns: Sequence[str] | None = None
    ) -> list[Record]:
        """The objects of `model` that `query` selects, in id order.

        With `columns`, each record holds `id` and only those of the named columns (and
        `<x>_ids` lists) the model has: the sync engine plans with a few columns and reads
        an object whole only just before its step runs.
        """
        ...

    def changes(self, after: int = 0, *, timeout: float | None = None) -> list[Change]:
        """Changes with `seq > after`, in commit order; waits up to `timeout` for the first.

        The log keeps changes for a retention window (`forget_changes`): entries older than
        that may be gone, but the newest change always stays. So a reader at `after` gets at
        least one change whenever anything committed since, and it has missed pruned entries
        exactly when the first change it gets has a `seq` above `after + 1`.
        """
        ...

    def latest_change(self) -> int:
        """The `seq` of the newest committed change (0 when there is none), without reading
        the log: where a reader that only wants what comes next starts."""
        ...

    def forget_changes(self, age_seconds: float) -> int:
        """Delete change-log entries older than `age_seconds` (store time), oldest first, in
        bounded batches and within a bounded time; how many went. Only a prefix of the log
        is deleted, never the newest change (see `changes`). One runner's chore: the leader's.
        """
        ...

    def close(self) -> None: ...
