"""Wake-ups on commits made by other processes, so a waiting reader needs no short poll.

A `SqlStore` wakes its own waiters when one of its writes commits; a commit by another
process is seen here and reported through `on_commit`:

- PostgreSQL: a statement trigger on the change log calls `pg_notify` in the writing
  transaction, so the notification is sent when (and only if) it commits; a thread listens on
  a connection of its own (`LISTEN`), waiting at most `TICK_SECONDS` at a time.
- SQLite (a file): the kernel's inotify reports writes to the database and its `-wal` file;
  a thread reads the events, waiting at most `TICK_SECONDS` at a time.

`live` says whether the source is working; while it is not (no inotify on this system, the
listen connection dropped and is being re-opened) the store falls back to polling the change
log every `POLL_SECONDS`. A source that comes back reports a commit, as it may have missed one.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

TICK_SECONDS = 1.0  # longest wait on a source before the thread checks it should stop
# After a wake-up the thread rests this long, so a burst of commits (this process's own among
# them: the kernel and the server report those too) wakes it at most 100 times a second, not
# once per commit: that cost this process's writes up to a third of their speed (GIL contention).
# A commit in the rest is reported at its end, so at most this much later.
COALESCE_SECONDS = 0.01
RETRY_SECONDS = 1.0  # pause before re-opening a dropped listen connection
CONNECT_SECONDS = 5  # limit on opening the listen connection
_FUNCTION = "xsync_notify_change"
_log = logging.getLogger("xsync.store.wakeup")


def pg_channel(schema: str) -> str:
    """The notification channel of the store in `schema` (an identifier: at most 63 bytes)."""
    return ("xsync_" + schema)[:63]


def install_pg_trigger(conn: sa.Connection, change_table: str) -> None:
    """Make every insert into the change log notify the store's channel on commit.

    Runs in the store's set-up transaction; the function and trigger live in the store's
    schema, and the channel is named after it, so stores in other schemas are not woken.
    """
    conn.execute(
        sa.text(
            f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN PERFORM pg_notify(left('xsync_' || TG_TABLE_SCHEMA, 63), ''); "
            "RETURN NULL; END $$"
        )
    )
    # Created once: creating a trigger locks the change log against the runners already writing.
    exists = conn.execute(
        sa.text("SELECT 1 FROM pg_trigger WHERE tgname = :name AND tgrelid = to_regclass(:table)"),
        {"name": _FUNCTION, "table": change_table},
    ).first()
    if exists is None:
        conn.execute(
            sa.text(
                f"CREATE TRIGGER {_FUNCTION} AFTER INSERT ON {change_table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
            )
        )


class CommitWatch:
    """A thread that calls `on_commit` whenever another process may have committed."""

    def __init__(self, on_commit: Callable[[], None]) -> None:
        self._on_commit = on_commit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # `close` writes to this pipe, so a thread waiting on its source stops at once.
        self._stop_r, self._stop_w = -1, -1
        self.live = False

    def start(self) -> None:
        """Start watching (once); returns when the watch is set up or known not to work."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            ready = threading.Event()
            self._stop_r, self._stop_w = os.pipe()
            self._thread = threading.Thread(
                target=self._main, args=(ready,), name=f"xsync-{type(self).__name__}", daemon=True
            )
            self._thread.start()
        ready.wait(CONNECT_SECONDS + 1)

    def close(self) -> None:
        """Stop the thread; it is gone on return unless it is opening a connection."""
        with self._lock:
            self._stop.set()
            thread = self._thread
            if self._stop_w >= 0:
                os.write(self._stop_w, b"x")
        if thread is not None and thread is not threading.current_thread():
            thread.join(CONNECT_SECONDS + 1)
        self.live = False

    def _main(self, ready: threading.Event) -> None:
        try:
            self._run(ready)
        finally:
            self.live = False
            ready.set()
            with self._lock:  # the thread owns the pipe: `close` writes to it only while open
                os.close(self._stop_r)
                os.close(self._stop_w)
                self._stop_r, self._stop_w = -1, -1

    def _readable(self, fd: int) -> bool:
        """Wait up to `TICK_SECONDS` for `fd` to be readable; False once `close` is called."""
        ready, _, _ = select.select([fd, self._stop_r], [], [], TICK_SECONDS)
        return fd in ready and not self._stop.is_set()

    def _run(self, ready: threading.Event) -> None:
        raise NotImplementedError


class WalWatch(CommitWatch):
    """inotify on the directory of a SQLite file, for writes to the file or its `-wal`."""

    def __init__(self, path: Path, on_commit: Callable[[], None]) -> None:
        super().__init__(on_commit)
        self._names = {path.name, path.name + "-wal"}
        self._directory = path.parent

    def _run(self, ready: threading.Event) -> None:
        watch: Any = None
        try:
            from inotify_simple import INotify, flags  # type: ignore[import-untyped]

            watch = INotify()
            # The directory, not the files: the -wal file comes and goes with connections.
            watch.add_watch(str(self._directory), flags.MODIFY | flags.CREATE | flags.MOVED_TO)
        except (ImportError, OSError) as exc:
            if watch is not None:
                watch.close()
            _log.warning(
                "no inotify watch on %s (%s): changes by other processes are polled every 0.1 s",
                self._directory,
                exc,
            )
            return
        self.live = True
        ready.set()
        try:
            while not self._stop.is_set():
                if self._readable(watch.fileno()):
                    events = watch.read(timeout=0)
                    if any(event.name in self._names for event in events):
                        self._on_commit()
                        self._stop.wait(COALESCE_SECONDS)
        except OSError:
            pass
        finally:
            self.live = False
            watch.close()


class PgListen(CommitWatch):
    """`LISTEN` on the store's channel, on a connection of its own, re-opened if it drops."""

    def __init__(self, url: sa.URL, on_commit: Callable[[], None]) -> None:
        super().__init__(on_commit)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _run(self, ready: threading.Event) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=CONNECT_SECONDS,
                    application_name="xsync-listen",
                ) as conn:
                    self._listen(conn, ready)
            except psycopg.Error as exc:
                if self.live or not ready.is_set():
                    _log.warning(
                        "LISTEN connection lost (%s): polling the change log every 0.1 s until"
                        " it is back",
                        (str(exc).strip().splitlines() or [type(exc).__name__])[0],
                    )
            was_live, self.live = self.live, False
            ready.set()
            if was_live:
                self._on_commit()  # waiters go back to polling at once
            self._stop.wait(RETRY_SECONDS)

    def _listen(self, conn: Any, ready: threading.Event) -> None:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        channel = pg_channel(schema).replace('"', '""')
        conn.execute(f'LISTEN "{channel}"')
        self.live = True
        ready.set()
        self._on_commit()  # a commit may have come while the connection was down
        pgconn = conn.pgconn  # libpq's own calls: read what arrived, then take the notifications
        while not self._stop.is_set():
            if self._readable(pgconn.socket):
                pgconn.consume_input()  # raises OperationalError when the connection is gone
                notified = False
                while pgconn.notifies() is not None:
                    notified = True
                if notified:
                    self._on_commit()
                    self._stop.wait(COALESCE_SECONDS)


def commit_watch(url: sa.URL, on_commit: Callable[[], None]) -> CommitWatch | None:
    """The watch for a store at `url`, or None when no other process can write to it."""
    if url.get_backend_name() == "postgresql":
        return PgListen(url, on_commit)
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        return WalWatch(Path(os.path.abspath(database)), on_commit)
    return None
