"""The change log at 1,000,000 entries: where it ends (`latest_change`) against reading it
(`changes(0)`, what the readers did before), and pruning all of it (`forget_changes`).

    .venv/bin/python bench/bench_change_log.py [--entries 1000000] [--backends sqlite,postgresql]

The entries are inserted with one SQL statement (a bulk insert, not a million writes), each
dated two days back; then `latest_change` is timed (median of 20), `changes(0)` (median of 3)
and the pruning of everything older than a day (the default retention), which takes several
`forget_changes` calls of at most about 5 s each. Needs PostgreSQL for that backend
(XSYNC_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/test; a schema of its own,
dropped after).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import sqlalchemy as sa

from xprotogen.loader import load_schema
from xsync.store import SqlStore, open_store

PG_URL = os.environ.get("XSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
MODELS = 'option app_label = "bench";\nmessage Device (XOSBase) { required string name = 1; }\n'
DAY = 86400.0
FILL = {
    "sqlite": (
        "INSERT INTO xsync_changes (kind, model, object_id, at) "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
        "SELECT 'create', 'Device', i, :at FROM n"
    ),
    "postgresql": (
        "INSERT INTO xsync_changes (kind, model, object_id, at) "
        "SELECT 'create', 'Device', i, :at FROM generate_series(1, :count) AS i"
    ),
}


def timed(call: Callable[[], object], runs: int) -> float:
    """The median of `runs` timings of `call`, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(url: str, models: Path, entries: int) -> None:
    store = open_store(url, load_schema([models]))
    try:
        _measure(store, entries)
    finally:
        store.close()


def _measure(store: SqlStore, entries: int) -> None:
    backend = store._engine.dialect.name
    started = time.perf_counter()
    with store._engine.begin() as conn:
        conn.execute(sa.text(FILL[backend]), {"count": entries, "at": time.time() - 2 * DAY})
    print(f"{backend}: {entries:,} entries inserted in {time.perf_counter() - started:.1f} s")
    latest = timed(store.latest_change, 20)
    print(f"{backend}: latest_change      {latest * 1e3:9.3f} ms  (median of 20)")
    read = timed(lambda: store.changes(0), 3)
    print(f"{backend}: changes(0)         {read * 1e3:9.1f} ms  (median of 3)")
    print(f"{backend}: ratio              {read / latest:9.0f} x")
    calls, forgotten = 0, 0
    started = time.perf_counter()
    while True:
        calls += 1
        done = store.forget_changes(DAY)
        forgotten += done
        if done == 0:
            break
    seconds = time.perf_counter() - started
    print(
        f"{backend}: forget_changes     {forgotten:,} entries in {seconds:.1f} s "
        f"({forgotten / seconds:,.0f}/s, {calls} calls), {len(store.changes(0))} left"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "bench.xproto"
        models.write_text(MODELS)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                measure(f"sqlite:///{tmp}/log.db", models, args.entries)
            else:
                _on_postgres(models, args.entries)


def _on_postgres(models: Path, entries: int) -> None:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        measure(f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}", models, entries)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
