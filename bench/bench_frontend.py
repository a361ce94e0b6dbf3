"""Front-end benchmark: `xsgen deps` against `xosgenx` end to end, and the in-process parse.

Usage: python bench/bench_frontend.py [--runs N]

* Runs `xsgen deps core.xproto` and `xosgenx --target model-deps.xtarget core.xproto` as whole
  processes, alternating so that background load hits both alike, and prints both medians and
  their ratio (goal: xsgen at least 3x faster). Both run with a bytecode cache (see
  `bytecode_env`).
* Times parsing core.xproto in-process, median of repeated parses after warm-up (goal: < 10 ms).
  Wall time and CPU time are both shown: on a shared machine the CPU time is the steadier one.
* Checks that the `deps` and `lint` paths import none of jinja2, black, grpc or kafka.

xosgenx lives in its own virtualenv: $XOSGENX names its executable; otherwise the script builds
`bench/.xosgenx-venv` (gitignored) the first time, which needs network access to PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT.parent / "shared" / "corpus" / "xproto" / "core.xproto"
XOSGENX_VENV = ROOT / "bench" / ".xosgenx-venv"
XOSGENX_REQUIREMENTS = [
    "PyYAML>=6",
    "Jinja2~=2.10",
    "MarkupSafe<2.1",
    "astunparse~=1.6.2",
    "colorama~=0.4.1",
    "inflect~=2.1.0",
    "plyxproto~=4.0.0",
    "ply~=3.11",
    "six",
]
HEAVY_MODULES = ("jinja2", "black", "grpc", "kafka")
PARSE_GOAL_MS = 10.0
SPEEDUP_GOAL = 3.0


def xosgenx_command() -> list[str]:
    """The xosgenx executable: $XOSGENX, or one installed into bench/.xosgenx-venv."""
    configured = os.environ.get("XOSGENX")
    if configured:
        return [configured]
    executable = XOSGENX_VENV / "bin" / "xosgenx"
    if not executable.exists():
        print(f"creating {XOSGENX_VENV} with xosgenx 4.0.4 ...", file=sys.stderr)
        venv.create(XOSGENX_VENV, with_pip=True)
        pip = [str(XOSGENX_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *XOSGENX_REQUIREMENTS], check=True)
        subprocess.run([*pip, "--no-deps", "xosgenx==4.0.4"], check=True)
    return [str(executable)]


def xsgen_command() -> list[str]:
    """The `xsgen` console script of the interpreter running this benchmark."""
    script = Path(sys.executable).parent / "xsgen"
    return [str(script)] if script.exists() else [sys.executable, "-m", "xprotogen"]


def time_process(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def bytecode_env(pycache: str) -> dict[str, str]:
    """The environment with a bytecode cache, as an installed package has one.

    Our checkout is an editable install: with PYTHONDONTWRITEBYTECODE set (as it is on the
    development machine) every run would compile xprotogen from source, about 20 ms that an
    installed wheel never pays, while xosgenx runs from its precompiled site-packages. The
    cache goes to a temporary directory so the benchmark writes nothing into the tree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def compare_end_to_end(runs: int) -> dict[str, float]:
    ours = [*xsgen_command(), "deps", str(CORE)]
    theirs = [*xosgenx_command(), "--target", "model-deps.xtarget", str(CORE)]
    with tempfile.TemporaryDirectory() as pycache:
        env = bytecode_env(pycache)
        # One unmeasured run each fills caches (bytecode, the grammar tables, the page cache).
        time_process(ours, env)
        time_process(theirs, env)
        ours_times, theirs_times = [], []
        for _ in range(runs):
            ours_times.append(time_process(ours, env))
            theirs_times.append(time_process(theirs, env))
    ours_median = statistics.median(ours_times)
    theirs_median = statistics.median(theirs_times)
    return {
        "xsgen_deps_median_s": ours_median,
        "xosgenx_model_deps_median_s": theirs_median,
        "speedup": theirs_median / ours_median,
    }


def time_in_process_parse(repeats: int = 50) -> dict[str, float]:
    from xprotogen.parser import parse_text

    text = CORE.read_text(encoding="utf-8")
    for _ in range(5):
        parse_text(text, str(CORE))
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        parse_text(text, str(CORE))
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return {
        "parse_core_median_ms": statistics.median(wall) * 1000,
        "parse_core_cpu_median_ms": statistics.median(cpu) * 1000,
    }


_IMPORT_PROBE = """
import contextlib, io, json, sys
from xprotogen.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(sys.argv[1:])
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))
"""


def heavy_imports(arguments: list[str]) -> list[str]:
    """Top-level heavy modules that an in-process CLI run with `arguments` imported."""
    probe = _IMPORT_PROBE.format(heavy=set(HEAVY_MODULES))
    done = subprocess.run(
        [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, check=True
    )
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (>= 10)")
    args = parser.parse_args()
    runs = max(args.runs, 10)

    parse = time_in_process_parse()
    print(
        f"parse core.xproto in-process: median {parse['parse_core_median_ms']:.2f} ms wall, "
        f"{parse['parse_core_cpu_median_ms']:.2f} ms CPU (goal < {PARSE_GOAL_MS:.0f} ms)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        deps_heavy = heavy_imports(["deps", str(CORE), "-o", str(Path(tmp) / "deps.json")])
    lint_heavy = heavy_imports(["lint", str(CORE)])
    print(
        f"heavy modules imported by deps: {deps_heavy or 'none'}; by lint: {lint_heavy or 'none'}"
    )

    timing = compare_end_to_end(runs)
    print(
        f"end to end over {runs} alternating runs: xsgen deps median "
        f"{timing['xsgen_deps_median_s'] * 1000:.0f} ms, xosgenx model-deps median "
        f"{timing['xosgenx_model_deps_median_s'] * 1000:.0f} ms, "
        f"xsgen is {timing['speedup']:.2f}x faster (goal >= {SPEEDUP_GOAL:.0f}x)"
    )
    return 1 if deps_heavy or lint_heavy else 0


if __name__ == "__main__":
    sys.exit(main())
