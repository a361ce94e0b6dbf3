"""`SqlStore.write_outcomes`: many objects' sync outcomes saved in one transaction.

A sync pass saves a few columns on each object it worked on. Saving them one `update` at a
time cost two transactions and about ten statements per object; here a batch costs a fixed
number of statements whatever its size: one query finds every object's table, one per table
reads the rows (locked, on PostgreSQL), then one executemany per table and set of changed
columns writes them, and one inserts the change log.

What each item does is exactly what `update` would do to it, applied in item order on the
rows as the earlier items left them (`apply_outcomes` works on the rows in memory, then
writes the end state): the same checks, the same "only changed columns", the same stamps,
a change-log entry only for an item that changed something.

Two ways to run the statements: `SqliteOutcomeIO` on the raw sqlite3 cursor the store keeps
for writing (statements compiled once), `EngineOutcomeIO` through SQLAlchemy on PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .base import Actor, ChangeKind, NotFound, StoreError
from .changelog import pending_changes
from .lifecycle import Clock, check_feedback, stamps
from .tables import ModelTable
from .writes import Compiled, EngineWrites, SqliteStatements, SqliteWrites, compile_statement

_CACHED_STATEMENTS = 512  # UPDATE statements kept per store (one per table and column set)


@dataclass(slots=True)
class CheckedOutcome:
    """One item whose values passed the checks that need no database."""

    index: int  # its place in the batch (and in the results)
    mt: ModelTable  # the model the item names (the object may be of a derived one)
    id: int
    scalars: dict[str, Any]
    many: dict[str, list[int]]
    leaf: ModelTable | None = field(default=None)


class LinkReads(Protocol):
    """What a link check reads (see `SqlStore._check_links`)."""

    def locate(self, id: int) -> str | None: ...

    def is_deleted(self, leaf: ModelTable, id: int) -> bool | None: ...


class OutcomeIO(Protocol):
    """The statements of a batch, inside a write transaction the caller began."""

    reads: LinkReads

    def locate_many(self, ids: list[int]) -> dict[int, str]: ...

    def rows(
        self, leaf: ModelTable, columns: tuple[str, ...], ids: list[int]
    ) -> dict[int, dict[str, Any]]:
        """`columns` (`id` first among them) of the rows of `ids` in `leaf`'s table."""
        ...

    def links(self, leaf: ModelTable, name: str, ids: list[int]) -> dict[int, list[int]]: ...

    def update_rows(
        self, leaf: ModelTable, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None: ...

    def replace_links(self, leaf: ModelTable, name: str, links: dict[int, list[int]]) -> None: ...

    def log(self, entries: list[tuple[ChangeKind, str, int]]) -> None: ...


CheckLinks = Callable[[LinkReads, ModelTable, Mapping[str, Any], Mapping[str, list[int]]], None]


class _Overlay:
    """Link checks that see the batch's earlier items (a target deleted by one of them)."""

    def __init__(self, reads: LinkReads, rows: dict[int, dict[str, Any]]) -> None:
        self._reads = reads
        self._rows = rows

    def locate(self, id: int) -> str | None:
        return self._reads.locate(id)

    def is_deleted(self, leaf: ModelTable, id: int) -> bool | None:
        row = self._rows.get(id)
        if row is None:
            return self._reads.is_deleted(leaf, id)
        return None if row["deleted"] is None else bool(row["deleted"])


def apply_outcomes(
    io: OutcomeIO,
    items: list[CheckedOutcome],
    tables: Mapping[str, ModelTable],
    *,
    actor: Actor,
    clock: Clock,
    check_links: CheckLinks,
    results: list[StoreError | None],
) -> None:
    """Apply `items` in order as `update` would, then write the end state; errors go to `results`."""
    located = io.locate_many(sorted({it.id for it in items}))
    wanted: dict[str, set[int]] = {}
    live: list[CheckedOutcome] = []
    for it in items:
        name = located.get(it.id)
        leaf = tables.get(name) if name is not None else None
        if leaf is None or leaf not in it.mt.concrete:
            results[it.index] = NotFound(f"{it.mt.name} {it.id} does not exist")
            continue
        it.leaf = leaf
        wanted.setdefault(leaf.name, set()).add(it.id)
        live.append(it)
    # Only the columns the items write, and those the rules read: fewer to fetch and convert.
    columns: dict[str, set[str]] = {}
    for it in live:
        assert it.leaf is not None
        columns.setdefault(it.leaf.name, {"id", "updated", "deleted"}).update(it.scalars)
    rows: dict[int, dict[str, Any]] = {}
    for name, wanted_ids in wanted.items():
        rows.update(io.rows(tables[name], tuple(sorted(columns[name])), sorted(wanted_ids)))
    feedback = {name: tables[name].feedback_columns() for name in wanted}
    links = _current_links(io, live)
    reads = _Overlay(io.reads, rows)
    written: dict[int, tuple[ModelTable, set[str]]] = {}
    relinked: dict[tuple[str, str], dict[int, list[int]]] = {}
    entries: list[tuple[ChangeKind, str, int]] = []
    for it in live:
        leaf = it.leaf
        assert leaf is not None
        row = rows.get(it.id)
        if row is None:
            results[it.index] = NotFound(f"{leaf.name} {it.id} does not exist")
            continue
        changed = {n: v for n, v in it.scalars.items() if row[n] != v}
        changed_many = {
            n: ids
            for n, ids in it.many.items()
            if set(ids) != set(links[(leaf.name, n)].get(it.id, ()))
        }
        try:
            check_feedback(it.mt.name, actor, changed, feedback[leaf.name])
            check_links(reads, it.mt, changed, changed_many)
        except StoreError as exc:
            results[it.index] = exc
            continue
        now = clock.now(after=row["updated"])
        writes = changed | stamps(
            actor, [*changed, *changed_many], always_update_timestamp=False, now=now
        )
        if not (writes or changed_many):
            continue
        row.update(writes)
        written.setdefault(it.id, (leaf, set()))[1].update(writes)
        for n, new_ids in changed_many.items():
            links[(leaf.name, n)][it.id] = new_ids
            relinked.setdefault((leaf.name, n), {})[it.id] = new_ids
        entries.append(("update", leaf.name, it.id))
    _write_rows(io, rows, written)
    for (leaf_name, n), by_id in relinked.items():
        io.replace_links(tables[leaf_name], n, by_id)
    io.log(entries)


def _current_links(
    io: OutcomeIO, items: list[CheckedOutcome]
) -> dict[tuple[str, str], dict[int, list[int]]]:
    """The many-to-many ids the items name, per (table, field), as stored now."""
    wanted: dict[tuple[str, str], set[int]] = {}
    leaves: dict[str, ModelTable] = {}
    for it in items:
        assert it.leaf is not None
        leaves[it.leaf.name] = it.leaf
        for n in it.many:
            wanted.setdefault((it.leaf.name, n), set()).add(it.id)
    return {
        (leaf_name, n): io.links(leaves[leaf_name], n, sorted(ids))
        for (leaf_name, n), ids in wanted.items()
    }


def _write_rows(
    io: OutcomeIO,
    rows: dict[int, dict[str, Any]],
    written: dict[int, tuple[ModelTable, set[str]]],
) -> None:
    """The end state of every changed row: one executemany per table and column set."""
    groups: dict[tuple[str, tuple[str, ...]], tuple[ModelTable, list[dict[str, Any]]]] = {}
    for id, (leaf, columns) in written.items():
        key = (leaf.name, tuple(sorted(columns)))
        row = rows[id]
        groups.setdefault(key, (leaf, []))[1].append({"id": id, **{c: row[c] for c in key[1]}})
    for (_, names), (leaf, group) in groups.items():
        io.update_rows(leaf, names, group)


def _update_statement(table: sa.Table, columns: tuple[str, ...]) -> sa.Update:
    # Bound names differ from column names: SQLAlchemy reserves those for its own SET values.
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )


class SqliteOutcomeIO:
    """`OutcomeIO` on the store's raw sqlite3 writing cursor; id sets travel as one JSON text
    (`json_each`), so every statement is compiled once whatever the batch's size."""

    def __init__(
        self,
        cursor: Any,
        writes: SqliteWrites,
        statements: SqliteStatements,
        dialect: sa.Dialect,
        cache: dict[Any, Any],
    ) -> None:
        self._cursor = cursor
        self.reads: LinkReads = writes
        self._log_sql = statements.log.sql  # its markers are (kind, model, object_id)
        self._dialect = dialect
        self._cache = cache  # owned by the store: compiled statements outlive a batch

    def _sql(self, key: Any, build: Callable[[], str]) -> str:
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHED_STATEMENTS:
                self._cache.clear()
            found = self._cache[key] = build()
        assert isinstance(found, str)
        return found

    def _select_in(self, table: str, columns: Sequence[str], key: str) -> str:
        quote = self._dialect.identifier_preparer.quote
        return (
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} "
            f"WHERE {quote(key)} IN (SELECT value FROM json_each(?))"
        )

    def locate_many(self, ids: list[int]) -> dict[int, str]:
        sql = self._sql("locate", lambda: self._select_in("xsync_object", ("id", "model"), "id"))
        return {i: m for i, m in self._cursor.execute(sql, (json.dumps(ids),))}

    def rows(
        self, leaf: ModelTable, columns: tuple[str, ...], ids: list[int]
    ) -> dict[int, dict[str, Any]]:
        table = leaf.table
        assert table is not None
        sql = self._sql(
            ("rows", leaf.name, columns), lambda: self._select_in(table.name, columns, "id")
        )
        found = self._cursor.execute(sql, (json.dumps(ids),))
        at = columns.index("id")
        return {r[at]: dict(zip(columns, r)) for r in found}

    def links(self, leaf: ModelTable, name: str, ids: list[int]) -> dict[int, list[int]]:
        table = leaf.many[name].table
        sql = self._sql(
            ("links", leaf.name, name),
            lambda: self._select_in(table.name, ("src_id", "dst_id"), "src_id"),
        )
        out: dict[int, list[int]] = {}
        for src, dst in self._cursor.execute(sql, (json.dumps(ids),)):
            out.setdefault(src, []).append(dst)
        return out

    def update_rows(
        self, leaf: ModelTable, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        assert leaf.table is not None
        table = leaf.table
        compiled = self._cache.get(("update", leaf.name, columns))
        if compiled is None:
            if len(self._cache) >= _CACHED_STATEMENTS:
                self._cache.clear()
            compiled = compile_statement(_update_statement(table, columns), self._dialect)
            self._cache[("update", leaf.name, columns)] = compiled
        assert isinstance(compiled, Compiled)
        keys = [k[2:] for k in compiled.keys]  # "b_<column>" -> the row's key
        self._cursor.executemany(compiled.sql, [[r[k] for k in keys] for r in rows])

    def replace_links(self, leaf: ModelTable, name: str, links: dict[int, list[int]]) -> None:
        table = leaf.many[name].table
        quote = self._dialect.identifier_preparer.quote
        self._cursor.executemany(
            f"DELETE FROM {quote(table.name)} WHERE src_id = ?", [(i,) for i in links]
        )
        self._cursor.executemany(
            f"INSERT INTO {quote(table.name)} (src_id, dst_id) VALUES (?, ?)",
            [(i, t) for i, ids in links.items() for t in sorted(set(ids))],
        )

    def log(self, entries: list[tuple[ChangeKind, str, int]]) -> None:
        # SQLite's write lock is held for the whole transaction: no reason to wait (`changelog`).
        if entries:
            self._cursor.executemany(self._log_sql, entries)


_IDS = postgresql.ARRAY(sa.Integer)


class EngineOutcomeIO:
    """`OutcomeIO` through SQLAlchemy on PostgreSQL: id sets travel as one array (`= ANY`),
    rows are read locked in id order (writers run in parallel there), writes are executemany
    (psycopg 3 pipelines them: one round trip)."""

    def __init__(self, conn: sa.Connection, writes: EngineWrites, objects: sa.Table) -> None:
        self._conn = conn
        self.reads: LinkReads = writes
        self._objects = objects

    def locate_many(self, ids: list[int]) -> dict[int, str]:
        o = self._objects
        stmt = sa.select(o.c.id, o.c.model).where(
            o.c.id == sa.any_(sa.bindparam("ids", type_=_IDS))
        )
        return {i: m for i, m in self._conn.execute(stmt, {"ids": ids})}

    def rows(
        self, leaf: ModelTable, columns: tuple[str, ...], ids: list[int]
    ) -> dict[int, dict[str, Any]]:
        t = leaf.table
        assert t is not None
        stmt = (
            sa.select(*(t.c[c] for c in columns))
            .where(t.c.id == sa.any_(sa.bindparam("ids", type_=_IDS)))
            .order_by(t.c.id)
            .with_for_update()
        )
        return {r.id: dict(r._mapping) for r in self._conn.execute(stmt, {"ids": ids})}

    def links(self, leaf: ModelTable, name: str, ids: list[int]) -> dict[int, list[int]]:
        t = leaf.many[name].table
        stmt = (
            sa.select(t.c.src_id, t.c.dst_id)
            .where(t.c.src_id == sa.any_(sa.bindparam("ids", type_=_IDS)))
            .order_by(t.c.src_id, t.c.dst_id)
        )
        out: dict[int, list[int]] = {}
        for src, dst in self._conn.execute(stmt, {"ids": ids}):
            out.setdefault(src, []).append(dst)
        return out

    def update_rows(
        self, leaf: ModelTable, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        assert leaf.table is not None
        self._conn.execute(
            _update_statement(leaf.table, columns),
            [{f"b_{k}": v for k, v in r.items()} for r in rows],
        )

    def replace_links(self, leaf: ModelTable, name: str, links: dict[int, list[int]]) -> None:
        t = leaf.many[name].table
        self._conn.execute(
            sa.delete(t).where(t.c.src_id == sa.any_(sa.bindparam("ids", type_=_IDS))),
            {"ids": list(links)},
        )
        rows = [{"src_id": i, "dst_id": d} for i, ids in links.items() for d in sorted(set(ids))]
        if rows:
            self._conn.execute(sa.insert(t), rows)

    def log(self, entries: list[tuple[ChangeKind, str, int]]) -> None:
        pending = pending_changes(self._conn)
        for kind, model, id in entries:
            pending.add(kind, model, [id])
