"""Objects per second through the embedded SQLite store: the reference for the gRPC benchmark.

Run: `.venv/bin/python bench/bench_store.py [--count N] [--repeat R] [--url URL]`.
`measure_store` takes any `Store`, so the gRPC benchmark can run the same workload through
its client and compare; `measure_bulk` does the same for `create_many`. With `--repeat`,
each figure is the median of R runs, each on a fresh store.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from xprotogen.loader import load_schema
from xsync.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.xproto"
BULK_BATCH = 1000

Values = Callable[[int], dict[str, Any]]


def _world(i: int) -> dict[str, Any]:
    return {"name": f"world {i}"}


def measure_store(
    store: Store, *, count: int = 10_000, model: str = "World", values: Values = _world
) -> dict[str, float]:
    """Create `count` objects one by one, read each back by id, then read them all in one query."""
    started = time.perf_counter()
    ids = [store.create(model, values(i))["id"] for i in range(count)]
    created = time.perf_counter()
    for object_id in ids:
        store.get(model, object_id)
    fetched = time.perf_counter()
    rows = store.query(model, filters={"id__in": ids}) if count <= 1000 else store.query(model)
    queried = time.perf_counter()
    assert len(rows) >= count
    return {
        "count": float(count),
        "create_per_s": count / (created - started),
        "get_per_s": count / (fetched - created),
        "query_rows_per_s": len(rows) / (queried - fetched),
    }


def measure_bulk(
    store: Store,
    *,
    count: int = 10_000,
    batch: int = BULK_BATCH,
    model: str = "World",
    values: Values = _world,
) -> float:
    """Objects per second created through `create_many`, `batch` objects per call."""
    items = [values(i) for i in range(count)]
    started = time.perf_counter()
    created = 0
    for start in range(0, count, batch):
        created += len(store.create_many(model, items[start : start + batch]))
    elapsed = time.perf_counter() - started
    assert created == count
    return count / elapsed


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over several runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _one_run(url: str, count: int, batch: int) -> dict[str, float]:
    schema = load_schema([HELLO])
    store = open_store(url, schema)
    try:
        figures = measure_store(store, count=count)
        figures["bulk_create_per_s"] = measure_bulk(store, count=count, batch=batch)
    finally:
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; figures are medians")
    parser.add_argument("--batch", type=int, default=BULK_BATCH, help="objects per create_many")
    parser.add_argument(
        "--url", help="store URL (default: a fresh SQLite file in a temporary directory)"
    )
    args = parser.parse_args()
    runs = []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(_one_run(args.url or f"sqlite:///{tmp}/bench.db", args.count, args.batch))
    figures = median_of(runs)
    print(
        f"store benchmark ({args.url or 'SQLite file, WAL'}), {args.count} objects of "
        f"hello.World, median of {len(runs)} runs"
    )
    print(f"  create:      {figures['create_per_s']:>10,.0f} objects/s (one transaction each)")
    print(
        f"  create_many: {figures['bulk_create_per_s']:>10,.0f} objects/s "
        f"({args.batch} per call and transaction)"
    )
    print(f"  get:         {figures['get_per_s']:>10,.0f} objects/s")
    print(f"  query:       {figures['query_rows_per_s']:>10,.0f} rows/s (one query for all)")


if __name__ == "__main__":
    main()
