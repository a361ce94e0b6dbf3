"""Which database errors mean the store itself is down, rather than a problem of one request.

A caller treats the two differently (`base.STORE_DOWN`): an engine stops its pass and waits
for the store instead of failing objects, and the core answers UNAVAILABLE, so a client
waits and retries. Anything not listed here stays a plain `StoreError`.
"""

from __future__ import annotations

import sqlite3
import sys

import sqlalchemy as sa

# PostgreSQL SQLSTATE classes and codes of a server that cannot serve us now: connection
# exceptions (08), insufficient resources (53: too many connections, disk full), and the
# server shutting down or starting (57P01-57P03).
_PG_DOWN_CLASSES = ("08", "53")
_PG_DOWN_CODES = frozenset({"57P01", "57P02", "57P03"})
# SQLite result codes of a file that cannot be used now: busy past the timeout, locked, an
# I/O error, the disk full, the file impossible to open.
_SQLITE_DOWN_CODES = frozenset({5, 6, 10, 13, 14})


def store_is_down(exc: BaseException) -> bool:
    """Whether `exc` (a SQLAlchemy or sqlite3 error) says the database cannot be used now."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True  # no connection free in the pool within its timeout
    driver_error: BaseException | None = exc
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True  # SQLAlchemy saw the connection drop under the statement
        driver_error = exc.orig
    if driver_error is None:
        return False
    if isinstance(driver_error, sqlite3.Error):
        code = getattr(driver_error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_DOWN_CODES
    state = getattr(driver_error, "sqlstate", None)
    if state:
        return state[:2] in _PG_DOWN_CLASSES or state in _PG_DOWN_CODES
    return _psycopg_connection_error(driver_error)


def _psycopg_connection_error(exc: BaseException) -> bool:
    """psycopg's errors with no SQLSTATE: libpq could not open, or lost, the connection."""
    psycopg = sys.modules.get("psycopg")  # not loaded: the error cannot be one of its own
    if psycopg is None:
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
