"""Run every `bench/bench_*.py`, one after the other, and fail if any of them fails.

Usage: python bench/run_all.py [NAME ...]   (NAME filters by substring, e.g. `frontend`)

Each benchmark runs in its own process with this interpreter, so they cannot disturb each
other's imports or caches; their output is passed through unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover(filters: list[str]) -> list[Path]:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    return [s for s in scripts if not filters or any(f in s.stem for f in filters)]


def main(argv: list[str]) -> int:
    failed: list[str] = []
    for script in discover(argv):
        print(f"== {script.stem}", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)]).returncode
        print(
            f"== {script.stem}: exit {code} in {time.perf_counter() - started:.1f} s\n", flush=True
        )
        if code != 0:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
