"""A PostgreSQL schema per test, on the server the tests share; dropped when the test ends.

`CI=true` makes a missing server a failure, elsewhere a skip.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator
from urllib.parse import quote

import pytest

from conftest import IN_CI

PG_URL = os.environ.get("XSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {PG_URL}: {str(exc).strip().splitlines()[0]}"
    return None


def require_postgres() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A store URL whose tables live in a new schema of their own."""
    import psycopg

    require_postgres()
    name = f"xs_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options={quote(f'-csearch_path={name}')}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
