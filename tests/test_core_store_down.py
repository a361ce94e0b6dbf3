"""A core whose own PostgreSQL database goes away answers UNAVAILABLE, on every kind of call
(a real core on loopback; a database of the test's own, cut off and then let back in)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest

from core_support import ACCOUNTS, account_book, credentials
from pg import PG_URL, require_postgres
from store_support import SHOP, schema_from_text
from xsync.grpc.client import RemoteStore
from xsync.grpc.protocol import protocol_for
from xsync.grpc.server import serve
from xsync.login_throttle import LoginThrottle
from xsync.store import open_store
from xsync.store.base import OutcomeWrite, Unavailable

CALL_SECONDS = 20  # every call below is bounded; a refused connection fails at once


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A database of this test's own: (its name, its URL); dropped when the test ends."""
    require_postgres()
    name = f"xs_down_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    parts = urlsplit(PG_URL)
    try:
        yield name, urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def cut_off(name: str) -> None:
    """The database goes away for its clients: new connections refused, open ones ended."""
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


def test_the_core_answers_unavailable_while_its_database_is_gone(
    tmp_path: Path, database: tuple[str, str]
) -> None:
    name, url = database
    schema = schema_from_text(tmp_path, SHOP)
    protocol = protocol_for(schema)
    store = open_store(url, schema)
    server = serve(
        store,
        schema,
        listen="127.0.0.1:0",
        accounts=account_book(),
        throttle=LoginThrottle(base=0.01, cap=0.05),
    )
    client = RemoteStore(
        server.endpoint,
        schema,
        username="hello-sync",
        password=ACCOUNTS["hello-sync"][0],
        timeout=CALL_SECONDS,
    )
    channel = grpc.insecure_channel(server.endpoint)
    try:
        shop = client.create("Shop", {"name": "before"})
        cut_off(name)

        # The calls a runner makes, each answered UNAVAILABLE, naming the core's store.
        calls: dict[str, Any] = {
            "create": lambda: client.create("Shop", {"name": "during"}),
            "bulk create": lambda: client.create_many("Shop", [{"name": "a"}, {"name": "b"}]),
            "outcomes": lambda: client.write_outcomes(
                [OutcomeWrite("Shop", shop["id"], {"backend_code": 1})]
            ),
            "update": lambda: client.update("Shop", shop["id"], {"rank": 2}),
            "get": lambda: client.get("Shop", shop["id"]),
            "latest change": client.latest_change,
        }
        for what, call in calls.items():
            with pytest.raises(Unavailable, match="the core's store is unavailable") as caught:
                call()
            assert f"core at {server.endpoint}" in str(caught.value), what

        # On the wire: the status code itself, for a model RPC and for the batched outcomes.
        api = protocol.models["Shop"]
        create = channel.unary_unary(
            api.path("Create"),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=api.message.FromString,
        )
        outcomes = channel.unary_unary("/xsync.Outcomes/Write")
        body = json.dumps({"writes": [["Shop", shop["id"], {"backend_code": 1}]]}).encode()
        metadata = (*credentials("hello-sync"), ("actor", "synchronizer"))
        for call, request in ((create, api.message(name="raw")), (outcomes, body)):
            with pytest.raises(grpc.RpcError) as raised:
                call(request, metadata=metadata, timeout=CALL_SECONDS)
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE, raised.value.details()

        # Let back in: the core serves again without a restart.
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert client.create("Shop", {"name": "after"})["name"] == "after"
        assert client.write_outcomes([OutcomeWrite("Shop", shop["id"], {"backend_code": 1})]) == [
            None
        ]
    finally:
        channel.close()
        client.close()
        server.stop(0)
        store.close()


def test_only_errors_of_an_unusable_database_count_as_the_store_down(tmp_path: Path) -> None:
    import sqlite3

    import psycopg
    import sqlalchemy as sa

    from xsync.store.failures import store_is_down

    with pytest.raises(sqlite3.Error) as unopenable:
        sqlite3.connect(tmp_path / "missing" / "x.db")
    assert store_is_down(unopenable.value)
    assert store_is_down(psycopg.errors.AdminShutdown("terminating connection"))
    assert store_is_down(psycopg.OperationalError("connection refused"))  # libpq's, no SQLSTATE
    assert store_is_down(sa.exc.TimeoutError("QueuePool limit reached"))
    # A problem of the request, not of the database.
    assert not store_is_down(psycopg.errors.UniqueViolation("duplicate key"))
    assert not store_is_down(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not store_is_down(ValueError("not a database error"))
