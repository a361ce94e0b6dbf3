"""`BulkCreate<Model>` and `RemoteStore.create_many`: many objects per call, over a real
server on a loopback port, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from store_support import SHOP, schema_from_text, store_url  # noqa: F401 - store_url is a fixture
from test_grpc import PASSWORD, Core, raw_call
from xprotogen.loader import load_schema
from xprotogen.targets.proto import build_proto_api, render_proto_files
from xsync.grpc.protocol import protocol_for
from xsync.store import InvalidArgument, PermissionDenied, Unauthenticated


@pytest.fixture
def core(store_url: str, tmp_path: Path) -> Iterator[Core]:  # noqa: F811
    running = Core(store_url, schema_from_text(tmp_path, SHOP))
    yield running
    running.close()


def test_create_many_over_grpc_matches_the_store_in_batches(core: Core) -> None:
    remote = core.client()
    tag = remote.create("Tag", {"name": "t"})
    home = remote.create("Shop", {"name": "home"})
    mark = core.store.changes()[-1].seq
    values = [
        {"name": f"s{i}", "shop_id": home["id"], "tags_ids": [tag["id"]] if i % 2 else []}
        for i in range(5)
    ]
    made = remote.create_many("Shelf", values, batch=2)  # three calls: 2 + 2 + 1
    assert [r["name"] for r in made] == [f"s{i}" for i in range(5)]
    for record in made:
        assert core.store.get("Shelf", record["id"]) == record
    assert [(c.kind, c.id) for c in core.store.changes(mark)] == [("create", r["id"]) for r in made]


def test_zero_false_and_empty_values_survive_a_bulk_create(core: Core) -> None:
    remote = core.client()
    (made,) = remote.create_many(
        "Shop", [{"name": "zero", "rank": 0, "ratio": 0.0, "open": False, "label": ""}]
    )
    assert (made["rank"], made["ratio"], made["open"], made["label"]) == (0, 0.0, False, "")
    assert made["big"] is None and made["opened_at"] is None
    assert core.store.get("Shop", made["id"]) == made


def test_a_bad_item_fails_its_batch_names_the_field_and_writes_nothing(core: Core) -> None:
    remote = core.client()
    before = core.store.changes()
    with pytest.raises(InvalidArgument, match="Shop.rank"):
        remote.create_many("Shop", [{"name": "ok"}, {"name": "x", "rank": "high"}])
    with pytest.raises(InvalidArgument, match="Shop.name"):
        remote.create_many("Shop", [{"name": "ok"}, {"rank": 1}])
    with pytest.raises(InvalidArgument, match="Shelf.shop_id"):
        remote.create_many("Shelf", [{"name": "s", "shop_id": 99999}])
    with pytest.raises(PermissionDenied, match="secret_state"):
        remote.create_many("Shop", [{"name": "ok"}, {"name": "x", "secret_state": "s"}])
    with pytest.raises(InvalidArgument, match="list of Shop values"):
        remote.create_many("Shop", {"name": "x"})  # type: ignore[arg-type]
    assert core.store.changes() == before
    assert remote.create_many("Shop", []) == []


def test_the_server_refuses_reverse_links_and_bad_credentials(core: Core) -> None:
    api = protocol_for(core.schema).models["Shop"]
    request: Any = api.plural()
    request.items.add(name="x", shelves_ids=[1])
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(core, api.path("BulkCreate"), request, api.plural)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Shop.shelves_ids is a reverse link" in str(caught.value.details())
    with pytest.raises(Unauthenticated):
        core.client(password=PASSWORD + "x").create_many("Shop", [{"name": "x"}])
    assert core.store.query("Shop") == []


def test_generated_proto_declares_bulk_create_without_name_clashes(tmp_path: Path) -> None:
    # "CreateMany" + "Foo" would be the name of "Create" + "ManyFoo"; "BulkCreate" cannot clash.
    path = tmp_path / "clash.xproto"
    path.write_text(
        'option app_label = "clash";\n'
        "message Foo (XOSBase) { required string name = 1; }\n"
        "message ManyFoo (XOSBase) { required string name = 1; }\n"
    )
    text = render_proto_files(build_proto_api(load_schema([path])))["clash.proto"]
    assert "rpc BulkCreateFoo(Foos) returns (Foos);" in text
    assert "rpc CreateManyFoo(ManyFoo) returns (ManyFoo);" in text
    rpcs = [line.split("(")[0] for line in text.splitlines() if line.strip().startswith("rpc ")]
    assert len(rpcs) == len(set(rpcs))
