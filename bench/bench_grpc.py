"""Objects per second through the gRPC core (`RemoteStore` -> server -> SQLite), next to the
embedded store measured in the same run with the same workload (`bench_store.measure_store`).

Run: `.venv/bin/python bench/bench_grpc.py [--count N] [--clients K]`. The server runs in
its own process, as a core does, so client and server do not share one interpreter lock.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import HELLO, measure_store  # noqa: E402

from xprotogen.loader import load_schema  # noqa: E402
from xsync.grpc.client import RemoteStore  # noqa: E402
from xsync.store import open_store  # noqa: E402

USER, PASSWORD = "bench", "bench"
_SERVER = """
import sys
from xprotogen.loader import load_schema
from xsync.grpc.server import serve
from xsync.store import open_store
schema = load_schema([sys.argv[1]])
store = open_store(sys.argv[2], schema)
server = serve(store, schema, listen="127.0.0.1:0", username=sys.argv[3], password=sys.argv[4])
print(server.port, flush=True)
sys.stdin.read()
server.stop(0)
store.close()
"""


def start_server(url: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(HELLO), url, USER, PASSWORD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port:
        process.kill()
        raise SystemExit("the benchmark server did not start")
    return process, f"127.0.0.1:{port}"


def stop_server(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def embedded(directory: Path, count: int) -> dict[str, float]:
    store = open_store(f"sqlite:///{directory / 'embedded.db'}", load_schema([HELLO]))
    try:
        return measure_store(store, count=count)
    finally:
        store.close()


def remote_sequential(directory: Path, count: int) -> dict[str, float]:
    process, endpoint = start_server(f"sqlite:///{directory / 'grpc.db'}")
    try:
        with RemoteStore(endpoint, load_schema([HELLO]), username=USER, password=PASSWORD) as store:
            return measure_store(store, count=count)
    finally:
        stop_server(process)


def remote_concurrent(directory: Path, count: int, clients: int) -> float:
    """Creates per second with `clients` clients, each in its own thread and channel."""
    process, endpoint = start_server(f"sqlite:///{directory / 'grpc-concurrent.db'}")
    schema = load_schema([HELLO])
    stores = [
        RemoteStore(endpoint, schema, username=USER, password=PASSWORD) for _ in range(clients)
    ]
    share = count // clients

    def create(store: RemoteStore, k: int) -> None:
        for i in range(share):
            store.create("World", {"name": f"world {k}-{i}"})

    try:
        threads = [threading.Thread(target=create, args=(s, k)) for k, s in enumerate(stores)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return share * clients / (time.perf_counter() - started)
    finally:
        for s in stores:
            s.close()
        stop_server(process)


def report(
    count: int, clients: int, local: dict[str, float], remote: dict[str, Any], concurrent: float
) -> str:
    ratio = local["create_per_s"] / remote["create_per_s"]
    return "\n".join(
        [
            f"gRPC benchmark: {count} hello.World objects, SQLite file (WAL), server in its own process",
            f"  embedded create: {local['create_per_s']:>9,.0f} objects/s   get: {local['get_per_s']:>9,.0f} objects/s   query: {local['query_rows_per_s']:>9,.0f} rows/s",
            f"  gRPC     create: {remote['create_per_s']:>9,.0f} objects/s   get: {remote['get_per_s']:>9,.0f} objects/s   query: {remote['query_rows_per_s']:>9,.0f} rows/s",
            f"  gRPC create with {clients} concurrent clients: {concurrent:,.0f} objects/s",
            f"  embedded / gRPC (create, one client): {ratio:.1f}x",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        local = embedded(directory, args.count)
        remote = remote_sequential(directory, args.count)
        concurrent = remote_concurrent(directory, args.count, args.clients)
    print(report(args.count, args.clients, local, remote, concurrent))


if __name__ == "__main__":
    main()
