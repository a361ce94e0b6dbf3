"""Objects per second through the gRPC core (`RemoteStore` -> server -> SQLite), next to the
embedded store measured in the same run with the same workload (`bench_store.measure_store`).

Run: `.venv/bin/python bench/bench_grpc.py [--count N] [--clients K] [--repeat R]`. The
server runs in its own process, as a core does, so client and server do not share one
interpreter lock. Each figure is the median of R runs. Besides the store workload it
measures the floor of a call: a no-op method on a bare grpcio server (no store, no
authentication, no conversion; the thread-pool server, the reference of issue 15's goal, and
the asyncio server the core is built on), and `GetVersion` on the core (authentication and
one read). It prints the ratio of one create per call to the no-op call (goal: 0.80) and the
rate of `create_stream` (one stream, a transaction per 1,000 objects).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import BULK_BATCH, HELLO, measure_bulk, measure_store, median_of  # noqa: E402

from xprotogen.loader import load_schema  # noqa: E402
from xsync.grpc.client import STREAM_CHUNK, RemoteStore  # noqa: E402
from xsync.store import open_store  # noqa: E402

USER, PASSWORD = "bench", "bench"
FLOOR_CALLS = 3000
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
_NOOP_SERVER = """
import sys
from concurrent.futures import ThreadPoolExecutor
import grpc
same = lambda b: b
handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"", same, same)
server = grpc.server(ThreadPoolExecutor(max_workers=32))
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Noop", {"Call": handler})])
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(0)
"""


_NOOP_AIO_SERVER = """
import asyncio, sys
import grpc
same = lambda b: b
async def call(request, context):
    return b""
async def main():
    handler = grpc.unary_unary_rpc_method_handler(call, same, same)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Noop", {"Call": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(0)
asyncio.run(main())
"""
GOAL = 0.80  # one create per call against a no-op call (issue 15)


def _start(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
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


def start_server(url: str) -> tuple[subprocess.Popen[str], str]:
    return _start(_SERVER, str(HELLO), url, USER, PASSWORD)


def stop_server(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def embedded(directory: Path, count: int, batch: int) -> dict[str, float]:
    store = open_store(f"sqlite:///{directory / 'embedded.db'}", load_schema([HELLO]))
    try:
        figures = measure_store(store, count=count)
        figures["bulk_create_per_s"] = measure_bulk(store, count=count, batch=batch)
        return figures
    finally:
        store.close()


def remote_sequential(directory: Path, count: int, batch: int) -> dict[str, float]:
    process, endpoint = start_server(f"sqlite:///{directory / 'grpc.db'}")
    try:
        with RemoteStore(endpoint, load_schema([HELLO]), username=USER, password=PASSWORD) as store:
            figures = measure_store(store, count=count)
            figures["bulk_create_per_s"] = measure_bulk(store, count=count, batch=batch)
            items = (_stream_world(i) for i in range(count))
            started = time.perf_counter()
            assert len(store.create_stream("World", items)) == count
            figures["stream_create_per_s"] = count / (time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(FLOOR_CALLS):
                store.core_version()
            figures["version_calls_per_s"] = FLOOR_CALLS / (time.perf_counter() - started)
            return figures
    finally:
        stop_server(process)


def _stream_world(i: int) -> dict[str, Any]:
    return {"name": f"streamed {i}"}


def noop_calls(calls: int = FLOOR_CALLS, script: str = _NOOP_SERVER) -> float:
    """Calls per second to a no-op method of a bare grpcio server: the floor of any call."""
    import grpc

    process, endpoint = _start(script)
    try:
        with grpc.insecure_channel(endpoint) as channel:
            same = lambda b: b  # noqa: E731
            call: Any = channel.unary_unary(
                "/bench.Noop/Call", request_serializer=same, response_deserializer=same
            )
            for _ in range(200):  # connect and warm up
                call(b"")
            started = time.perf_counter()
            for _ in range(calls):
                call(b"", metadata=(("username", USER), ("password", PASSWORD)), timeout=60)
            return calls / (time.perf_counter() - started)
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
    count: int,
    clients: int,
    batch: int,
    runs: int,
    local: dict[str, float],
    remote: dict[str, float],
    concurrent: float,
    noop: float,
    noop_aio: float,
    load: tuple[float, float],
) -> str:
    def row(name: str, f: dict[str, float]) -> str:
        return (
            f"  {name:<8} create: {f['create_per_s']:>9,.0f} objects/s   "
            f"create_many: {f['bulk_create_per_s']:>9,.0f} objects/s   "
            f"get: {f['get_per_s']:>9,.0f} objects/s   query: {f['query_rows_per_s']:>9,.0f} rows/s"
        )

    return "\n".join(
        [
            f"gRPC benchmark: {count} hello.World objects, SQLite file (WAL), server in its own "
            f"process; medians of {runs} runs; create_many sends {batch} objects per call",
            row("embedded", local),
            row("gRPC", remote),
            f"  gRPC create with {clients} concurrent clients: {concurrent:,.0f} objects/s",
            f"  gRPC create_stream (one stream, {STREAM_CHUNK:,} objects a transaction): "
            f"{remote['stream_create_per_s']:,.0f} objects/s",
            f"  call floor: no-op grpcio call {noop:,.0f} calls/s (asyncio server: "
            f"{noop_aio:,.0f}); GetVersion {remote['version_calls_per_s']:,.0f} calls/s",
            f"  one create per call / no-op call: {remote['create_per_s'] / noop:.2f} "
            f"(goal {GOAL:.2f}: {'met' if remote['create_per_s'] / noop >= GOAL else 'NOT met'}); "
            f"against the asyncio no-op: {remote['create_per_s'] / noop_aio:.2f}",
            f"  load average (1 min) at start {load[0]:.2f}, at end {load[1]:.2f}",
            f"  embedded / gRPC: create {local['create_per_s'] / remote['create_per_s']:.1f}x, "
            f"embedded create / gRPC create_many "
            f"{local['create_per_s'] / remote['bulk_create_per_s']:.1f}x",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs; figures are medians")
    parser.add_argument("--batch", type=int, default=BULK_BATCH, help="objects per create_many")
    args = parser.parse_args()
    local: list[dict[str, float]] = []
    remote: list[dict[str, float]] = []
    concurrent: list[float] = []
    noop: list[float] = []
    noop_aio: list[float] = []
    load_at_start = os.getloadavg()[0]
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            local.append(embedded(directory, args.count, args.batch))
            remote.append(remote_sequential(directory, args.count, args.batch))
            concurrent.append(remote_concurrent(directory, args.count, args.clients))
            noop.append(noop_calls())
            noop_aio.append(noop_calls(script=_NOOP_AIO_SERVER))
    print(
        report(
            args.count,
            args.clients,
            args.batch,
            len(local),
            median_of(local),
            median_of(remote),
            statistics.median(concurrent),
            statistics.median(noop),
            statistics.median(noop_aio),
            (load_at_start, os.getloadavg()[0]),
        )
    )


if __name__ == "__main__":
    main()
