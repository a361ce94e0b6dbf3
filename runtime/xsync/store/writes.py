"""The statements a create runs, behind one small interface with two implementations.

`SqlStore.create` is the store's hot path: on SQLite, SQLAlchemy's per-statement work
(building, cache-key lookup, result set-up, events) cost several times what SQLite itself
spends. `SqliteWrites` therefore runs SQL compiled once per table, through SQLAlchemy's own
SQLite dialect, on the raw DBAPI cursor of one connection kept for writing. `EngineWrites`
runs the same statements through a SQLAlchemy connection, for PostgreSQL (where a commit
costs far more than statement handling) and for link checks inside `update`.

`CreatePlan` holds what a create needs per model and never changes: the defaults of a new
row, the columns stamped with the time of the write, the columns that must be given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from xprotogen.options import NowDefault

from .base import ChangeKind
from .changelog import log_insert, pending_changes
from .tables import ModelTable


class Writes(Protocol):
    """What a create does inside its transaction."""

    def locate(self, id: int) -> str | None:
        """The name of the model whose table holds object `id`, None when there is none."""
        ...

    def is_deleted(self, leaf: ModelTable, id: int) -> bool | None:
        """The `deleted` flag of object `id` in `leaf`'s table (None: no such row)."""
        ...

    def new_object(self, model: str) -> int:
        """A fresh id from the store-wide sequence, recorded as belonging to `model`."""
        ...

    def insert_row(self, mt: ModelTable, row: dict[str, Any]) -> None: ...

    def insert_links(self, mt: ModelTable, name: str, id: int, ids: Sequence[int]) -> None: ...

    def log(self, kind: ChangeKind, model: str, ids: Sequence[int]) -> None: ...


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """The per-model constants of a create."""

    defaults: dict[str, Any]  # "id" (None), then every column's initial value
    now_columns: tuple[str, ...]  # columns whose default is the time of the write
    must_give: tuple[str, ...]  # required columns with no default, in column order
    feedback: frozenset[str]
    has_links: bool  # whether the model has a link column (whose target must be checked)

    @classmethod
    def of(cls, mt: ModelTable) -> CreatePlan:
        defaults: dict[str, Any] = {"id": None}
        now: list[str] = []
        for name, spec in mt.columns.items():
            if isinstance(spec.default, NowDefault):
                now.append(name)
            defaults[name] = spec.initial(0.0)
        defaults["leaf_model_name"] = mt.name
        return cls(
            defaults=defaults,
            now_columns=tuple(now),
            must_give=tuple(n for n, s in mt.columns.items() if s.required and defaults[n] is None),
            feedback=mt.feedback_columns(),
            has_links=any(s.link_peer is not None for s in mt.columns.values()),
        )

    def new_row(self, now: float) -> dict[str, Any]:
        """A new row's values before the writer's: `id` still None, timestamps at `now`."""
        row = self.defaults.copy()
        for name in self.now_columns:
            row[name] = now
        return row


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    keys: tuple[str, ...]  # the row keys, in the order of the statement's `?` markers


def compile_statement(stmt: sa.ClauseElement, dialect: sa.Dialect) -> Compiled:
    compiled = stmt.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    keys = compiled.positiontup
    assert keys is not None, "the SQLite dialect uses positional parameters"
    return Compiled(str(compiled), tuple(keys))


class SqliteStatements:
    """The SQL text of every statement `SqliteWrites` runs, compiled once per store."""

    def __init__(
        self,
        dialect: sa.Dialect,
        tables: dict[str, ModelTable],
        objects: sa.Table,
        changes: sa.Table,
    ) -> None:
        self.new_object = compile_statement(
            sa.insert(objects).values(model=sa.bindparam("model")), dialect
        )
        self.locate = compile_statement(
            sa.select(objects.c.model).where(objects.c.id == sa.bindparam("id")), dialect
        )
        self.log = compile_statement(
            log_insert(changes, dialect.name).values(
                kind=sa.bindparam("kind"),
                model=sa.bindparam("model"),
                object_id=sa.bindparam("object_id"),
            ),
            dialect,
        )
        self.insert: dict[str, Compiled] = {}
        self.deleted: dict[str, Compiled] = {}
        self.links: dict[tuple[str, str], Compiled] = {}
        for mt in tables.values():
            t = mt.table
            if t is None:
                continue
            names = ["id", *mt.columns]
            self.insert[mt.name] = compile_statement(
                sa.insert(t).values({n: sa.bindparam(n) for n in names}), dialect
            )
            self.deleted[mt.name] = compile_statement(
                sa.select(t.c.deleted).where(t.c.id == sa.bindparam("id")), dialect
            )
            for name, spec in mt.many.items():
                self.links[(mt.name, name)] = compile_statement(
                    sa.insert(spec.table).values(
                        src_id=sa.bindparam("src_id"), dst_id=sa.bindparam("dst_id")
                    ),
                    dialect,
                )


class SqliteWrites:
    """`Writes` on a raw sqlite3 cursor, inside a transaction the caller began."""

    def __init__(self, cursor: Any, statements: SqliteStatements) -> None:
        self._cursor = cursor
        self._s = statements

    def locate(self, id: int) -> str | None:
        found = self._cursor.execute(self._s.locate.sql, (id,)).fetchone()
        return None if found is None else str(found[0])

    def is_deleted(self, leaf: ModelTable, id: int) -> bool | None:
        found = self._cursor.execute(self._s.deleted[leaf.name].sql, (id,)).fetchone()
        return None if found is None or found[0] is None else bool(found[0])

    def new_object(self, model: str) -> int:
        return int(self._cursor.execute(self._s.new_object.sql, (model,)).lastrowid)

    def insert_row(self, mt: ModelTable, row: dict[str, Any]) -> None:
        stmt = self._s.insert[mt.name]
        self._cursor.execute(stmt.sql, [row[k] for k in stmt.keys])

    def insert_links(self, mt: ModelTable, name: str, id: int, ids: Sequence[int]) -> None:
        if ids:
            stmt = self._s.links[(mt.name, name)]
            self._cursor.executemany(stmt.sql, [(id, t) for t in sorted(set(ids))])

    def log(self, kind: ChangeKind, model: str, ids: Sequence[int]) -> None:
        if len(ids) == 1:
            self._cursor.execute(self._s.log.sql, (kind, model, ids[0]))
        else:
            self._cursor.executemany(self._s.log.sql, [(kind, model, i) for i in ids])


class EngineStatements:
    """The statements `EngineWrites` runs, built once per store (building one costs more
    than running it)."""

    def __init__(self, tables: dict[str, ModelTable], objects: sa.Table) -> None:
        self.new_object = sa.insert(objects)
        self.locate = sa.select(objects.c.model).where(objects.c.id == sa.bindparam("oid"))
        self.insert: dict[str, sa.Insert] = {}
        self.deleted: dict[str, sa.Select[Any]] = {}
        self.links: dict[tuple[str, str], sa.Insert] = {}
        for mt in tables.values():
            t = mt.table
            if t is None:
                continue
            self.insert[mt.name] = sa.insert(t)
            self.deleted[mt.name] = sa.select(t.c.deleted).where(t.c.id == sa.bindparam("oid"))
            for name, spec in mt.many.items():
                self.links[(mt.name, name)] = sa.insert(spec.table)


class EngineWrites:
    """`Writes` on a SQLAlchemy connection, inside a transaction the caller began."""

    def __init__(self, conn: sa.Connection, statements: EngineStatements) -> None:
        self._conn = conn
        self._s = statements

    def locate(self, id: int) -> str | None:
        name = self._conn.execute(self._s.locate, {"oid": id}).scalar_one_or_none()
        return None if name is None else str(name)

    def is_deleted(self, leaf: ModelTable, id: int) -> bool | None:
        found = self._conn.execute(self._s.deleted[leaf.name], {"oid": id}).scalar_one_or_none()
        return None if found is None else bool(found)

    def new_object(self, model: str) -> int:
        inserted = self._conn.execute(self._s.new_object, {"model": model}).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])

    def insert_row(self, mt: ModelTable, row: dict[str, Any]) -> None:
        self._conn.execute(self._s.insert[mt.name], row)

    def insert_links(self, mt: ModelTable, name: str, id: int, ids: Sequence[int]) -> None:
        if ids:
            self._conn.execute(
                self._s.links[(mt.name, name)],
                [{"src_id": id, "dst_id": t} for t in sorted(set(ids))],
            )

    def log(self, kind: ChangeKind, model: str, ids: Sequence[int]) -> None:
        # Inserted at the end of the transaction, after the change-log lock (see `changelog`).
        pending_changes(self._conn).add(kind, model, ids)
