"""Shared pieces of the status-UI tests: the hello models in a real SQLite file, a real sync
engine whose Greeting step fails on demand, and the UI served by uvicorn on a loopback port.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import IN_CI
from xprotogen.loader import load_schema
from xprotogen.schema import Schema
from xprotogen.targets.deps import model_deps
from xsync import DeferredException, SyncStep
from xsync.backend_state import register_json
from xsync.backoff import BackoffPolicy, Register
from xsync.engines.sync import PassReport, SyncEngine
from xsync.store import open_store
from xsync.store.base import Store
from xsync.ui import Credentials, UiServer, create_app
from xsync.ui.serve_cli import bind

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.xproto"
MODELS = ["World", "Country", "Greeting"]
RETRY_SECONDS = 600.0  # the first backoff: long enough that it never ends during a test


class SyncWorld(SyncStep):
    observes = "World"

    def sync_record(self, obj: Any) -> None:
        pass


class SyncCountry(SyncStep):
    observes = "Country"

    def sync_record(self, obj: Any) -> None:
        if obj.name.startswith("later"):
            raise DeferredException("waiting for the country's border to open")


class SyncGreeting(SyncStep):
    """Fails when the greeting asks for it, with its own text as the error message."""

    observes = "Greeting"

    def sync_record(self, obj: Any) -> None:
        if obj.fail:
            raise RuntimeError(obj.message)


STEPS: list[type[SyncStep]] = [SyncWorld, SyncCountry, SyncGreeting]


@dataclass
class Hello:
    """A store holding the hello models, and the engine that syncs them."""

    store: Store
    schema: Schema

    @property
    def deps(self) -> dict[str, Any]:
        return dict(model_deps(self.schema))

    def engine(self) -> SyncEngine:
        return SyncEngine(
            self.store,
            STEPS,
            model_deps(self.schema),
            backoff=BackoffPolicy(base_seconds=RETRY_SECONDS, cap_seconds=RETRY_SECONDS, jitter=0),
            max_workers=1,
        )

    def run_pass(self) -> PassReport:
        return self.engine().run_pass()

    def make(self, model: str, **values: Any) -> int:
        return int(self.store.create(model, values)["id"])

    def row(self, model: str, id: int) -> dict[str, Any]:
        return self.store.get(model, id, include_deleted=True)

    def mark_fixed(self, model: str, id: int) -> None:
        """What a successful sync writes, as the synchronizer: the object is in sync again."""
        row = self.row(model, id)
        self.store.update(
            model,
            id,
            {
                "backend_code": 1,
                "backend_status": "OK",
                "enacted": row["updated"],
                "backend_register": register_json(Register(last_success=row["updated"])),
            },
            actor="synchronizer",
        )

    def set_status(self, model: str, id: int, status: str, code: int = 2) -> None:
        self.store.update(
            model, id, {"backend_status": status, "backend_code": code}, actor="synchronizer"
        )


def require_dot() -> None:
    """The service graph is laid out by Graphviz's dot (`make test` installs it)."""
    if shutil.which("dot") is None:
        if IN_CI:
            pytest.fail("Graphviz's dot is missing (make test installs it)")
        pytest.skip("Graphviz's dot is not installed")


@pytest.fixture
def hello(tmp_path: Path) -> Iterator[Hello]:
    schema = load_schema([HELLO], core="auto")  # as xsync reads the config's models
    store = open_store(f"sqlite:///{tmp_path / 'hello.db'}", schema)
    yield Hello(store, schema)
    store.close()


def serve(
    hello: Hello, *, credentials: Credentials | None = None, allow_retry: bool = False
) -> UiServer:
    """The UI for `hello` on a free loopback port, started; stop it when done."""
    app = create_app(
        hello.store,
        MODELS,
        deps=hello.deps,
        credentials=credentials,
        allow_retry=allow_retry,
        title="xsync status: hello",
        poll_seconds=0.2,
    )
    server = UiServer(app, bind("127.0.0.1", 0))
    server.start()
    return server


# --- a big store, built fast: the scale test and bench/bench_ui.py -----------------------------

FULL_MESSAGE = "cluster is full"
FIRE_MESSAGE = "disk on fire"
BORDER_MESSAGE = "border closed"


@dataclass(frozen=True)
class ScaleWorld:
    """What `build_scale_store` made: how many of each, and a few ids the tests look for."""

    total: int
    countries: int
    full: int  # greetings failing with FULL_MESSAGE
    fire: int  # greetings failing with FIRE_MESSAGE
    held: int  # greetings held back by the closed country
    closed_country: int
    counts: dict[str, dict[str, int]]


def build_scale_store(store: Store, total: int = 100_000, *, chunk: int = 10_000) -> ScaleWorld:
    """`total` objects of the hello models, written with `create_many` as the synchronizer
    would have left them: most in sync, two groups of failures, one country failing and the
    greetings that link to it held back."""
    from xsync import backend_state as bs
    from xsync.backoff import RetryBook

    now = time.time()
    book = RetryBook()
    in_sync = bs.synced(register="{}", enacted=now + 86_400, retries=book, now=now)
    in_sync["enacted"] = now + 86_400  # later than the creation stamp: nothing to do

    def failing(message: str) -> dict[str, Any]:
        return bs.failed(status="", register="{}", message=message, retries=book, now=now)

    world = int(
        store.create_many("World", [{"name": "earth", **in_sync}], actor="synchronizer")[0]["id"]
    )
    countries = 100
    closed_at = 13
    country_ids = [
        int(r["id"])
        for r in store.create_many(
            "Country",
            [
                {"name": f"country-{i:03}", "world_id": world,
                 **(failing(BORDER_MESSAGE) if i == closed_at else in_sync)}
                for i in range(countries)
            ],
            actor="synchronizer",
        )
    ]  # fmt: skip
    closed = country_ids[closed_at]
    held_values = bs.held_back(
        status="", register="{}", code=0, cause=("Country", closed), reason=BORDER_MESSAGE
    )
    greetings = total - 1 - countries
    held = full = fire = made = 0
    while made < greetings:
        batch = []
        for n in range(made, min(greetings, made + chunk)):
            country = country_ids[n % countries]
            values: dict[str, Any] = {"message": f"greeting {n:06}", "country_id": country}
            if country == closed:
                values.update(held_values)
                held += 1
            elif n % 200 == 1:  # 0.5 %
                values.update(failing(FULL_MESSAGE))
                full += 1
            elif n % 1000 == 2:  # 0.1 %
                values.update(failing(FIRE_MESSAGE))
                fire += 1
            else:
                values.update(in_sync)
            batch.append(values)
        store.create_many("Greeting", batch, actor="synchronizer")
        made += len(batch)
    zero = {"ok": 0, "pending": 0, "deferred": 0, "held": 0, "backing_off": 0, "error": 0}
    counts = {
        "World": {**zero, "ok": 1},
        "Country": {**zero, "ok": countries - 1, "error": 1},
        "Greeting": {**zero, "held": held, "error": full + fire,
                     "ok": greetings - held - full - fire},
    }  # fmt: skip
    return ScaleWorld(total, countries, full, fire, held, closed, counts)
