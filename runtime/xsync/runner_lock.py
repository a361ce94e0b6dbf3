"""SQLite serves one runner: a second `xsync run` on the same database file is refused.

Several runners share a synchronizer's work through leases in a PostgreSQL store (see
`claims`); SQLite has no such leases, and two runners on it would each sync every object.
The guard is an exclusive `flock` on a file beside the database, taken at start and held for
the runner's life: the kernel drops it when the process ends, however it ends (SIGKILL
included), so a crashed runner never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class SecondRunner(Exception):
    """Another runner already holds the SQLite store; the message is the line to show."""


class RunnerLock:
    """The held lock; `release()` (or the process ending) gives it up."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None


def sqlite_file(url: str | None) -> Path | None:
    """The database file of a `sqlite:///path` URL; None for other stores and in-memory ones."""
    if not url:
        return None
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite" or rest in ("", "/", "/:memory:"):
        return None
    return Path(rest[1:] if rest.startswith("/") else rest)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".runner-lock")


def hold_single_runner(url: str | None) -> RunnerLock | None:
    """Take the runner lock of the SQLite store at `url` (None for any other store).

    Raises `SecondRunner` when another live process holds it.
    """
    database = sqlite_file(url)
    if database is None:
        return None
    path = lock_path(database)
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise SecondRunner(f"cannot create the runner lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise SecondRunner(
            f"{url}: another xsync run{who} already works on this SQLite store; SQLite serves "
            "one runner: use a PostgreSQL store (store: postgresql://...) to run several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return RunnerLock(path, handle)
