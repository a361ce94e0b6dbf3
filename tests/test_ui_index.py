"""The UI's in-memory index against the store it follows: pages, filters, counts and groups.

A real SQLite store with a few hundred hello objects in every state; Hypothesis picks the
filters, the sort and the page size, and the pages, read one after the other, must be
exactly the objects the store holds that match, in order, each once.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui_support import HELLO, MODELS, Hello
from xprotogen.loader import load_schema
from xsync import backend_state as bs
from xsync.backend_state import classify
from xsync.backoff import Register, RetryBook
from xsync.planner import LinkFields
from xsync.status import collect_status
from xsync.store import open_store
from xsync.ui.index import SEVERITY, SORTS, Filters, StatusIndex
from xsync.ui.state import summarize

NOW = time.time()
MESSAGES = ["cluster is full", "disk on fire", "no route to host"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hello, StatusIndex]]:
    schema = load_schema([HELLO], core="auto")
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('index') / 'h.db'}", schema)
    hello = Hello(store, schema)
    pick = random.Random(18)
    book = RetryBook()
    earth = hello.make("World", name="earth")
    countries = [hello.make("Country", name=f"c{i}", world_id=earth) for i in range(6)]
    store.update(
        "Country",
        countries[0],
        bs.failed(status="", register="{}", message="border closed", retries=book, now=NOW),
        actor="synchronizer",
    )
    values = []
    for n in range(300):
        country = pick.choice(countries)
        row: dict[str, Any] = {"message": f"Hi {n:03} {pick.choice('abc')}", "country_id": country}
        kind = pick.random()
        if kind < 0.3:
            failure = pick.choice(MESSAGES)
            row.update(bs.failed(status="", register="{}", message=failure, retries=book, now=NOW))
        elif kind < 0.4:
            row.update(bs.deferred(status="", register="{}", message="later"))
        elif kind < 0.7:
            row.update(bs.synced(register="{}", enacted=NOW + 3600, retries=book, now=NOW))
            row["enacted"] = NOW + 3600
        values.append(row)
    store.create_many("Greeting", values, actor="synchronizer")
    index = StatusIndex(store, MODELS, LinkFields.from_model_deps(hello.deps), MODELS)
    index.load(time.time())
    yield hello, index
    store.close()


def reference(hello: Hello, f: Filters) -> list[tuple[str, int]]:
    """What the filters select, read from the store (unordered)."""
    now = time.time()
    needle = (f.text or "").strip().casefold()
    found = []
    for model in MODELS:
        if f.model and model != f.model:
            continue
        for record in hello.store.query(model, deleted=None):
            s = summarize(model, record, now=now)
            message = "" if s.state == "ok" else s.message
            if f.state and s.state != f.state:
                continue
            if needle and not (
                needle in s.name.casefold() or needle == str(s.id) or needle in message.casefold()
            ):
                continue
            found.append((model, s.id))
    return found


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from([None, *MODELS]),
    state=st.sampled_from([None, *(s.value for s in SEVERITY)]),
    text=st.sampled_from([None, "hi 1", "FULL", "c3", "7", " disk "]),
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
    limit=st.integers(1, 120),
)
def test_pages_read_in_turn_are_every_matching_object_once_in_order(
    indexed: tuple[Hello, StatusIndex],
    model: str | None,
    state: str | None,
    text: str | None,
    sort: str,
    descending: bool,
    limit: int,
) -> None:
    hello, index = indexed
    f = Filters(model, state, text, sort, descending)
    first = index.page(f, 0, limit)
    rows = list(first.rows)
    while len(rows) < first.total:
        rows.extend(index.page(f, len(rows), limit).rows)
    keys = [(s.model, s.id) for s in rows]
    assert len(keys) == len(set(keys)) == first.total
    assert sorted(keys) == sorted(reference(hello, f))
    rank = {state: i for i, state in enumerate(SEVERITY)}
    primary = {
        "model": lambda s: MODELS.index(s.model),
        "id": lambda s: s.id,
        "name": lambda s: s.name.casefold(),
        "state": lambda s: rank[s.state],
        "message": lambda s: "" if s.state == "ok" else s.message.casefold(),
        "next_retry": lambda s: s.next_retry or 0.0,
    }[sort]
    values = [primary(s) for s in rows]
    assert values == sorted(values, reverse=descending)


def test_counts_and_groups_are_the_stores(indexed: tuple[Hello, StatusIndex]) -> None:
    hello, index = indexed
    now = time.time()
    for model, tally in index.counts().items():
        expected = {s.value: 0 for s in SEVERITY}
        for record in hello.store.query(model, deleted=None):
            expected[classify(record, now).state.value] += 1
        assert tally == expected, model
    report = collect_status(hello.store, MODELS, LinkFields.from_model_deps(hello.deps), now=now)
    failing, held = index.groups()
    assert [(g.model, g.message, g.ids) for g in failing] == [
        (g.model, g.message, g.ids) for g in report.failing
    ]
    assert [(g.model, g.root_model, len(g.held)) for g in held] == [
        (g.model, g.root_model, len(g.held)) for g in report.held_back
    ]
    assert held and failing  # the data holds both kinds


def test_an_update_moves_one_row_between_counts_and_a_due_backoff_is_read_again(
    tmp_path: Path,
) -> None:
    schema = load_schema([HELLO], core="auto")
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}", schema)
    hello = Hello(store, schema)
    earth = hello.make("World", name="earth")
    country = hello.make("Country", name="france", world_id=earth)
    bad = hello.make("Greeting", message="hello", country_id=country)
    index = StatusIndex(store, MODELS, LinkFields.from_model_deps(hello.deps), MODELS)
    index.load(NOW)
    assert index.counts()["Greeting"]["pending"] == 1
    retry_at = NOW + 30
    store.update(
        "Greeting",
        bad,
        bs.deferred(status="", register="{}", message="not yet")
        | {"backend_register": bs.register_json(Register(failures=0, next_run=retry_at))},
        actor="synchronizer",
    )
    summary = index.update("Greeting", bad, hello.row("Greeting", bad), NOW)
    assert summary is not None and summary.state == "backing_off"
    assert index.counts()["Greeting"] == {**zero(), "backing_off": 1}
    assert index.refresh_due(NOW + 10) == []  # not due yet
    [again] = index.refresh_due(retry_at + 1)
    assert again.state == "deferred" and index.counts()["Greeting"] == {**zero(), "deferred": 1}
    assert index.update("Greeting", bad, None, NOW) is None  # gone
    assert index.counts()["Greeting"] == zero()
    assert index.waited_by("Country", country) == []
    store.close()


def zero() -> dict[str, int]:
    return {s.value: 0 for s in SEVERITY}


def test_the_index_reads_a_postgresql_store_the_same_way() -> None:
    from pg import fresh_schema
    from ui_support import FULL_MESSAGE, build_scale_store

    schema = load_schema([HELLO], core="auto")
    with fresh_schema() as url:
        store = open_store(url, schema)
        try:
            world = build_scale_store(store, 1_000, chunk=500)
            hello = Hello(store, schema)
            index = StatusIndex(store, MODELS, LinkFields.from_model_deps(hello.deps), MODELS)
            index.load(time.time())
            assert index.counts() == world.counts
            found = index.page(Filters(text=FULL_MESSAGE), 0, 10)
            assert found.total == world.full and {s.state for s in found.rows} == {"error"}
            held = index.waited_by("Country", world.closed_country)
            assert len(held) == world.held and {s.state for s in held} == {"held"}
        finally:
            store.close()


def test_views_kept_in_order_through_changes_equal_views_computed_afresh(tmp_path: Path) -> None:
    schema = load_schema([HELLO], core="auto")
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}", schema)
    hello = Hello(store, schema)
    pick = random.Random(7)
    book = RetryBook()
    earth = hello.make("World", name="earth")
    country = hello.make("Country", name="c", world_id=earth)
    ids = [hello.make("Greeting", message=f"g{n:03}", country_id=country) for n in range(80)]
    links = LinkFields.from_model_deps(hello.deps)
    index = StatusIndex(store, MODELS, links, MODELS)
    index.load(NOW)
    views = [
        Filters(model, state, text, sort, descending)
        for model in (None, "Greeting")
        for state in (None, "error")
        for text in (None, "g0", "full")
        for sort in SORTS
        for descending in (False, True)
    ]

    def everything(ix: StatusIndex, f: Filters) -> list[tuple[str, int]]:
        return [(s.model, s.id) for s in ix.page(f, 0, 1000).rows]

    kept = [views[i : i + 8] for i in range(0, len(views), 8)]  # VIEWS_KEPT at a time
    for group in kept:
        for f in group:
            everything(index, f)  # cached now, then kept through the changes below
        for _ in range(60):
            id = pick.choice(ids)
            action = pick.random()
            if action < 0.4:
                failure = pick.choice(MESSAGES)
                values = bs.failed(status="", register="{}", message=failure, retries=book, now=NOW)
                store.update("Greeting", id, values, actor="synchronizer")
            elif action < 0.7:
                store.update("Greeting", id, {"message": f"g{pick.randrange(1000):03}"})
            elif action < 0.85:
                ids.append(hello.make("Greeting", message=f"new {len(ids)}", country_id=country))
                id = ids[-1]
            else:
                store.purge("Greeting", id)
                ids.remove(id)
            record = None if id not in ids else hello.row("Greeting", id)
            index.update("Greeting", id, record, NOW)
        afresh = StatusIndex(store, MODELS, links, MODELS)
        afresh.load(NOW)
        for f in group:
            assert everything(index, f) == everything(afresh, f), f
    store.close()
