"""Several runners of one synchronizer on PostgreSQL: throughput by runner count, and a kill.

    .venv/bin/python bench/bench_scale.py [--objects 10000] [--runners 1,2,4] [--step-ms 10]
        [--workers 4] [--lease 5] [--no-kill] [--append docs/performance.md]

Each runner is a real `xsync run` process with the same config; the step waits `--step-ms`
(I/O-bound, like a REST call) and logs its start and end with the process id. The runners
start first; the clock starts when the objects are created (one transaction) and stops when
the store has no pending object left. Throughput is objects/s; the ratio is to one runner
in the same run. Then, for each count above one, the same with one runner SIGKILLed when
half of the objects are synced: the time from the kill to the last object synced, the
objects whose step was called twice, and the objects left unsynced (lost).

Needs PostgreSQL (XSYNC_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/test); every
run uses a schema of its own, dropped after. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("XSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
MODELS = """
option app_label = "bench";
message Device (XOSBase) { required string name = 1; }
"""
STEP = """
import os
import time

from xsync import SyncStep

CALLS = {calls!r}


class SyncDevice(SyncStep):
    observes = "Device"

    def sync_record(self, obj):
        time.sleep({seconds!r})
        fd = os.open(CALLS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{{os.getpid()}} {{obj.id}} {{time.time():.6f}}\\n".encode())
        finally:
            os.close(fd)
"""


@dataclass
class Run:
    runners: int
    seconds: float
    synced_twice: int
    lost: int
    # Seconds from the kill to the last object synced, and to the last of the killed runner's
    # objects in flight being synced again by another runner (its takeover).
    recovery: float | None = None
    takeover: float | None = None

    def rate(self, objects: int) -> float:
        return objects / self.seconds


class Schema:
    """A PostgreSQL schema of its own for one run."""

    def __enter__(self) -> str:
        import psycopg

        self.name = f"bench_scale_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        sep = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{sep}options={quote(f'-csearch_path={self.name}')}"

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{self.name}" CASCADE')


def project(root: Path, store: str, args: argparse.Namespace) -> Path:
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "bench.xproto").write_text(MODELS)
    (root / "steps").mkdir(exist_ok=True)
    calls = root / "calls.log"
    calls.unlink(missing_ok=True)
    step = STEP.format(calls=str(calls), seconds=args.step_ms / 1000)
    (root / "steps" / "sync_device.py").write_text(step)
    config = {
        "name": "bench",
        "models_dir": "models",
        "steps_dir": "steps",
        "store": store,
        "max_workers": args.workers,
        "lease_seconds": args.lease,
        "loop_interval_seconds": 1,
        "logging": {"level": "WARNING", "format": "json", "destination": "runner.log"},
    }
    path = root / "sync.yaml"
    path.write_text(json.dumps(config))
    return path


def start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", "run", str(config), "--timeout", "900"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def calls(root: Path) -> list[tuple[int, int, float]]:
    """(pid, object id, time) of every step call that finished."""
    path = root / "calls.log"
    text = path.read_text() if path.exists() else ""
    return [(int(p), int(i), float(t)) for p, i, t in (line.split() for line in text.splitlines())]


def takeover_seconds(root: Path, killed_at: float) -> float:
    """From the kill to the last object synced twice (in flight in the killed runner)."""
    seen: dict[int, list[float]] = {}
    for _, object_id, at in calls(root):
        seen.setdefault(object_id, []).append(at)
    again = [max(times) for times in seen.values() if len(times) > 1]
    return max(again) - killed_at if again else 0.0


def one_run(root: Path, args: argparse.Namespace, runners: int, kill_one: bool) -> Run:
    from xsync.connect import connect
    from xsync.store.base import PendingQuery

    with Schema() as store:
        config = project(root, store, args)
        with connect(config) as api:  # creates the tables before the runners race to
            processes = [start(config) for _ in range(runners)]
            try:
                time.sleep(args.warm_up)  # every runner up and watching
                api.store.create_many("Device", [{"name": f"d{i}"} for i in range(args.objects)])
                started = time.perf_counter()
                killed_at: float | None = None
                killed_wall = 0.0
                while api.store.pending("Device", PendingQuery.DIRTY_OBJECTS):
                    if kill_one and killed_at is None and len(calls(root)) >= args.objects / 2:
                        os.kill(processes[0].pid, signal.SIGKILL)
                        killed_at, killed_wall = time.perf_counter(), time.time()
                    time.sleep(0.1)
                    if time.perf_counter() - started > 900:
                        raise SystemExit("bench_scale: the runners did not finish in 900 s")
                finished = time.perf_counter()
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                for process in processes:
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            ids = [i for _, i, _ in calls(root)]
            unsynced = len(api.store.pending("Device", PendingQuery.DIRTY_OBJECTS))
    return Run(
        runners,
        finished - started,
        synced_twice=len(ids) - len(set(ids)),
        lost=unsynced + (args.objects - len(set(ids))),
        recovery=None if killed_at is None else finished - killed_at,
        takeover=None if killed_at is None else takeover_seconds(root, killed_wall),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--runners", default="1,2,4")
    parser.add_argument("--step-ms", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--warm-up", type=float, default=4.0, help="seconds for runners to start")
    parser.add_argument("--no-kill", action="store_true", help="skip the runs with a runner killed")
    parser.add_argument("--append", metavar="MD", help="append the tables to this Markdown file")
    args = parser.parse_args()
    counts = [int(c) for c in args.runners.split(",")]
    plain: list[Run] = []
    killed: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            plain.append(one_run(Path(tmp), args, count, kill_one=False))
            print(f"{count} runner(s): {plain[-1].rate(args.objects):.0f} objects/s", flush=True)
        for count in [] if args.no_kill else counts:
            if count > 1:
                killed.append(one_run(Path(tmp), args, count, kill_one=True))
                print(f"{count} runner(s), one killed: {killed[-1]}", flush=True)
    table = report(args, plain, killed)
    print(table)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write("\n" + table + "\n")
    return 0


def report(args: argparse.Namespace, plain: list[Run], killed: list[Run]) -> str:
    base = plain[0].rate(args.objects)
    lines = [
        "| runners | seconds | objects/s | ratio to 1 | synced twice | lost |",
        "|---|---|---|---|---|---|",
    ]
    for run in plain:
        rate = run.rate(args.objects)
        lines.append(
            f"| {run.runners} | {run.seconds:.1f} | {rate:.0f} | {rate / base:.2f}x "
            f"| {run.synced_twice} | {run.lost} |"
        )
    if not killed:
        return "\n".join(lines)
    lines += [
        "",
        "| runners (one SIGKILLed at half) | seconds | its objects in flight synced again after (s) "
        "| all synced after the kill (s) | synced twice | lost |",
        "|---|---|---|---|---|---|",
    ]
    for run in killed:
        lines.append(
            f"| {run.runners} | {run.seconds:.1f} | {run.takeover:.1f} | {run.recovery:.1f} "
            f"| {run.synced_twice} | {run.lost} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
