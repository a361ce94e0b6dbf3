"""Save-to-wake latency with the writer in another process, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_wakeup.py [--saves 100] [--backends sqlite,postgresql]

A second process saves one object at a time (it notes its clock when the save starts); this
process waits in `store.changes(after, timeout=...)`, as the runner and the change hub do, and
notes its clock when the change arrives. Each backend is measured twice, alternating: with the
commit watch (`xsync.store.wakeup`: inotify on the SQLite file, LISTEN/NOTIFY on PostgreSQL)
and, as the reference, with the watch turned off (the 0.1 s poll of the change log it replaces).
Needs PostgreSQL for that backend (XSYNC_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/test; a schema of its own, dropped after).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from xprotogen.loader import load_schema
from xsync.store import open_store

PG_URL = os.environ.get("XSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
MODELS = 'option app_label = "bench";\nmessage Device (XOSBase) { required string name = 1; }\n'
WRITER = textwrap.dedent("""
    import sys, time
    from xprotogen.loader import load_schema
    from xsync.store import open_store

    store = open_store(sys.argv[1], load_schema([sys.argv[2]]))
    print("ready", flush=True)
    for line in sys.stdin:
        started = time.time()
        store.create("Device", {"name": line.strip()})
        print(started, time.time(), flush=True)
    store.close()
    """)


def measure(url: str, models: Path, saves: int, watched: bool) -> list[tuple[float, float]]:
    """(save start to wake-up, save's return to wake-up) in seconds, for each save."""
    store = open_store(url, load_schema([models]))
    if not watched:
        store._watch = None  # the reference: what the store did before it had a watch
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(models)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "ready"
        after = store.changes()[-1].seq if store.changes() else 0
        store.changes(after, timeout=0.01)  # the watch is up before the first save
        found = []
        for i in range(saves):
            started: list[tuple[float, float]] = []

            def save(name: str = f"d{i}") -> None:
                # Once the reader is waiting, at a random point of the poll's 0.1 s cycle.
                time.sleep(random.uniform(0.02, 0.12))
                assert writer.stdin is not None and writer.stdout is not None
                writer.stdin.write(name + "\n")
                writer.stdin.flush()
                begun, ended = writer.stdout.readline().split()
                started.append((float(begun), float(ended)))

            saver = threading.Thread(target=save)
            saver.start()
            deadline = time.monotonic() + 10
            woke = None
            while woke is None and time.monotonic() < deadline:
                for change in store.changes(after, timeout=deadline - time.monotonic()):
                    after = change.seq
                    woke = time.time()
            saver.join(10)
            if woke is None or not started:
                sys.exit(f"save {i} not seen within 10 s")
            found.append((woke - started[0][0], woke - started[0][1]))
        return found
    finally:
        writer.stdin.close()
        writer.wait(20)
        store.close()


def pg_schema() -> tuple[str, str]:
    import psycopg

    name = f"bench_wakeup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in PG_URL else "?"
    return name, f"{PG_URL}{sep}options={quote(f'-csearch_path={name}')}"


def drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"median {statistics.median(values) * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "bench.xproto"
        models.write_text(MODELS)
        for backend in args.backends.split(","):
            schema = None
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'wakeup.db'}"
            else:
                schema, url = pg_schema()
            try:
                runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
                for half in range(2):  # alternating halves, so drifting load hits both alike
                    for watched in (True, False):
                        runs[watched] += measure(url, models, args.saves // 2, watched)
            finally:
                if schema is not None:
                    drop_schema(schema)
            watch = [s for s, _ in runs[True]]
            poll = [s for s, _ in runs[False]]
            after_commit = [c for _, c in runs[True]]
            ratio = statistics.median(poll) / statistics.median(watch)
            print(
                f"{backend:>10}: watch {summary(watch)} | 0.1 s poll {summary(poll)}"
                f" | poll / watch {ratio:.1f}x ({args.saves} saves each); with the watch, from"
                f" the save's return: median {statistics.median(after_commit) * 1000:.1f} ms",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
