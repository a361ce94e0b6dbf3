"""`SqlStore`: the Store contract over SQLite or PostgreSQL, with SQLAlchemy Core.

Every write is one transaction that also appends to the change log. Change sequence numbers
are handed out in commit order: a reader that has seen `seq = n` has seen every change up to
`n`, which is what lets `changes()` deliver each change exactly once. On SQLite writers are
serialised (an in-process lock, then SQLite's write lock); on PostgreSQL they run in parallel
and only the change-log insert and the commit are serialised, by a table lock (`changelog`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool
from xprotogen.schema import Schema
from xprotogen.store_columns import INT32

from .base import (
    Actor,
    Unavailable,
    Change,
    ChangeKind,
    InvalidArgument,
    STORE_DOWN,
    NotFound,
    OutcomeWrite,
    PendingQuery,
    Record,
    StoreError,
)
from .changelog import begin_collecting, pending_changes, stop_collecting
from .failures import store_is_down
from .filters import conditions, ordering, sort_key_names
from .leases import SqlLeases, lease_tables
from .lifecycle import Clock, check_feedback, pending_predicate, stamps
from .migrate import evolve
from .outcomes import (
    CheckedOutcome,
    EngineOutcomeIO,
    LinkReads,
    OutcomeIO,
    SqliteOutcomeIO,
    apply_outcomes,
)
from .now import now_sql
from .model_guard import MODELS_KEY, check_models, model_record
from .tables import CHANGE_TABLE, META_TABLE, OBJECT_TABLE, ModelTable, build_tables
from .values import check_value
from .version import CORE_VERSION
from .wakeup import commit_watch, install_pg_trigger
from .writes import (
    CreatePlan,
    EngineStatements,
    EngineWrites,
    SqliteStatements,
    SqliteWrites,
    Writes,
)

POLL_SECONDS = 0.1  # how soon a waiting reader notices another process's commit without a watch
WATCHED_SECONDS = 2.0  # the same with a live watch (`wakeup`): a safety net only
_NAMES_KEPT = 256  # column sets of write_outcomes remembered (see `_checked_outcome`)
# Change-log entries deleted per transaction by `forget_changes`, and its time budget per
# call: a batch holds the log's lock (writers wait at their change-log insert) only briefly.
FORGET_BATCH = 5000
FORGET_SECONDS = 5.0
_ID_CHUNK = 500  # ids per IN (...) when reading many-to-many rows, under SQLite's variable limit
# Written only by the store itself; a writer's value for them is ignored, as XOS ignores it.
_READ_ONLY = frozenset({"id", "created", "updated", "leaf_model_name"})
_ACTORS = frozenset({"user", "synchronizer", "policy"})

Where = Callable[[sa.Table], list[sa.ColumnElement[bool]]]
_Checked = tuple[dict[str, Any], dict[str, list[int]]]  # (column values, many-to-many ids)


def open_store(
    url: str, schema: Schema, *, core_version: str = CORE_VERSION, migrated: bool = False
) -> SqlStore:
    """Open (creating or evolving its tables) the store at `url` for the models of `schema`.

    `url` is `sqlite:///path.db`, `sqlite://` (in memory) or `postgresql://...`. Models that
    break those the store was last opened with are refused (`BreakingModelChange`) unless
    `migrated` says the data was migrated for them.
    """
    engine, memory = _engine(url)
    metadata = sa.MetaData()
    try:
        tables = build_tables(schema, metadata)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    store = SqlStore(engine, tables, metadata, memory=memory)
    try:
        store.setup(core_version, models=(schema, migrated))
    except StoreError:
        engine.dispose()
        raise
    return store


def _engine(url: str) -> tuple[sa.Engine, bool]:
    scheme = url.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        pg_url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return sa.create_engine(pg_url, pool_pre_ping=True, pool_size=8, max_overflow=16), False
    if scheme == "sqlite":
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:
            # One shared connection: an in-memory database exists only inside its connection.
            engine = sa.create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine, wal=not memory)
        return engine, memory
    raise InvalidArgument(
        f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://..."
    )


def _configure_sqlite(engine: sa.Engine, *, wal: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling starts transactions late; we issue BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A writer takes the write lock up front, so it never fails to upgrade a read lock.
        writing = conn.get_execution_options().get("xsync_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class SqlStore:
    """A `Store` on one SQLAlchemy engine; safe to share between threads."""

    def __init__(
        self,
        engine: sa.Engine,
        tables: dict[str, ModelTable],
        metadata: sa.MetaData,
        *,
        memory: bool,
    ) -> None:
        self._engine = engine
        self._tables = tables
        self._metadata = metadata
        self._objects = metadata.tables[OBJECT_TABLE]
        self._changes = metadata.tables[CHANGE_TABLE]
        self._meta = metadata.tables[META_TABLE]
        self._postgres = engine.dialect.name == "postgresql"
        self._memory = memory
        self._write_lock = threading.RLock()
        lease_tables(metadata)
        # Object and leader leases of the runners sharing a synchronizer (see `leases`).
        self.leases = SqlLeases(engine, self._write_lock)
        self._committed = threading.Condition()
        self._commit_count = 0
        # Commits by other processes wake waiting readers too (started by the first wait).
        self._watch = None if memory else commit_watch(engine.url, self._commit_seen)
        self._clock = Clock()
        self._cascades = self._cascade_sources()
        self._associations = [m.table for mt in tables.values() for m in mt.many.values()]
        # Statements built once: building one costs more than running it on SQLite.
        self._locate_stmt = sa.select(self._objects.c.model).where(
            self._objects.c.id == sa.bindparam("oid")
        )
        self._many_stmts: dict[tuple[str, str, bool], sa.Select[Any]] = {}  # see `get_many`
        self._row_stmts = {
            mt.name: sa.select(mt.table).where(mt.table.c.id == sa.bindparam("oid"))
            for mt in tables.values()
            if mt.table is not None
        }
        # A writer reads the row it changes locked on PostgreSQL, where writers run in
        # parallel: its "what changed" is then computed from the row as it will be written.
        self._locked_row_stmts = {
            name: stmt.with_for_update() if self._postgres else stmt
            for name, stmt in self._row_stmts.items()
        }
        changes = self._changes
        self._latest_stmt = sa.select(sa.func.max(changes.c.seq))
        # The oldest entries, each with whether it is older than `:age` seconds (store time);
        # an entry written before the log had times (`at` NULL) counts as old.
        self._oldest_stmt = (
            sa.select(
                changes.c.seq,
                sa.or_(
                    changes.c.at.is_(None),
                    changes.c.at < sa.text(f"{now_sql(engine.dialect.name)} - :age"),
                ),
            )
            .order_by(changes.c.seq)
            .limit(sa.bindparam("n"))
        )
        self._version_stmt = sa.select(self._meta.c.value).where(self._meta.c.key == "core_version")
        self._plans = {mt.name: CreatePlan.of(mt) for mt in tables.values() if mt.table is not None}
        self._engine_statements = EngineStatements(tables, self._objects)
        self._sqlite_statements = (
            SqliteStatements(engine.dialect, tables, self._objects, self._changes)
            if engine.dialect.name == "sqlite"
            else None
        )
        # On SQLite, creates run on one raw connection kept for them (see `_create_checked`).
        self._raw_writer: tuple[Any, SqliteWrites, Any] | None = None
        # Compiled statements of `write_outcomes` on SQLite (see `outcomes`), kept between calls.
        self._outcome_statements: dict[Any, Any] = {}
        self._outcome_names: dict[tuple[str, tuple[str, ...]], set[str]] = {}

    @property
    def shared_by_runners(self) -> bool:
        """Whether several runners may work on this store at once (PostgreSQL; SQLite serves one)."""
        return self._postgres

    # --- set-up -----------------------------------------------------------------------

    def setup(self, core_version: str, *, models: tuple[Schema, bool] | None = None) -> list[str]:
        """Create or evolve the tables and record `core_version`; returns the columns added.

        With `models` (the schema, and whether the data was migrated for it), the schema is
        first checked against the models the store was last opened with (see `model_guard`)
        and then kept in their place; a refusal changes nothing.
        """
        record = model_record(models[0]) if models is not None else None
        try:
            with self._write_lock, self._engine.connect() as conn:
                conn.execution_options(xsync_write=True)
                with conn.begin():
                    if self._postgres:
                        # Two processes opening a fresh database must not both create its tables.
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7355608)"))
                    if models is not None and record is not None:
                        self._guard_models(conn, record, *models)
                    added = evolve(conn, self._metadata, self._tables)
                    if self._postgres:
                        install_pg_trigger(conn, CHANGE_TABLE)
                    self._put_meta(conn, "core_version", core_version)
                    if record is not None:
                        self._put_meta(conn, MODELS_KEY, record)
            return added
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the store at {self._engine.url!r}: {_reason(exc)}"
            ) from None

    def _guard_models(
        self, conn: sa.Connection, record: str, schema: Schema, migrated: bool
    ) -> None:
        if migrated or not sa.inspect(conn).has_table(META_TABLE):
            return
        kept = conn.execute(
            sa.select(self._meta.c.value).where(self._meta.c.key == MODELS_KEY)
        ).scalar()
        check_models(kept, record, schema, store=self._engine.url.render_as_string())

    def _put_meta(self, conn: sa.Connection, key: str, value: str) -> None:
        conn.execute(sa.delete(self._meta).where(self._meta.c.key == key))
        conn.execute(sa.insert(self._meta).values(key=key, value=value))

    def _cascade_sources(self) -> dict[str, list[tuple[ModelTable, str]]]:
        """For each concrete model, the (model, column) pairs whose soft delete it cascades to."""
        concrete = [mt for mt in self._tables.values() if mt.table is not None]
        return {
            target.name: [
                (source, name)
                for source in concrete
                for name, spec in source.columns.items()
                if spec.link_peer is not None
                and spec.required
                and target.model.is_a(spec.link_peer)
            ]
            for target in concrete
        }

    # --- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, *, failure: type[StoreError] = StoreError) -> Iterator[sa.Connection]:
        """A write transaction; its change-log rows are inserted last (see `changelog`).

        On PostgreSQL writers of this and other processes run in parallel until their
        change-log insert; on SQLite one writer at a time holds the database (and, in this
        process, the lock that keeps threads from waiting on SQLite's busy timeout instead).
        """
        lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if self._postgres else self._write_lock
        )
        try:
            with lock, self._engine.connect() as conn:
                conn.execution_options(xsync_write=True)
                try:
                    with conn.begin():
                        pending = begin_collecting(conn)
                        yield conn
                        pending.flush(conn, self._changes, lock=self._postgres)
                finally:
                    stop_collecting(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise _failure(exc, failure)(f"store write failed: {_reason(exc)}") from None
        self._commit_seen()

    def _commit_seen(self) -> None:
        """Wake the readers waiting in `changes`: this or another process committed."""
        with self._committed:
            self._commit_count += 1
            self._committed.notify_all()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        lock: contextlib.AbstractContextManager[Any] = (
            self._write_lock if self._memory else contextlib.nullcontext()
        )
        try:
            with lock, self._engine.connect() as conn:
                if self._postgres:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise _failure(exc, StoreError)(f"store read failed: {_reason(exc)}") from None

    def _create_checked(
        self, mt: ModelTable, checked: list[_Checked], actor: Actor
    ) -> list[Record]:
        """Create objects from checked values in one write transaction.

        On SQLite this is `_write` without SQLAlchemy: the in-process lock, BEGIN IMMEDIATE
        (SQLite's write lock), the statements on the raw cursor of a connection kept for
        creates, then COMMIT, or ROLLBACK of the whole transaction on any error.
        """
        if self._sqlite_statements is None:
            with self._write() as conn:
                return self._create_rows(
                    EngineWrites(conn, self._engine_statements), mt, checked, actor
                )
        with self._sqlite_write(StoreError) as (writes, _cursor):
            return self._create_rows(writes, mt, checked, actor)

    @contextlib.contextmanager
    def _sqlite_write(self, failure: type[StoreError]) -> Iterator[tuple[SqliteWrites, Any]]:
        """A write transaction on the raw connection kept for writes: BEGIN IMMEDIATE, then
        COMMIT, or ROLLBACK of all of it on any error; SQLite's own errors raised as `failure`."""
        with self._write_lock:
            writes, cursor = self._sqlite_writer()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield writes, cursor
                    cursor.execute("COMMIT")
                except BaseException:
                    _rollback(cursor)
                    raise
            except sqlite3.Error as exc:
                raise _failure(exc, failure)(f"store write failed: {_first_line(exc)}") from None
        self._commit_seen()

    def _sqlite_writer(self) -> tuple[SqliteWrites, Any]:
        """The raw connection creates run on, opened on first use (call with the write lock)."""
        if self._raw_writer is None:
            assert self._sqlite_statements is not None
            raw = self._engine.raw_connection()
            cursor = raw.dbapi_connection.cursor()  # type: ignore[union-attr]
            self._raw_writer = (raw, SqliteWrites(cursor, self._sqlite_statements), cursor)
        return self._raw_writer[1], self._raw_writer[2]

    def _create_rows(
        self, writes: Writes, mt: ModelTable, checked: list[_Checked], actor: Actor
    ) -> list[Record]:
        plan = self._plans[mt.name]
        records: list[Record] = []
        for scalars, many in checked:
            now = self._clock.now()
            row = plan.new_row(now)
            changed = [n for n, v in scalars.items() if v != row[n]]
            check_feedback(mt.name, actor, changed, plan.feedback)
            row.update(scalars)
            for name in plan.must_give:
                if row[name] is None:
                    raise InvalidArgument(f"{mt.name}.{name} is required")
            if plan.has_links or many:
                self._check_links(writes, mt, scalars, many)
            if actor != "user":
                # A user's create is stamped `updated = now`, which `new_row` has set already.
                row.update(stamps(actor, [*changed, *many], always_update_timestamp=False, now=now))
            row["id"] = new_id = writes.new_object(mt.name)
            writes.insert_row(mt, row)
            for name, ids in many.items():
                writes.insert_links(mt, name, new_id, ids)
            writes.log("create", mt.name, [new_id])
            for name in mt.many:
                row[name] = sorted(many.get(name, ()))
            records.append(row)
        return records

    def _log(self, conn: sa.Connection, kind: ChangeKind, model: str, ids: Sequence[int]) -> None:
        pending_changes(conn).add(kind, model, ids)

    # --- the contract -------------------------------------------------------------------

    def core_version(self) -> str:
        with self._read() as conn:
            value = conn.execute(self._version_stmt).scalar_one_or_none()
        return str(value) if value is not None else ""

    def model_names(self) -> list[str]:
        """The models that have a table, in schema order."""
        return [name for name, mt in self._tables.items() if mt.table is not None]

    def create(self, model: str, values: Mapping[str, Any], *, actor: Actor = "user") -> Record:
        mt = self._creatable(model, actor)
        return self._create_checked(mt, [self._checked_new(mt, values)], actor)[0]

    def create_many(
        self, model: str, values_list: Sequence[Mapping[str, Any]], *, actor: Actor = "user"
    ) -> list[Record]:
        """Create one object per item of `values_list` in one transaction: all or none.

        Each object gets its own id (in list order), timestamps and change-log row, exactly
        as if created one by one; a bad item fails the whole call, naming its field.
        """
        mt = self._creatable(model, actor)
        if isinstance(values_list, (str, bytes, Mapping)) or not isinstance(
            values_list, (list, tuple)
        ):
            raise InvalidArgument(f"create_many takes a list of {model} values")
        checked = [self._checked_new(mt, values) for values in values_list]
        return self._create_checked(mt, checked, actor) if checked else []

    def _creatable(self, model: str, actor: Actor) -> ModelTable:
        mt = self._model(model)
        _check_actor(actor)
        if mt.table is None:
            raise InvalidArgument(f"{model} is abstract; create one of the models derived from it")
        return mt

    def _checked_new(self, mt: ModelTable, values: Mapping[str, Any]) -> _Checked:
        if not isinstance(values, dict) and not isinstance(values, Mapping):
            raise InvalidArgument(f"{mt.name} values must be a mapping, got {values!r:.60}")
        if values.get("id") is not None:
            raise InvalidArgument(
                f"{mt.name}.id is assigned by the store; do not pass it to create"
            )
        return self._checked(mt, values)

    def get(self, model: str, id: int, *, include_deleted: bool = False) -> Record:
        mt = self._model(model)
        _check_id(mt, id)
        with self._read() as conn:
            leaf = self._locate(conn, mt, id)
            row = self._row(conn, leaf, id)
            if row["deleted"] and not include_deleted:
                raise NotFound(f"{model} {id} is deleted")
            return self._records(conn, mt, leaf, [row])[0]

    def get_many(self, model: str, ids: Sequence[int], *, deleted: bool = False) -> list[Record]:
        mt = self._model(model)
        for id in ids:
            _check_id(mt, id)
        keys = ["id", *mt.columns]
        results: list[Record] = []
        with self._read() as conn:
            for leaf in mt.concrete:
                stmt = self._many_stmt(mt, leaf, deleted)
                for start in range(0, len(ids), _ID_CHUNK):
                    chunk = list(ids[start : start + _ID_CHUNK])
                    records = [dict(zip(keys, row)) for row in conn.execute(stmt, {"ids": chunk})]
                    results.extend(self._with_lists(conn, mt, leaf, records, list(mt.many)))
        return sorted(results, key=lambda r: r["id"]) if len(mt.concrete) > 1 else results

    def _many_stmt(self, view: ModelTable, leaf: ModelTable, deleted: bool) -> sa.Select[Any]:
        # Built once per view, table and flag: the sync engine reads every object it runs
        # through here, a batch at a time, and building the statement cost more than running it.
        found = self._many_stmts.get((view.name, leaf.name, deleted))
        if found is None:
            assert leaf.table is not None
            t = leaf.table
            found = (
                sa.select(t.c.id, *(t.c[n] for n in view.columns))
                .where(t.c.id.in_(sa.bindparam("ids", expanding=True)), t.c.deleted.is_(deleted))
                .order_by(t.c.id)
            )
            self._many_stmts[(view.name, leaf.name, deleted)] = found
        return found

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
        mt = self._model(model)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidArgument(f"query limit must be a non-negative integer, got {limit!r}")
        if isinstance(order_by, str):
            order_by = (order_by,)

        def where(table: sa.Table) -> list[sa.ColumnElement[bool]]:
            found = conditions(mt, table, filters, excludes)
            if deleted is not None:
                found.append(table.c.deleted.is_(deleted))
            return found

        return self._select(mt, where, order_by, limit)

    def update(
        self,
        model: str,
        id: int,
        values: Mapping[str, Any],
        *,
        actor: Actor = "user",
        update_fields: Sequence[str] | None = None,
        always_update_timestamp: bool = False,
    ) -> Record:
        mt = self._model(model)
        _check_id(mt, id)
        _check_actor(actor)
        if values.get("id") not in (None, id):
            raise InvalidArgument(f"{model}.id cannot change (from {id} to {values['id']!r})")
        if update_fields is not None:
            wanted = self._column_names(mt, update_fields)
            values = {k: v for k, v in values.items() if k in wanted}
        scalars, many = self._checked(mt, values)
        with self._write() as conn:
            leaf = self._locate(conn, mt, id)
            row = self._row(conn, leaf, id, lock=True)
            current = self._read_many(conn, mt, leaf, [id], names=list(many))
            changed_scalars = {n: v for n, v in scalars.items() if row[n] != v}
            changed_many = {
                n: ids for n, ids in many.items() if set(ids) != set(current[n].get(id, ()))
            }
            check_feedback(model, actor, changed_scalars, leaf.feedback_columns())
            self._check_links(
                EngineWrites(conn, self._engine_statements), mt, changed_scalars, changed_many
            )
            now = self._clock.now(after=row["updated"])
            writes = changed_scalars | stamps(
                actor,
                [*changed_scalars, *changed_many],
                always_update_timestamp=always_update_timestamp,
                now=now,
            )
            if writes or changed_many:
                assert leaf.table is not None
                if writes:
                    conn.execute(sa.update(leaf.table).where(leaf.table.c.id == id).values(writes))
                for name, ids in changed_many.items():
                    self._write_many(conn, leaf, name, id, ids)
                self._log(conn, "update", leaf.name, [id])
                row.update(writes)
            return self._records(conn, mt, leaf, [row])[0]

    def write_outcomes(
        self, writes: Sequence[OutcomeWrite], *, actor: Actor = "synchronizer"
    ) -> list[StoreError | None]:
        """Save each item as `update` would, all in one transaction (see `outcomes`)."""
        results: list[StoreError | None] = [None] * len(writes)
        items: list[CheckedOutcome] = []
        for index, w in enumerate(writes):
            try:
                items.append(self._checked_outcome(index, w, actor))
            except StoreError as exc:
                results[index] = exc
        if not items:
            return results
        if self._sqlite_statements is None:
            with self._write(failure=Unavailable) as conn:
                io = EngineOutcomeIO(
                    conn, EngineWrites(conn, self._engine_statements), self._objects
                )
                self._apply_outcomes(io, items, actor, results)
            return results
        with self._sqlite_write(Unavailable) as (sqlite_writes, cursor):
            io2 = SqliteOutcomeIO(
                cursor,
                sqlite_writes,
                self._sqlite_statements,
                self._engine.dialect,
                self._outcome_statements,
            )
            self._apply_outcomes(io2, items, actor, results)
        return results

    def _checked_outcome(self, index: int, w: OutcomeWrite, actor: Actor) -> CheckedOutcome:
        """The checks `update` makes before its transaction, on one item."""
        mt = self._model(w.model)
        _check_id(mt, w.id)
        _check_actor(actor)
        values = w.values
        if not isinstance(values, dict) and not isinstance(values, Mapping):
            raise InvalidArgument(f"{mt.name} values must be a mapping, got {values!r:.60}")
        if values.get("id") not in (None, w.id):
            raise InvalidArgument(f"{mt.name}.id cannot change (from {w.id} to {values['id']!r})")
        names = (mt.name, tuple(values))
        wanted = self._outcome_names.get(names)
        if wanted is None:
            wanted = self._column_names(mt, names[1])
            if len(self._outcome_names) < _NAMES_KEPT:
                # The engine writes a handful of column sets: each is worked out once.
                self._outcome_names[names] = wanted
        scalars, many = self._checked(mt, {k: v for k, v in values.items() if k in wanted})
        return CheckedOutcome(index, mt, w.id, scalars, many)

    def _apply_outcomes(
        self,
        io: OutcomeIO,
        items: list[CheckedOutcome],
        actor: Actor,
        results: list[StoreError | None],
    ) -> None:
        apply_outcomes(
            io,
            items,
            self._tables,
            actor=actor,
            clock=self._clock,
            check_links=self._check_links,
            results=results,
        )

    def delete(self, model: str, id: int, *, actor: Actor = "user") -> None:
        """Soft delete, cascading through required links to live, unprotected objects."""
        mt = self._model(model)
        _check_id(mt, id)
        _check_actor(actor)
        with self._write() as conn:
            leaf = self._locate(conn, mt, id)
            row = self._row(conn, leaf, id, lock=True)
            if row["deleted"] or row["write_protect"]:
                return
            self._soft_delete(conn, leaf, [id])
            todo = [(leaf, id)]
            while todo:
                target, target_id = todo.pop()
                for source, column in self._cascades[target.name]:
                    assert source.table is not None
                    t = source.table
                    ids = list(
                        conn.execute(
                            sa.select(t.c.id).where(
                                t.c[column] == target_id,
                                t.c.deleted.is_(False),
                                t.c.write_protect.is_(False),
                            )
                        ).scalars()
                    )
                    if ids:
                        self._soft_delete(conn, source, ids)
                        todo.extend((source, i) for i in ids)

    def purge(self, model: str, id: int) -> None:
        mt = self._model(model)
        _check_id(mt, id)
        with self._write() as conn:
            leaf = self._locate(conn, mt, id)
            assert leaf.table is not None
            conn.execute(sa.delete(leaf.table).where(leaf.table.c.id == id))
            for assoc in leaf.many.values():
                conn.execute(sa.delete(assoc.table).where(assoc.table.c.src_id == id))
            # Ids are unique across models, so any association row pointing at `id` points here.
            for table in self._associations:
                conn.execute(sa.delete(table).where(table.c.dst_id == id))
            conn.execute(sa.delete(self._objects).where(self._objects.c.id == id))
            self._log(conn, "delete", leaf.name, [id])

    def pending(
        self, model: str, query: PendingQuery, *, columns: Sequence[str] | None = None
    ) -> list[Record]:
        mt = self._model(model)
        if not isinstance(query, PendingQuery):
            raise InvalidArgument(f"unknown pending query {query!r}")
        where: Where = lambda table: [pending_predicate(table, query)]  # noqa: E731
        return self._select(mt, where, ("id",), None, columns=columns)

    def changes(self, after: int = 0, *, timeout: float | None = None) -> list[Change]:
        deadline = None if timeout is None else time.monotonic() + timeout
        if deadline is not None and self._watch is not None:
            self._watch.start()  # before the first read, so no commit falls between the two
        while True:
            with self._committed:
                seen = self._commit_count
            found = self._read_changes(after)
            if found or deadline is None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            watched = self._watch is not None and self._watch.live
            with self._committed:
                self._committed.wait_for(
                    lambda: self._commit_count != seen,
                    timeout=min(remaining, WATCHED_SECONDS if watched else POLL_SECONDS),
                )

    def latest_change(self) -> int:
        """The newest change's `seq`: one read of the primary key's last entry."""
        with self._read() as conn:
            found = conn.execute(self._latest_stmt).scalar()
        return int(found) if found is not None else 0

    def forget_changes(self, age_seconds: float) -> int:
        """Delete change-log entries older than `age_seconds`, `FORGET_BATCH` a transaction.

        Each batch reads the oldest `FORGET_BATCH` entries (the primary key's first ones, so
        a batch costs the same however long the log is) and deletes the run of them, from
        the oldest, that is older than the window: only a prefix of the log goes, and never
        the newest entry, which is what readers rely on (`Store.changes`). An entry younger
        than the window stops the pruning, even if later ones are older (entries of several
        processes' clocks on SQLite): they go once it has aged too. Returns within about
        `FORGET_SECONDS`; what is left goes on the next call.
        """
        if isinstance(age_seconds, bool) or not isinstance(age_seconds, (int, float)):
            raise InvalidArgument(
                f"change-log age must be a number of seconds, got {age_seconds!r}"
            )
        if not age_seconds >= 0:
            raise InvalidArgument(f"change-log age must be 0 or more seconds, got {age_seconds!r}")
        deadline = time.monotonic() + FORGET_SECONDS
        forgotten = 0
        while True:
            deleted, more = self._forget_batch(float(age_seconds))
            forgotten += deleted
            if not more or time.monotonic() >= deadline:
                return forgotten

    def _forget_batch(self, age_seconds: float) -> tuple[int, bool]:
        """One batch of `forget_changes`: (entries deleted, whether older ones may be left)."""
        c = self._changes.c
        with self._write() as conn:
            newest = conn.execute(self._latest_stmt).scalar()
            rows = conn.execute(self._oldest_stmt, {"age": age_seconds, "n": FORGET_BATCH}).all()
            bound = None
            for seq, old in rows:
                if not old or seq == newest:
                    break
                bound = seq
            if bound is None:
                return 0, False
            deleted = conn.execute(sa.delete(self._changes).where(c.seq <= bound)).rowcount
        # A full batch, all of it old: older entries may follow.
        return int(deleted), bound == rows[-1][0] and len(rows) == FORGET_BATCH

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        with self._write_lock:
            if self._raw_writer is not None:
                self._raw_writer[2].close()
                self._raw_writer[0].close()
                self._raw_writer = None
        self._engine.dispose()

    # --- helpers ------------------------------------------------------------------------

    def _model(self, name: str) -> ModelTable:
        mt = self._tables.get(name) if isinstance(name, str) else None
        if mt is None:
            raise InvalidArgument(f"unknown model {name!r}")
        return mt

    def _locate(self, conn: sa.Connection, mt: ModelTable, id: int) -> ModelTable:
        """The model whose table holds object `id`, if it is `mt` or derived from it."""
        name = conn.execute(self._locate_stmt, {"oid": id}).scalar_one_or_none()
        leaf = self._tables.get(name) if name is not None else None
        if leaf is None or leaf not in mt.concrete:
            raise NotFound(f"{mt.name} {id} does not exist")
        return leaf

    def _row(
        self, conn: sa.Connection, leaf: ModelTable, id: int, *, lock: bool = False
    ) -> dict[str, Any]:
        stmts = self._locked_row_stmts if lock else self._row_stmts
        found = conn.execute(stmts[leaf.name], {"oid": id}).one_or_none()
        if found is None:
            raise NotFound(f"{leaf.name} {id} does not exist")
        return dict(found._mapping)

    def _checked(self, mt: ModelTable, values: Mapping[str, Any]) -> _Checked:
        """Values split into columns and many-to-many id lists, each checked; read-only ones dropped."""
        scalars: dict[str, Any] = {}
        many: dict[str, list[int]] = {}
        for key, value in values.items():
            if key in _READ_ONLY:
                continue
            if key in mt.many:
                many[key] = _id_list(mt, key, value)
            elif key in mt.columns:
                scalars[key] = check_value(mt.columns[key], mt.name, value)
            else:
                raise InvalidArgument(f"{mt.name} has no field {key!r}{_hint(mt, key)}")
        return scalars, many

    def _column_names(self, mt: ModelTable, update_fields: Sequence[str] | str) -> set[str]:
        names = update_fields.split(",") if isinstance(update_fields, str) else list(update_fields)
        out: set[str] = set()
        for raw in names:
            name = raw.strip()
            for candidate in (name, f"{name}_id", f"{name}_ids"):
                if mt.accepts(candidate) or candidate in _READ_ONLY:
                    out.add(candidate)
                    break
            else:
                raise InvalidArgument(f"{mt.name} has no field {name!r} (in update_fields)")
        return out

    def _check_links(
        self,
        writes: LinkReads,
        mt: ModelTable,
        scalars: Mapping[str, Any],
        many: Mapping[str, list[int]],
    ) -> None:
        for name, value in scalars.items():
            peer = mt.columns[name].link_peer
            if peer is not None and value is not None:
                self._check_target(writes, mt, name, peer, value)
        for name, ids in many.items():
            for target in ids:
                self._check_target(writes, mt, name, mt.many[name].peer, target)

    def _check_target(
        self, writes: LinkReads, mt: ModelTable, field: str, peer: str, target: int
    ) -> None:
        peer_mt = self._tables.get(peer)
        if peer_mt is None:
            return  # the peer model is not in this schema, so there is nothing to check against
        name = writes.locate(target)
        leaf = self._tables.get(name) if name is not None else None
        if leaf is None or leaf not in peer_mt.concrete:
            raise InvalidArgument(
                f"{mt.name}.{field} = {target}: there is no {peer} with id {target}"
            )
        if writes.is_deleted(leaf, target) is not False:
            raise InvalidArgument(f"{mt.name}.{field} = {target}: {peer} {target} is deleted")

    def _write_many(
        self, conn: sa.Connection, mt: ModelTable, name: str, id: int, ids: list[int]
    ) -> None:
        table = mt.many[name].table
        conn.execute(sa.delete(table).where(table.c.src_id == id))
        if ids:
            conn.execute(sa.insert(table), [{"src_id": id, "dst_id": t} for t in sorted(set(ids))])

    def _read_many(
        self,
        conn: sa.Connection,
        view: ModelTable,
        leaf: ModelTable,
        ids: list[int],
        *,
        names: list[str] | None = None,
    ) -> dict[str, dict[int, list[int]]]:
        out: dict[str, dict[int, list[int]]] = {}
        for name in view.many if names is None else names:
            table = leaf.many[name].table
            found: dict[int, list[int]] = {}
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                rows = conn.execute(
                    sa.select(table.c.src_id, table.c.dst_id)
                    .where(table.c.src_id.in_(chunk))
                    .order_by(table.c.src_id, table.c.dst_id)
                )
                for src, dst in rows:
                    found.setdefault(src, []).append(dst)
            out[name] = found
        return out

    def _records(
        self, conn: sa.Connection, view: ModelTable, leaf: ModelTable, rows: list[dict[str, Any]]
    ) -> list[Record]:
        """Rows of `leaf`'s table as records of `view` (its own columns, plus `<x>_ids` lists)."""
        records = [{"id": r["id"], **{n: r[n] for n in view.columns}} for r in rows]
        return self._with_lists(conn, view, leaf, records, list(view.many))

    def _with_lists(
        self,
        conn: sa.Connection,
        view: ModelTable,
        leaf: ModelTable,
        records: list[Record],
        lists: list[str],
    ) -> list[Record]:
        """`records` (of `leaf`'s table) with the `<x>_ids` lists named in `lists` added."""
        if lists:
            many = self._read_many(conn, view, leaf, [r["id"] for r in records], names=lists)
            for record in records:
                for name in lists:
                    record[name] = many[name].get(record["id"], [])
        return records

    def _select(
        self,
        mt: ModelTable,
        where: Where,
        order_by: Sequence[str],
        limit: int | None,
        *,
        columns: Sequence[str] | None = None,
    ) -> list[Record]:
        if columns is None:
            selected, lists = list(mt.columns), list(mt.many)
        else:
            wanted = set(columns)
            selected = [n for n in mt.columns if n in wanted]
            lists = [n for n in mt.many if n in wanted]
        keys = ["id", *selected]
        results: list[Record] = []
        with self._read() as conn:
            for leaf in mt.concrete:
                assert leaf.table is not None
                t = leaf.table
                stmt = sa.select(*(t.c[n] for n in keys)).where(*where(t))
                stmt = stmt.order_by(*ordering(mt, t, order_by))
                if limit is not None:
                    stmt = stmt.limit(limit)
                # Rows zipped with the names: a pass reads every pending row, and going through
                # each row's mapping cost more than the query.
                records: list[Record] = [dict(zip(keys, row)) for row in conn.execute(stmt)]
                results.extend(self._with_lists(conn, mt, leaf, records, lists))
        if len(mt.concrete) > 1:
            results = _merge(results, order_by)
            if limit is not None:
                results = results[:limit]
        return results

    def _soft_delete(self, conn: sa.Connection, mt: ModelTable, ids: list[int]) -> None:
        assert mt.table is not None
        conn.execute(
            sa.update(mt.table)
            .where(mt.table.c.id.in_(ids))
            .values(deleted=True, enacted=None, policed=None)
        )
        self._log(conn, "delete", mt.name, ids)

    def _read_changes(self, after: int) -> list[Change]:
        c = self._changes.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(c.seq, c.kind, c.model, c.object_id).where(c.seq > after).order_by(c.seq)
            )
            return [Change(seq, kind, model, object_id) for seq, kind, model, object_id in rows]


def _check_id(mt: ModelTable, id: int) -> None:
    if isinstance(id, bool) or not isinstance(id, int):
        raise InvalidArgument(f"{mt.name} id must be an integer, got {id!r:.60}")
    # Ids are positive int32 (the API's type); anything else names no object, and a value
    # past the database's integer would overflow inside the driver.
    if not 1 <= id <= INT32[1]:
        raise NotFound(f"{mt.name} {id} does not exist")


def _check_actor(actor: str) -> None:
    if actor not in _ACTORS:
        raise InvalidArgument(f"unknown actor {actor!r}; use one of {sorted(_ACTORS)}")


def _id_list(mt: ModelTable, key: str, value: Any) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"{mt.name}.{key} must be a list of ids, got {value!r:.60}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= INT32[1]:
            raise InvalidArgument(
                f"{mt.name}.{key} must hold positive 32-bit integer ids, got {item!r:.60}"
            )
    return sorted(set(value))


def _hint(mt: ModelTable, key: str) -> str:
    if f"{key}_id" in mt.columns:
        return f"; a link is written as '{key}_id'"
    if f"{key}_ids" in mt.many:
        return f"; a many-to-many link is written as '{key}_ids'"
    return ""


def _merge(records: list[Record], order_by: Sequence[str]) -> list[Record]:
    """Rows of several tables in `order_by` order, NULL as the largest value (as in `ordering`)."""
    for name, descending in reversed(sort_key_names(order_by)):
        present = [r for r in records if r[name] is not None]
        absent = [r for r in records if r[name] is None]
        present.sort(key=lambda r: r[name], reverse=descending)
        records = absent + present if descending else present + absent
    return records


def _failure(exc: BaseException, otherwise: type[StoreError]) -> type[StoreError]:
    """The error to raise for a failed statement: `Unavailable` when the database itself is
    down or unreachable (callers wait for it, the core answers UNAVAILABLE), else `otherwise`."""
    return Unavailable if store_is_down(exc) else otherwise


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return _first_line(original if original is not None else exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _rollback(cursor: Any) -> None:
    try:
        cursor.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction left to roll back (SQLite ends some on error by itself)
