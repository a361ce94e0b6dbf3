"""Opening stores: URLs, SQLite settings, the in-memory store under threads, unreachable servers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from conftest import CORE_XPROTO, corpus_file, corpus_names
from store_support import SHOP, schema_from_text
from xprotogen.loader import load_schema
from xsync.store import InvalidArgument, StoreError, open_store


def test_sqlite_file_uses_wal(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}", schema_from_text(tmp_path, SHOP))
    store.create("Shop", {"name": "x"})
    store.close()
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "shop",
        "shelf",
        "item",
        "tag",
        "xsync_m2m_shelf_tags",
        "xsync_changes",
        "xsync_meta",
    } <= tables


def test_in_memory_store_is_shared_by_threads(tmp_path: Path) -> None:
    store = open_store("sqlite://", schema_from_text(tmp_path, SHOP))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                obj = store.create("Shop", {"name": f"{n}-{i}"})
                store.update("Shop", obj["id"], {"rank": i})
                store.query("Shop", filters={"rank__gte": 0})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(store.query("Shop")) == 80 and len(store.changes()) == 160
    store.close()


def test_unsupported_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="mysql://x"):
        open_store("mysql://x", schema_from_text(tmp_path, SHOP))


def test_unreachable_server_gives_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(
            "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2",
            schema_from_text(tmp_path, SHOP),
        )
    assert "cannot open the store" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", [n for n in corpus_names() if n != "core"])
def test_every_corpus_service_opens_alone_and_after_core(name: str) -> None:
    for paths in ([corpus_file(name)], [CORE_XPROTO, corpus_file(name)]):
        schema = load_schema(paths)
        store = open_store("sqlite://", schema)
        try:
            first = {m.name: m for m in reversed(schema.models)}  # a repeated name: the first wins
            expected = [
                n
                for n in dict.fromkeys(m.name for m in schema.models)
                if not first[n].options.flag("abstract")
            ]
            assert store.model_names() == expected
        finally:
            store.close()
