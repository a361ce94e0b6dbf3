"""Shared pieces of the store tests: a small schema with every column kind, and store fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from conftest import CORE_XPROTO, corpus_file
from pg import fresh_schema
from xprotogen.core_models import CoreMode
from xprotogen.loader import load_schema
from xprotogen.schema import Schema
from xsync.store import SqlStore, open_store

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.xproto"

SHOP = """
option app_label = "shop";

message Shop (XOSBase) {
    required string name = 1 [max_length = 20];
    optional int32 rank = 2 [default = 0];
    optional int64 big = 3;
    optional float ratio = 4 [default = 1.5];
    optional bool open = 5 [default = True];
    optional string opened_at = 6 [content_type = "date"];
    optional uint32 visitors = 7;
    optional string secret_state = 8 [feedback_state = True];
    optional string label = 9 [default = "plain"];
}

message Tag (XOSBase) {
    required string name = 1;
}

message Shelf (XOSBase) {
    required string name = 1;
    required manytoone shop->Shop:shelves = 2:1001;
    optional manytoone backup->Shop:backup_shelves = 3:1002;
    optional manytomany tags->Tag/Shelf_tags:shelves = 4:1003;
}

message Item (XOSBase) {
    required string name = 1;
    required manytoone shelf->Shelf:items = 2:1001;
}
"""

BACKENDS = ["sqlite", "postgresql"]


def schema_from_text(
    tmp_path: Path, text: str, name: str = "shop", *, core: CoreMode = "never"
) -> Schema:
    """The schema of `text` alone; `core="auto"` reads it as the runtime reads a config's models."""
    path = tmp_path / f"{name}.xproto"
    path.write_text(text)
    return load_schema([path], core=core)


def core_and_service() -> Schema:
    return load_schema([CORE_XPROTO, corpus_file("simpleexampleservice")])


OpenStore = Callable[[Schema], SqlStore]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty store: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        with fresh_schema() as url:
            yield url


@pytest.fixture
def open_at(store_url: str) -> Iterator[Callable[[Schema], SqlStore]]:
    """Open stores at the test's URL; every store opened is closed when the test ends."""
    opened: list[SqlStore] = []

    def _open(schema: Schema, core_version: str = "1.0") -> SqlStore:
        store = open_store(store_url, schema, core_version=core_version)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def shop(open_at: Callable[[Schema], SqlStore], tmp_path: Path) -> SqlStore:
    return open_at(schema_from_text(tmp_path, SHOP))


def ids(records: Sequence[dict[str, object]]) -> list[object]:
    return [r["id"] for r in records]
