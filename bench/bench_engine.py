"""One sync pass over N no-op objects in a 4-model chain, against a bare sequential loop.

    .venv/bin/python bench/bench_engine.py [--sizes 1000,10000,100000] [--workers 4] [--append docs/performance.md]

Figures per N, measured in the same run on the embedded SQLite store (a file):
- bare: the floor of a correct pass: fetch the pending rows model by model, one plain object
  per row, mark them, call the no-op step, save the same outcomes, marks and outcomes 500 to
  a transaction (`Store.write_outcomes`), no planner, no pool;
- engine, 1 worker and `--workers` workers: `SyncEngine.run_pass()` (fetch, plan, prepare,
  execute, save in batches), and the most memory a pass held at once (tracemalloc, in a pass of its own);
- core: the planner and executor alone over plain data, against a bare in-memory loop.
Then the save-to-sync latency of the long-running mode (a save wakes the runner).
"""

from __future__ import annotations

import argparse
import tracemalloc
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from xprotogen.loader import load_schema
from xprotogen.targets.deps import model_deps
from xsync.backend_state import register_json
from xsync.backoff import Register
from xsync.engines.sync import RecordView, SyncEngine
from xsync.executor import Outcome, execute_plan
from xsync.planner import LinkFields, PlanItem, model_order, plan_sync
from xsync.runner import Runner
from xsync.steps import SyncStep
from xsync.store import open_store
from xsync.store.base import OutcomeWrite, PendingQuery, Store

BATCH = 500  # the bare loop's marks and outcomes per transaction
MODELS = """
option app_label = "bench";
message Zone (XOSBase) { required string name = 1; }
message Rack (XOSBase) { required string name = 1; required manytoone zone->Zone:racks = 2:1001; }
message Host (XOSBase) { required string name = 1; required manytoone rack->Rack:hosts = 2:1001; }
message Vm (XOSBase) { required string name = 1; required manytoone host->Host:vms = 2:1001; }
"""
CHAIN = ["Zone", "Rack", "Host", "Vm"]


class NoOp(SyncStep):
    observes = CHAIN

    def sync_record(self, obj: Any) -> None:
        pass


def make_store(
    directory: Path, n: int, url: str | None = None
) -> tuple[Store, dict[str, list[list[str]]]]:
    """N objects of the chain in a fresh store: a SQLite file in `directory`, or `url`."""
    path = directory / "bench.xproto"
    path.write_text(MODELS)
    schema = load_schema([path], core="auto")
    store = open_store(url or f"sqlite:///{directory / f'bench{n}.db'}", schema)
    per_model = n // len(CHAIN)
    previous: list[int] = []
    for model, link in zip(CHAIN, [None, "zone_id", "rack_id", "host_id"]):
        rows: list[dict[str, Any]] = []
        for i in range(per_model):
            values: dict[str, Any] = {"name": f"{model}{i}"}
            if link is not None:
                values[link] = previous[i % len(previous)]
            rows.append(values)
        previous = [r["id"] for r in store.create_many(model, rows)]
    return store, model_deps(schema)


def mark_dirty(store: Store, model: str) -> None:
    """Make every object pending and never synced again, so the next pass does the same work."""
    records = store.query(model)
    for start in range(0, len(records), BATCH):
        store.write_outcomes(
            [
                OutcomeWrite(
                    model, r["id"], {"name": r["name"] + ".", "backend_need_delete": False}
                )
                for r in records[start : start + BATCH]
            ],
            actor="user",
        )


def bare_pass(store: Store, deps: dict[str, list[list[str]]]) -> int:
    """The least a correct pass must do: fetch in model order, mark, call, save, batched."""
    step = NoOp()
    done = 0
    mark = {"backend_need_delete": True}
    for model in model_order(deps):
        if model not in CHAIN:
            continue
        records = store.pending(model, PendingQuery.DIRTY_OBJECTS)
        for start in range(0, len(records), BATCH):
            objs = [RecordView(model, r) for r in records[start : start + BATCH]]
            store.write_outcomes(
                [OutcomeWrite(model, o.id, mark) for o in objs if not o.backend_need_delete]
            )
            outcomes = []
            for obj in objs:
                step.sync_record(obj)
                values = {
                    "enacted": max(obj.updated or 0.0, obj.changed_by_policy or 0.0),
                    "backend_status": "OK",
                    "backend_code": 1,
                    "backend_register": register_json(Register(last_success=time.time())),
                }
                outcomes.append(OutcomeWrite(model, obj.id, values))
            store.write_outcomes(outcomes)
            done += len(objs)
    return done


def engine_pass(
    store: Store, deps: dict[str, list[list[str]]], n: int, workers: int, *, memory: bool = False
) -> float:
    """Seconds of one engine pass over every object; with `memory`, instead the peak of the
    memory the pass allocated (tracemalloc, which slows the pass: not timed)."""
    for model in CHAIN:
        mark_dirty(store, model)
    engine = SyncEngine(store, [NoOp], deps, max_workers=workers)
    if memory:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    report = engine.run_pass()
    seconds = time.perf_counter() - started
    assert report.worked == n, report.worked
    if memory:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return float(peak)
    return seconds


def core_only(n: int, workers: int) -> tuple[float, float]:
    """Planner + executor over plain data, and a bare loop over the same no-op calls."""
    per_model = n // len(CHAIN)
    items = []
    for m, model in enumerate(CHAIN):
        for i in range(per_model):
            links = ((CHAIN[m - 1], i),) if m else ()
            items.append(PlanItem((model, i), links))
    step = NoOp()
    started = time.perf_counter()
    plan = plan_sync(items)

    def run_one(key: tuple[str, int]) -> Outcome:
        step.sync_record(key)
        return Outcome.SYNCED

    execute_plan(plan, run_one, max_workers=workers)
    engine_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for model in CHAIN:
        for item in items:
            if item.key[0] == model:
                step.sync_record(item.key)
    bare_seconds = time.perf_counter() - started
    return engine_seconds, bare_seconds


def latency(directory: Path, samples: int = 50) -> list[float]:
    store, deps = make_store(directory, 4)
    engine = SyncEngine(store, [NoOp], deps, max_workers=4)
    runner = Runner(engine, store, interval=30.0)
    thread = threading.Thread(target=runner.run_forever, daemon=True)
    thread.start()
    time.sleep(0.3)
    zone = store.query("Zone")[0]["id"]
    found = []
    for i in range(samples):
        saved = time.perf_counter()
        created = store.create("Rack", {"name": f"late{i}", "zone_id": zone})
        while store.get("Rack", created["id"])["backend_code"] != 1:
            time.sleep(0.001)
        found.append(time.perf_counter() - saved)
    runner.request_stop()
    thread.join()
    store.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds per N; medians are shown"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also time the engine pass on PostgreSQL (a schema of its own; XSYNC_BENCH_PG)",
    )
    parser.add_argument("--append", metavar="MD", help="append the table to this Markdown file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            store, deps = make_store(Path(tmp), n)
            bares, ones, manys = [], [], []
            for _ in range(args.rounds):
                # The bare loop finds every object pending: the engine passes leave them so.
                for model in CHAIN:
                    mark_dirty(store, model)
                started = time.perf_counter()
                assert bare_pass(store, deps) == n
                bares.append(time.perf_counter() - started)
                ones.append(engine_pass(store, deps, n, 1))
                manys.append(engine_pass(store, deps, n, args.workers))
            bare_s, one_s = statistics.median(bares), statistics.median(ones)
            many_s = statistics.median(manys)
            rss = engine_pass(store, deps, n, 1, memory=True)
            core_s, core_bare_s = core_only(n, args.workers)
            store.close()
            rows.append((n, bare_s, one_s, many_s, rss, core_s, core_bare_s))
            print(
                f"N={n:>7}: bare {bare_s:7.2f} s ({n / bare_s:7.0f}/s)  engine 1 worker {one_s:7.2f} s "
                f"({one_s / bare_s:4.2f}x bare)  {args.workers} workers {many_s:7.2f} s "
                f"({many_s / bare_s:4.2f}x bare, {many_s / one_s:4.2f}x 1 worker)  "
                f"peak {rss / n:6.0f} B/object  planner+executor {n / core_s:7.0f}/s",
                flush=True,
            )
            if args.postgres:
                from bench_scale import Schema

                with Schema() as url:
                    pg_store, pg_deps = make_store(Path(tmp), n, url)
                    pg_s = engine_pass(pg_store, pg_deps, n, args.workers)
                    pg_store.close()
                print(
                    f"N={n:>7}: PostgreSQL engine {args.workers} workers {pg_s:7.2f} s, "
                    f"{pg_s / many_s:4.2f}x SQLite's",
                    flush=True,
                )
        lat = latency(Path(tmp))
    median_ms = statistics.median(lat) * 1000
    p95_ms = sorted(lat)[int(len(lat) * 0.95) - 1] * 1000
    print(
        f"save-to-sync latency (in-process, long-running mode): median {median_ms:.1f} ms, p95 {p95_ms:.1f} ms"
    )
    if args.append:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(render(rows, median_ms, p95_ms, args.workers))


def render(
    rows: list[tuple[int, float, float, float, float, float, float]],
    median_ms: float,
    p95_ms: float,
    workers: int,
) -> str:
    lines = [
        "",
        f"## Sync engine: one pass over N no-op objects (bench/bench_engine.py, {time.strftime('%Y-%m-%d')})",
        "",
        "4-model chain (Zone <- Rack <- Host <- Vm), embedded SQLite store (file), 2-core machine shared with other work.",
        "`bare` fetches, marks, calls and saves outcomes 500 to a transaction with no planner and no pool;",
        "`engine` is `SyncEngine.run_pass()`. Medians of alternating rounds. Peak is the most memory the pass held at once (tracemalloc, in a separate pass), per object.",
        "",
        f"| N | bare s | engine, 1 worker s | / bare | engine, {workers} workers s | / bare | / 1 worker | peak B/object | planner+executor obj/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, bare_s, one_s, many_s, rss, core_s, _core_bare_s in rows:
        lines.append(
            f"| {n:,} | {bare_s:.2f} | {one_s:.2f} | {one_s / bare_s:.2f} | {many_s:.2f} | {many_s / bare_s:.2f} "
            f"| {many_s / one_s:.2f} | {rss / n:,.0f} | {n / core_s:,.0f} |"
        )
    lines += [
        "",
        f"Save-to-sync latency, long-running mode, save and runner in one process: median {median_ms:.1f} ms, p95 {p95_ms:.1f} ms.",
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
