"""The store served over gRPC: a real server on a loopback port, over SQLite and PostgreSQL.

The `RemoteStore` must behave like the store it fronts, so most tests compare the two.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from store_support import SHOP, schema_from_text, store_url  # noqa: F401 - store_url is a fixture
from xprotogen.schema import Schema
from xsync.grpc.client import RemoteStore
from xsync.grpc.protocol import protocol_for
from xsync.core_cli import run_core
from xsync.grpc.server import CoreServer, serve
from xsync.store import (
    InvalidArgument,
    NotFound,
    PendingQuery,
    PermissionDenied,
    SqlStore,
    StoreError,
    Unauthenticated,
    open_store,
)

USER, PASSWORD = "admin@example.com", "s3cret"


class Core:
    """A store, the server in front of it, and a way to make clients."""

    def __init__(self, url: str, schema: Schema) -> None:
        self.url = url
        self.schema = schema
        self.store: SqlStore = open_store(url, schema)
        self.server: CoreServer = serve(
            self.store, schema, listen="127.0.0.1:0", username=USER, password=PASSWORD
        )
        self.clients: list[RemoteStore] = []

    def client(self, *, username: str = USER, password: str = PASSWORD) -> RemoteStore:
        client = RemoteStore(
            self.server.endpoint, self.schema, username=username, password=password
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.server.stop(0)
        self.store.close()


@pytest.fixture
def core(store_url: str, tmp_path: Path) -> Iterator[Core]:  # noqa: F811
    running = Core(store_url, schema_from_text(tmp_path, SHOP))
    yield running
    running.close()


def make_shop(remote: RemoteStore, name: str = "corner", **values: Any) -> dict[str, Any]:
    return remote.create("Shop", {"name": name, **values})


def raw_call(
    core: Core,
    method: str,
    request: Any,
    reply: type,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> Any:
    """Call the server directly, bypassing the client's own checks."""
    with grpc.insecure_channel(core.server.endpoint) as channel:
        call = channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply.FromString,
        )
        return call(
            request,
            metadata=(
                metadata if metadata is not None else (("username", USER), ("password", PASSWORD))
            ),
            timeout=10,
        )


# --- reading and writing every field kind ------------------------------------------------------


def test_every_field_kind_round_trips_and_matches_the_store(core: Core) -> None:
    remote = core.client()
    shop = make_shop(
        remote,
        rank=0,
        big=2**40,
        ratio=0.1,
        open=False,
        opened_at=1700000000.25,
        visitors=2**32 - 1,
        label="",
    )
    tag_a, tag_b = remote.create("Tag", {"name": "a"}), remote.create("Tag", {"name": "b"})
    shelf = remote.create(
        "Shelf", {"name": "top", "shop_id": shop["id"], "tags_ids": [tag_b["id"], tag_a["id"]]}
    )

    got = remote.get("Shop", shop["id"])
    assert got == core.store.get("Shop", shop["id"]) == shop
    # Values equal to the proto3 defaults stay set; unset ones stay None.
    assert (got["rank"], got["open"], got["label"], got["big"]) == (0, False, "", 2**40)
    assert got["ratio"] == 0.1 and got["opened_at"] == 1700000000.25 and got["secret_state"] is None
    assert got["created"] is not None and got["leaf_model_name"] == "Shop"
    assert remote.get("Shelf", shelf["id"])["tags_ids"] == sorted([tag_a["id"], tag_b["id"]])
    assert remote.get("Shelf", shelf["id"]) == core.store.get("Shelf", shelf["id"])


def test_update_clears_fields_and_respects_update_fields(core: Core) -> None:
    remote = core.client()
    shop = make_shop(remote, rank=3, opened_at=5.0)
    remote.update(
        "Shop",
        shop["id"],
        {"opened_at": None, "rank": 4, "label": "x"},
        update_fields=["opened_at", "rank"],
    )
    got = core.store.get("Shop", shop["id"])
    assert (got["opened_at"], got["rank"], got["label"]) == (None, 4, "plain")
    shelf = remote.create(
        "Shelf",
        {
            "name": "s",
            "shop_id": shop["id"],
            "tags_ids": [remote.create("Tag", {"name": "t"})["id"]],
        },
    )
    assert remote.update("Shelf", shelf["id"], {"tags_ids": []})["tags_ids"] == []


def test_query_filters_excludes_order_and_limit_match_the_store(core: Core) -> None:
    remote = core.client()
    for i in range(6):
        make_shop(remote, f"s{i}", rank=i % 3)
    cases: list[dict[str, Any]] = [
        {"filters": {"rank": 1}},
        {"filters": {"rank__gte": 1}, "excludes": {"name": "s4"}, "order_by": ["-name"]},
        {"filters": {"name__in": ["s1", "s2"]}, "limit": 1},
        {"deleted": None},
    ]
    for case in cases:
        assert remote.query("Shop", **case) == core.store.query("Shop", **case), case
    remote.delete("Shop", remote.query("Shop", filters={"name": "s0"})[0]["id"])
    assert [r["name"] for r in remote.query("Shop", deleted=True)] == ["s0"]
    assert (
        remote.get("Shop", core.store.query("Shop", deleted=True)[0]["id"], include_deleted=True)[
            "deleted"
        ]
        is True
    )


def test_pending_purge_version_and_model_names(core: Core) -> None:
    remote = core.client()
    shop = make_shop(remote)
    assert [r["id"] for r in remote.pending("Shop", PendingQuery.DIRTY_OBJECTS)] == [shop["id"]]
    assert remote.core_version() == core.store.core_version()
    assert remote.model_names() == core.store.model_names()
    remote.delete("Shop", shop["id"])
    assert [r["id"] for r in remote.pending("Shop", PendingQuery.DELETED_OBJECTS)] == [shop["id"]]
    remote.purge("Shop", shop["id"])
    with pytest.raises(NotFound):
        remote.get("Shop", shop["id"], include_deleted=True)


# --- bad requests: a status naming the field, and nothing written --------------------------


def test_bad_requests_name_the_field_and_write_nothing(core: Core) -> None:
    remote = core.client()
    shop = make_shop(remote)
    before = core.store.changes(0)
    with pytest.raises(InvalidArgument, match="'colour'"):
        remote.create("Shop", {"name": "x", "colour": "red"})
    with pytest.raises(InvalidArgument, match="Shop.rank"):
        remote.create("Shop", {"name": "x", "rank": "high"})
    with pytest.raises(InvalidArgument, match="Shop.name"):
        remote.create("Shop", {"rank": 1})
    with pytest.raises(InvalidArgument, match="Shelf.shop_id"):
        remote.create("Shelf", {"name": "s", "shop_id": 99999})
    with pytest.raises(InvalidArgument, match="unknown model"):
        remote.get("Warehouse", 1)
    with pytest.raises(NotFound, match="Shop 4242"):
        remote.get("Shop", 4242)
    with pytest.raises(NotFound):
        remote.update("Shop", 4242, {"rank": 1})
    with pytest.raises(PermissionDenied, match="secret_state"):
        remote.update("Shop", shop["id"], {"secret_state": "x"})
    with pytest.raises(InvalidArgument, match="'colour'"):
        remote.query("Shop", filters={"colour": "red"})
    with pytest.raises(InvalidArgument, match="shelves_ids"):
        remote.update("Shop", shop["id"], {"shelves_ids": [1]})
    assert core.store.changes(0) == before
    assert len(core.store.query("Shop")) == 1


def test_raw_requests_the_client_would_refuse_get_invalid_argument(core: Core) -> None:
    protocol = protocol_for(core.schema)
    api = protocol.models["Shop"]
    shop = make_shop(core.client())

    update = api.update_request()
    update.item.id = shop["id"]
    update.fields.append("colour")
    with pytest.raises(grpc.RpcError) as raised:
        raw_call(core, api.path("Update"), update, api.message)
    assert (
        raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        and "colour" in raised.value.details()
    )

    query = protocol.common("Query")()
    query.filters.add(field="rank", op="LIKE", value_json="1")
    with pytest.raises(grpc.RpcError) as raised:
        raw_call(core, api.path("Filter"), query, api.plural)
    assert (
        raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "LIKE" in raised.value.details()
    )

    query = protocol.common("Query")()
    query.filters.add(field="rank", value_json=json.dumps("not a number"))
    with pytest.raises(grpc.RpcError) as raised:
        raw_call(core, api.path("Filter"), query, api.plural)
    assert (
        raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rank" in raised.value.details()
    )

    with pytest.raises(grpc.RpcError) as raised:
        raw_call(
            core,
            api.path("Create"),
            api.message(name="x"),
            api.message,
            ((("username", USER), ("password", PASSWORD), ("actor", "root"))),
        )
    assert (
        raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        and "actor" in raised.value.details()
    )


# --- credentials -----------------------------------------------------------------------------


def test_wrong_or_missing_credentials_are_unauthenticated(core: Core) -> None:
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        core.client(password="guess").get("Shop", 1)
    with pytest.raises(Unauthenticated):
        core.client(username="intruder").model_names()
    with pytest.raises(Unauthenticated):
        core.client(password="guess").changes(0)
    protocol = protocol_for(core.schema)
    with pytest.raises(grpc.RpcError) as raised:
        raw_call(core, protocol.version_path(), protocol.empty(), protocol.common("Version"), ())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    reply = raw_call(
        core,
        protocol.version_path(),
        protocol.empty(),
        protocol.common("Version"),
        (("authorization", f"Basic {token}"),),
    )
    assert list(reply.models) == core.store.model_names()


# --- several writers ---------------------------------------------------------------------------


def test_user_update_during_synchronizer_save_is_kept_and_object_is_pending_again(
    core: Core,
) -> None:
    user, sync = core.client(), core.client()
    shop = make_shop(user)
    seen = sync.get("Shop", shop["id"])
    user.update("Shop", shop["id"], {"label": "changed by user"})
    sync.update(
        "Shop",
        shop["id"],
        {"secret_state": "synced", "backend_status": "OK", "enacted": seen["updated"]},
        actor="synchronizer",
        update_fields=["secret_state", "backend_status", "enacted"],
    )
    final = core.store.get("Shop", shop["id"])
    assert (final["label"], final["secret_state"], final["backend_status"]) == (
        "changed by user",
        "synced",
        "OK",
    )
    assert shop["id"] in [r["id"] for r in core.store.pending("Shop", PendingQuery.DIRTY_OBJECTS)]


def test_concurrent_clients_lose_no_update(core: Core) -> None:
    shop_ids = [make_shop(core.client(), f"s{i}")["id"] for i in range(4)]
    rounds = 15
    errors: list[BaseException] = []

    def user_writes(remote: RemoteStore, shop_id: int) -> None:
        for n in range(rounds):
            remote.update("Shop", shop_id, {"rank": n})

    def sync_writes(remote: RemoteStore, shop_id: int) -> None:
        for n in range(rounds):
            remote.update(
                "Shop",
                shop_id,
                {"secret_state": f"v{n}"},
                actor="synchronizer",
                update_fields=["secret_state"],
            )

    def guarded(target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=guarded, args=(fn, core.client(), shop_id))
        for shop_id in shop_ids
        for fn in (user_writes, sync_writes)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for shop_id in shop_ids:
        final = core.store.get("Shop", shop_id)
        assert (final["rank"], final["secret_state"]) == (rounds - 1, f"v{rounds - 1}")


def test_watch_delivers_every_change_once_in_commit_order(core: Core) -> None:
    watcher = core.client()
    stream = watcher.watch(after=0)
    received: list[Any] = []
    writers, per_writer = 4, 10
    expected = writers * per_writer * 2  # a create and an update each

    def consume() -> None:
        for change in stream:
            received.append(change)
            if len(received) >= expected:
                break

    consumer = threading.Thread(target=consume)
    consumer.start()

    def write(remote: RemoteStore, w: int) -> None:
        for i in range(per_writer):
            created = make_shop(remote, f"w{w}-{i}")
            remote.update("Shop", created["id"], {"rank": i})

    threads = [threading.Thread(target=write, args=(core.client(), w)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    consumer.join(timeout=30)
    stream.close()  # type: ignore[attr-defined]
    assert len(received) == expected
    assert received == core.store.changes(0)
    assert [c.seq for c in received] == list(range(received[0].seq, received[0].seq + expected))
    assert watcher.changes(received[-3].seq, timeout=0.1) == received[-2:]
    assert watcher.changes(received[-1].seq, timeout=0.2) == []


# --- the data outlives the server -------------------------------------------------------------


def test_restart_on_the_same_database_file_keeps_the_data(tmp_path: Path) -> None:
    schema = schema_from_text(tmp_path, SHOP)
    url = f"sqlite:///{tmp_path / 'core.db'}"
    first = Core(url, schema)
    shop = make_shop(first.client(), rank=7)
    first.close()
    second = Core(url, schema)
    try:
        assert second.client().get("Shop", shop["id"]) == shop
        assert make_shop(second.client(), "next")["id"] > shop["id"]
    finally:
        second.close()


def test_core_command_fails_in_one_line_without_a_usable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_core([str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xsync core: ") and err.count("\n") == 1 and "missing.yaml" in err
    assert run_core(["--listen"]) == 2


def test_tls_server_accepts_a_client_that_trusts_its_certificate(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    schema = schema_from_text(tmp_path, SHOP)
    store = open_store(f"sqlite:///{tmp_path / 'tls.db'}", schema)
    server = serve(
        store,
        schema,
        listen="localhost:0",
        username=USER,
        password=PASSWORD,
        tls=(cert.read_bytes(), key.read_bytes()),
    )
    try:
        with RemoteStore(
            f"localhost:{server.port}",
            schema,
            username=USER,
            password=PASSWORD,
            tls=cert.read_bytes(),
        ) as remote:
            assert make_shop(remote)["name"] == "corner"
        with RemoteStore(
            f"localhost:{server.port}", schema, username=USER, password=PASSWORD, timeout=5
        ) as plain:
            with pytest.raises(StoreError):  # a plaintext client cannot talk to a TLS port
                plain.model_names()
    finally:
        server.stop(0)
        store.close()


def test_core_command_serves_the_config_models_until_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    models = tmp_path / "models"
    models.mkdir()
    (models / "shop.xproto").write_text(SHOP)
    config = tmp_path / "core.yaml"
    config.write_text(
        "name: shopcore\nmodels_dir: models\nstore: sqlite:///core.db\n"
        f"accessor: {{endpoint: 127.0.0.1:1, username: {USER}, password: {PASSWORD}}}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", "core", str(config), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "serving" in line, process.stderr.read() if process.stderr else line
        endpoint = line.rsplit(" ", 1)[1].strip()
        with RemoteStore(
            endpoint, schema_from_text(tmp_path, SHOP, core="auto"), username=USER, password=PASSWORD
        ) as remote:
            assert make_shop(remote)["id"] >= 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "core.db").exists()
