"""`StreamCreate<Model>` and `RemoteStore.create_stream`: a loader's objects on one stream,
created in chunks, over a real server on a loopback port (SQLite file store)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store_support import SHOP, schema_from_text
from test_grpc import PASSWORD, USER, Core
from xsync.grpc import stream_create
from xsync.grpc.protocol import protocol_for
from xsync.store import InvalidArgument, SqlStore, Unauthenticated, open_store
from xsync.store.chunks import CreateStreamError, create_in_chunks


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    tmp = tmp_path_factory.mktemp("stream")
    running = Core(f"sqlite:///{tmp / 'store.db'}", schema_from_text(tmp, SHOP))
    yield running
    running.close()


@pytest.fixture(scope="module")
def embedded(core: Core, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('embedded') / 'e.db'}", core.schema)
    yield store
    store.close()


def shops(core: Core) -> list[str]:
    return [r["name"] for r in core.store.query("Shop")]


def fresh(core: Core) -> None:
    for record in core.store.query("Shop", deleted=None):
        core.store.purge("Shop", record["id"])


def test_objects_come_back_in_order_with_their_ids_and_stored_values(core: Core) -> None:
    fresh(core)
    remote = core.client()
    mark = core.store.changes()[-1].seq if core.store.changes() else 0
    made = remote.create_stream("Shop", ({"name": f"s{i}", "rank": i} for i in range(23)), chunk=5)
    assert [r["name"] for r in made] == [f"s{i}" for i in range(23)]
    assert [r["id"] for r in made] == sorted(r["id"] for r in made)
    for record in made:
        assert core.store.get("Shop", record["id"]) == record
    assert [(c.kind, c.id) for c in core.store.changes(mark)] == [("create", r["id"]) for r in made]
    assert remote.create_stream("Shop", iter(())) == []


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(0, 40),
    chunk=st.integers(1, 12),
    bad=st.one_of(st.none(), st.integers(0, 39)),
    kind=st.sampled_from(["type", "required", "feedback"]),
)
def test_a_stream_creates_exactly_the_items_before_the_first_bad_one(
    core: Core, count: int, chunk: int, bad: int | None, kind: str
) -> None:
    """Whatever the chunk size, and whether the client or the store refuses the item."""
    fresh(core)
    remote = core.client()
    values: list[dict[str, Any]] = [{"name": f"s{i}"} for i in range(count)]
    if bad is not None and bad < count:
        # "type": this side cannot send it; "required", "feedback": the core's store refuses it
        # (the core then cuts its chunk at it).
        wrong: dict[str, dict[str, Any]] = {
            "type": {"name": 5},
            "required": {"rank": 1},
            "feedback": {"name": "x", "secret_state": "s"},
        }
        values[bad] = wrong[kind]
    else:
        bad = None
    if bad is None:
        assert [r["name"] for r in remote.create_stream("Shop", values, chunk=chunk)] == [
            v["name"] for v in values
        ]
        return
    with pytest.raises(CreateStreamError) as caught:
        remote.create_stream("Shop", values, chunk=chunk)
    assert caught.value.index == bad
    assert [r["name"] for r in caught.value.created] == [f"s{i}" for i in range(bad)]
    assert shops(core) == [f"s{i}" for i in range(bad)]
    field = {"type": "Shop.name", "required": "Shop.name", "feedback": "secret_state"}[kind]
    assert f"item {bad}" in str(caught.value) and field in str(caught.value)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(0, 25),
    chunk=st.integers(1, 8),
    bad=st.lists(st.integers(0, 24), max_size=3),
)
def test_the_embedded_rule_and_the_core_agree(
    core: Core, embedded: SqlStore, count: int, chunk: int, bad: list[int]
) -> None:
    """`store.chunks.create_in_chunks` (the ORM's, embedded) and `StreamCreate` (the core's)
    create the same objects and stop at the same item with the same message."""
    values: list[dict[str, Any]] = [{"name": f"s{i}"} for i in range(count)]
    for index in bad:
        if index < count:
            values[index] = {"rank": index}  # no name: the store refuses it

    def remote() -> list[dict[str, Any]]:
        return core.client().create_stream("Shop", values, chunk=chunk)

    def local() -> list[dict[str, Any]]:
        return create_in_chunks(embedded, "Shop", values, actor="user", chunk=chunk)

    outcomes = []
    for store, create in ((core.store, remote), (embedded, local)):
        for record in store.query("Shop", deleted=None):
            store.purge("Shop", record["id"])
        try:
            made, error = [r["name"] for r in create()], None
        except CreateStreamError as exc:
            made, error = [r["name"] for r in exc.created], (exc.index, str(exc))
        assert [r["name"] for r in store.query("Shop")] == made
        outcomes.append((made, error))
    assert outcomes[0] == outcomes[1]


def test_a_bad_item_in_the_middle_names_index_and_field_and_reports_what_was_made(
    core: Core,
) -> None:
    fresh(core)
    remote = core.client()
    values = [{"name": f"s{i}"} for i in range(10)]
    values[7] = {"name": "way too long for the twenty"}
    with pytest.raises(CreateStreamError) as caught:
        remote.create_stream("Shop", values, chunk=3)
    message = str(caught.value)
    assert "Shop stream item 7" in message and "Shop.name" in message, message
    assert "items 0 to 6 were created (7 objects)" in message
    assert shops(core) == [f"s{i}" for i in range(7)]
    assert [r["id"] for r in caught.value.created] == [r["id"] for r in core.store.query("Shop")]


def test_an_error_of_the_loader_itself_stops_the_stream_there(core: Core) -> None:
    fresh(core)

    def rows() -> Iterator[dict[str, Any]]:
        yield {"name": "a"}
        yield {"name": "b"}
        raise OSError("line 3 of shops.csv is cut short")

    with pytest.raises(CreateStreamError, match="item 2: OSError: line 3 of shops.csv") as caught:
        core.client().create_stream("Shop", rows())
    assert isinstance(caught.value.__cause__, OSError)
    assert shops(core) == ["a", "b"] and len(caught.value.created) == 2


def test_auth_and_role_are_checked_before_anything_is_read(core: Core) -> None:
    fresh(core)
    read: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(5):
            read.append(i)
            yield {"name": f"s{i}"}

    with pytest.raises(Unauthenticated, match="refused the credentials"):
        core.client(password=PASSWORD + "x").create_stream("Shop", rows())
    with pytest.raises(CreateStreamError, match="metadata 'actor' must be one of"):
        core.client().create_stream("Shop", rows(), actor="nobody")  # type: ignore[arg-type]
    assert shops(core) == []
    with pytest.raises(InvalidArgument, match="chunk must be from 1"):
        core.client().create_stream("Shop", rows(), chunk=0)


def test_a_stranger_is_refused_on_the_raw_stream(core: Core) -> None:
    api = protocol_for(core.schema).models["Shop"]
    with grpc.insecure_channel(core.server.endpoint) as channel:
        call: Any = channel.stream_stream(
            api.path("StreamCreate"),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=api.plural.FromString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            list(call(iter([api.message(name="x")]), timeout=10))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A body that does not parse is named by its index.
        raw: Any = channel.stream_stream(
            api.path("StreamCreate"),
            request_serializer=lambda b: b,
            response_deserializer=api.plural.FromString,
        )
        metadata = (("username", USER), ("password", PASSWORD), ("chunk", "2"))
        fresh(core)
        good = api.message(name="ok").SerializeToString()
        with pytest.raises(grpc.RpcError) as caught:
            list(raw(iter([good, b"\xff\xff\xff"]), metadata=metadata, timeout=10))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Shop stream item 1: cannot parse" in str(caught.value.details())
        trailing: Any = caught.value.trailing_metadata()
        assert dict(trailing)["xsync-item"] == "1"
        assert shops(core) == ["ok"]


def test_a_cancelled_stream_leaves_whole_chunks_only(core: Core) -> None:
    """Cancelled while the loader hangs mid-chunk: the chunk read so far is never written.

    grpcio tells the server's handler of a cancel by ending its requests, as for a finished
    stream; the core's check can only be seen failing when the race goes one way (without
    it, one run in six wrote the open chunk once, none in sixteen another time), so the
    scenario runs four times."""
    remote = core.client()
    api = protocol_for(core.schema).models["Shop"]
    chunk = 4
    call: Any = remote._channel.stream_stream(
        api.path("StreamCreate"),
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=api.plural.FromString,
    )
    for _ in range(4):
        fresh(core)
        sent, release = threading.Event(), threading.Event()

        def rows() -> Iterator[Any]:
            for i in range(chunk * 2 + 2):  # two whole chunks and two objects of a third
                yield api.message(name=f"s{i}")
            sent.set()
            release.wait(30)  # the loader hangs; its caller gives up

        metadata = (*remote._credentials, ("chunk", str(chunk)))
        replies = call(rows(), metadata=metadata, timeout=20)
        got = [next(replies), next(replies)]
        assert sent.wait(10)
        replies.cancel()
        with pytest.raises(grpc.RpcError):
            next(replies)
        release.set()
        assert [len(r.items) for r in got] == [chunk, chunk]
        time.sleep(0.2)  # anything in flight on the server lands (or not) by now
        assert shops(core) == [f"s{i}" for i in range(chunk * 2)]


def test_a_huge_stream_is_written_as_it_goes_in_bounded_chunks(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server holds one chunk (in objects and in bytes), not the stream: objects are
    created while the stream is still sending."""
    fresh(core)
    seen_while_sending: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(3000):
            if i == 2500:
                seen_while_sending.append(len(core.store.query("Shop")))
            yield {"name": f"s{i}"}

    made = core.client().create_stream("Shop", rows(), chunk=200)
    assert [r["name"] for r in made] == [f"s{i}" for i in range(3000)]
    assert len({r["id"] for r in made}) == 3000
    # The transport buffers some messages (its flow-control window), the server one chunk.
    assert seen_while_sending[0] >= 200, seen_while_sending

    fresh(core)
    monkeypatch.setattr(stream_create, "CHUNK_BYTES", 1000)
    api = protocol_for(core.schema).models["Shop"]
    remote = core.client()
    call: Any = remote._channel.stream_stream(
        api.path("StreamCreate"),
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=api.plural.FromString,
    )
    label = "x" * 300  # about 310 bytes a message: four fill a chunk of 1,000 bytes
    requests = (api.message(name=f"b{i}", label=label) for i in range(10))
    replies = list(call(requests, metadata=remote._credentials, timeout=20))
    # The empty list before the last chunk is the core checking the client is still there.
    assert [len(r.items) for r in replies] == [4, 4, 0, 2]


def test_an_idle_stream_is_cut_off_and_its_open_chunk_dropped(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh(core)
    monkeypatch.setattr(stream_create, "IDLE", 0.3)

    def rows() -> Iterator[dict[str, Any]]:
        yield {"name": "a"}
        yield {"name": "b"}
        time.sleep(1.5)
        yield {"name": "c"}

    with pytest.raises(CreateStreamError, match="no object for 0.3 s after item 1"):
        core.client().create_stream("Shop", rows(), chunk=10)
    assert shops(core) == []


def test_the_generated_api_declares_the_stream(tmp_path: Path) -> None:
    from xprotogen.targets.proto import build_proto_api, render_proto_files

    text = render_proto_files(build_proto_api(schema_from_text(tmp_path, SHOP)))["shop.proto"]
    assert "rpc StreamCreateShop(stream Shop) returns (stream Shops);" in text
