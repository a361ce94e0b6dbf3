"""Sync outcomes for N objects: `update` one by one, `write_outcomes` in batches, the floor.

Run: `.venv/bin/python bench/bench_outcomes.py [--count N] [--batch B] [--repeat R] [--pg URL]`.
On SQLite (a file) and PostgreSQL (a fresh schema, dropped afterwards), the same N objects get
the outcome a sync pass saves on success (`enacted`, `backend_status`, `backend_code`):

- `update`: one `Store.update(..., actor="synchronizer", update_fields=...)` per object;
- `write_outcomes`: `Store.write_outcomes` in batches of B;
- `floor`: the raw driver (sqlite3, psycopg) with one `executemany` UPDATE of the same columns
  per batch of B, one transaction each: what the database itself costs.

Each figure is the median of R runs (each round writes new values, so every write changes
the row); the ratios are against the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from xprotogen.loader import load_schema
from xsync.store import OutcomeWrite, SqlStore, open_store

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.xproto"
PG_URL = os.environ.get("XSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = ("enacted", "backend_status", "backend_code")


def outcome(round_: int) -> dict[str, Any]:
    return {"enacted": 1.7e9 + round_, "backend_status": f"OK {round_}", "backend_code": round_}


def by_update(store: SqlStore, ids: list[int], round_: int) -> None:
    values = outcome(round_)
    for i in ids:
        store.update("World", i, values, actor="synchronizer", update_fields=list(values))


def by_batches(store: SqlStore, ids: list[int], round_: int, batch: int) -> None:
    values = outcome(round_)
    for start in range(0, len(ids), batch):
        writes = [OutcomeWrite("World", i, values) for i in ids[start : start + batch]]
        results = store.write_outcomes(writes)
        assert not any(results), results[:3]


def floor_sqlite(path: str, ids: list[int], round_: int, batch: int) -> None:
    values = outcome(round_)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        sql = "UPDATE world SET enacted = ?, backend_status = ?, backend_code = ? WHERE id = ?"
        for start in range(0, len(ids), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                sql, [(*(values[c] for c in COLUMNS), i) for i in ids[start : start + batch]]
            )
            conn.execute("COMMIT")
    finally:
        conn.close()


def floor_pg(url: str, ids: list[int], round_: int, batch: int) -> None:
    import psycopg

    values = outcome(round_)
    sql = "UPDATE world SET enacted = %s, backend_status = %s, backend_code = %s WHERE id = %s"
    with psycopg.connect(url) as conn:
        for start in range(0, len(ids), batch):
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(
                    sql, [(*(values[c] for c in COLUMNS), i) for i in ids[start : start + batch]]
                )


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(url: str, floor: Callable[[list[int], int], None], args: Any) -> dict[str, float]:
    store = open_store(url, load_schema([HELLO]))
    try:
        ids = [
            r["id"]
            for r in store.create_many("World", [{"name": f"w{i}"} for i in range(args.count)])
        ]
        runs: dict[str, list[float]] = {"update": [], "write_outcomes": [], "floor": []}
        round_ = 0
        for _ in range(args.repeat):  # alternating, so a load change hits all three alike
            for name in runs:
                round_ += 1
                if name == "update":
                    runs[name].append(timed(lambda: by_update(store, ids, round_)))
                elif name == "write_outcomes":
                    runs[name].append(timed(lambda: by_batches(store, ids, round_, args.batch)))
                else:
                    runs[name].append(timed(lambda: floor(ids, round_)))
        return {name: statistics.median(times) for name, times in runs.items()}
    finally:
        store.close()


def report(backend: str, figures: dict[str, float], count: int) -> None:
    floor = figures["floor"]
    for name, seconds in figures.items():
        print(
            f"{backend:10} {name:15} {seconds:8.3f} s  {seconds / count * 1e6:8.1f} us/object"
            f"  {seconds / floor:6.2f}x the floor"
        )
    print(
        f"{backend:10} write_outcomes is {figures['update'] / figures['write_outcomes']:.1f}x "
        "faster than update one by one"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs; figures are medians")
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL server ('' to skip)")
    args = parser.parse_args()
    print(
        f"{args.count} objects, batches of {args.batch}, median of {args.repeat}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db")
        figures = measure(
            f"sqlite:///{path}", lambda ids, r: floor_sqlite(path, ids, r, args.batch), args
        )
        report("sqlite", figures, args.count)
    if args.pg:
        import psycopg

        schema = f"xs_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{args.pg}{'&' if '?' in args.pg else '?'}options={quote(f'-csearch_path={schema}')}"
        try:
            figures = measure(url, lambda ids, r: floor_pg(url, ids, r, args.batch), args)
            report("postgresql", figures, args.count)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
