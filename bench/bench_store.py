"""Objects per second through the embedded SQLite store: the reference for the gRPC benchmark.

Run: `.venv/bin/python bench/bench_store.py [--count N]`. `measure_store` takes any `Store`,
so the gRPC benchmark can run the same workload through its client and compare.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from xprotogen.loader import load_schema
from xsync.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.xproto"


def measure_store(
    store: Store,
    *,
    count: int = 10_000,
    model: str = "World",
    values: Callable[[int], dict[str, Any]] = lambda i: {"name": f"world {i}"},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--url", help="store URL (default: a fresh SQLite file in a temporary directory)"
    )
    args = parser.parse_args()
    schema = load_schema([HELLO])
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(args.url or f"sqlite:///{tmp}/bench.db", schema)
        try:
            figures = measure_store(store, count=args.count)
        finally:
            store.close()
    print(
        f"store benchmark ({args.url or 'SQLite file, WAL'}), {args.count} objects of hello.World"
    )
    print(f"  create: {figures['create_per_s']:>10,.0f} objects/s (one transaction each)")
    print(f"  get:    {figures['get_per_s']:>10,.0f} objects/s")
    print(f"  query:  {figures['query_rows_per_s']:>10,.0f} rows/s (one query for all)")


if __name__ == "__main__":
    main()
