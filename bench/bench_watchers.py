"""Ordinary calls while many Watch streams are open: the core must not starve.

Run: `.venv/bin/python bench/bench_watchers.py [--watchers N] [--calls C]`. The core runs
in its own process (`xsync core` with one account per role) on loopback. The reference run
is the same script with no watcher open; then N streams are opened (spread over 10
channels), half of them following the feed and half waiting (`once`, timeout 3,600 s, the
kind that used to pin a handler thread each), and the same C calls are timed again: a
`GetVersion`, a `Filter`, a `Create` (which every stream is told about) and an unauthenticated
call, in turn. Figures: p50 and p99 per phase, the ratio to the reference, and how many of
the streams got the last change. Goal: p99 under 50 ms with 1,000 watchers open.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from core_support import credentials, write_core_config  # noqa: E402

from store_support import SHOP, schema_from_text  # noqa: E402
from xsync.grpc.protocol import protocol_for  # noqa: E402

CHANNELS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = write_core_config(Path(tmp))
        protocol = protocol_for(schema_from_text(Path(tmp), SHOP))
        core = subprocess.Popen(
            [sys.executable, "-m", "xsync.cli", "core", str(config), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert core.stdout is not None
            endpoint = core.stdout.readline().rsplit(" ", 1)[1].strip()
            return _measure(endpoint, protocol, args.watchers, args.calls)
        finally:
            core.terminate()
            core.wait(timeout=30)


def _measure(endpoint: str, protocol: Any, watchers: int, calls: int) -> int:
    channels = [grpc.insecure_channel(endpoint) for _ in range(CHANNELS)]
    timed = _Calls(channels[0], protocol)
    timed.run(20)  # warm up: the accounts' passwords are proven once
    timed.version(protocol.empty(), metadata=credentials("hello-sync"), timeout=10)
    reference = timed.run(calls)
    streams, following = _open_streams(channels, protocol, watchers)
    opened = time.perf_counter()
    loaded = timed.run(calls)
    took = time.perf_counter() - opened
    # Read what the following streams got only now, so that no client thread per stream
    # competes with the timed calls; the changes wait in each stream's buffers meanwhile.
    with ThreadPoolExecutor(32) as pool:
        reached = [pool.submit(_reaches, stream, timed.last_id) for stream in following]
        done, _ = wait(reached, timeout=30)
        got_last = sum(1 for future in done if future.result())
        for stream in streams:
            stream.cancel()
    for channel in channels:
        channel.close()
    print(
        f"{watchers} Watch streams open ({watchers // 2} following, {watchers - watchers // 2} waiting)"
    )
    print(f"{'phase':<28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, figures in (("no watcher (reference)", reference), (f"{watchers} watchers", loaded)):
        print(
            f"{name:<28} {_ms(figures, 50):>8.2f} {_ms(figures, 99):>8.2f} {max(figures) * 1000:>8.2f}"
        )
    print(f"p99 ratio to the reference: {_ms(loaded, 99) / _ms(reference, 99):.2f}")
    print(f"{calls} calls with the streams open took {took:.2f} s")
    print(f"following streams told of the last create: {got_last} of {watchers // 2}")
    return 0 if _ms(loaded, 99) < 50 and got_last == watchers // 2 else 1


class _Calls:
    """GetVersion, Filter, Create and an unauthenticated GetVersion, in turn, each timed."""

    def __init__(self, channel: grpc.Channel, protocol: Any) -> None:
        same = lambda m: m.SerializeToString()  # noqa: E731
        self.version = channel.unary_unary(
            protocol.version_path(), same, protocol.common("Version").FromString
        )
        api = protocol.models["Shop"]
        self.filter = channel.unary_unary(api.path("Filter"), same, api.plural.FromString)
        self.create = channel.unary_unary(api.path("Create"), same, api.message.FromString)
        self.protocol = protocol
        self.api = api
        self.last_id = 0

    def run(self, count: int) -> list[float]:
        out = []
        query = self.protocol.common("Query")(limit=10)
        for i in range(count):
            started = time.perf_counter()
            kind = i % 4
            if kind == 0:
                self.version(self.protocol.empty(), metadata=credentials("viewer"), timeout=10)
            elif kind == 1:
                self.filter(query, metadata=credentials("viewer"), timeout=10)
            elif kind == 2:
                shop = self.create(
                    self.api.message(name=f"s{i}"), metadata=credentials("alice"), timeout=10
                )
                self.last_id = shop.id
            else:
                try:
                    self.version(self.protocol.empty(), timeout=10)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
            out.append(time.perf_counter() - started)
        return out


def _open_streams(
    channels: list[grpc.Channel], protocol: Any, count: int
) -> tuple[list[Any], list[Any]]:
    """`count` streams, every other one following the feed from the start; (all, following)."""
    request = protocol.common("WatchRequest")
    streams, following = [], []
    for i in range(count):
        call = channels[i % len(channels)].unary_stream(
            protocol.watch_path(),
            lambda m: m.SerializeToString(),
            protocol.common("Change").FromString,
        )
        follows = i % 2 == 0
        message = request(after=0) if follows else request(once=True, timeout=3600)
        stream = call(message, metadata=credentials("hello-sync"), timeout=600)
        streams.append(stream)
        if follows:
            following.append(stream)
    for stream in following:
        stream.initial_metadata()  # sent with the backlog: the stream is being served
    time.sleep(1.0)  # and the waiting ones, opened in between, have had time to arrive
    return streams, following


def _reaches(stream: Any, last_id: int) -> bool:
    try:
        for change in stream:
            if change.id == last_id:
                return True
    except grpc.RpcError:
        pass
    return False


def _ms(figures: list[float], percentile: int) -> float:
    ordered = sorted(figures)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percentile / 100))] * 1000


if __name__ == "__main__":
    sys.exit(main())
