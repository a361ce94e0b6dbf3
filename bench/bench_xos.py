"""simpleexampleservice (the real CORD synchronizer, read in place) on xsync, with references.

    .venv/bin/python bench/bench_xos.py [--instances 100] [--rounds 3]

Three figures, each against a reference measured in the same run:
- start: `build_runtime` of the XOS folder (import hook, XOS config, convenience wrappers,
  the synchronizer's modules) against the same models with no step folders;
- passes: policies and sync until idle for N service instances (the policy builds six objects
  for each), with the reaper against without it;
- logging: a keyword log call (`log.debug("msg", o=obj, n=3)`) against a stdlib call with the
  same context in `extra=`, both below the level (the common case) and written to a null handler.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FOLDER = SHARED / "xos-synchronizers" / "simpleexampleservice" / "xos" / "synchronizer"
CORPUS = SHARED / "corpus" / "xproto"


def config(tmp: Path, name: str, *, steps: bool) -> Path:
    data: dict[str, Any] = {
        "name": name,
        "models_dir": str(FOLDER / "models"),
        "models": [
            str(CORPUS / "core.xproto"),
            str(CORPUS / "kubernetes.xproto"),
            str(FOLDER / "models" / "simpleexampleservice.xproto"),
        ],
        "store": f"sqlite:///{tmp / (name + '.db')}",
        "logging": {"level": "WARNING"},
    }
    if steps:
        data.update(
            steps_dir=str(FOLDER / "steps"),
            model_policies_dir=str(FOLDER / "model_policies"),
            event_steps_dir=str(FOLDER / "event_steps"),
        )
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def populate(path: Path, n: int) -> None:
    import xsync

    with xsync.connect(path) as api:
        site = api.Site(name="s", login_base="s", abbreviated_name="s")
        site.save()
        kubernetes = api.KubernetesService(name="kubernetes")
        kubernetes.save()
        service = api.SimpleExampleService(name="ses", service_message="hello", service_secret="x")
        service.save()
        domain = api.TrustDomain(name="default", owner=kubernetes)
        domain.save()
        image = api.Image(name="httpd", kind="container")
        image.save()
        api.Slice(
            name="s_ses", site=site, service=service, trust_domain=domain, default_image=image
        ).save()
        for i in range(n):
            api.SimpleExampleServiceInstance(
                name=f"page{i}", owner=service, tenant_message=f"m{i}"
            ).save()


def timed_start(path: Path, repeat: int = 7) -> float:
    from xsync.config import load_config
    from xsync.runner import build_runtime

    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        runtime = build_runtime(load_config(path))
        best = min(best, time.perf_counter() - started)
        runtime.close()
    return best


def timed_passes(path: Path, *, reaper: bool) -> float:
    from xsync.config import load_config
    from xsync.runner import Runner, build_runtime

    runtime = build_runtime(load_config(path))
    try:
        runner = Runner(
            runtime.engine,
            runtime.store,
            policies=runtime.policy_engine,
            reaper=runtime.reaper if reaper else None,
        )
        started = time.perf_counter()
        assert runner.run_until_idle(timeout=600)
        return time.perf_counter() - started
    finally:
        runtime.close()


def timed_logging(calls: int) -> dict[str, float]:
    from xsync.compat.xos.logs import KeywordLogger

    base = logging.getLogger("xsync.bench-xos")
    base.propagate = False
    base.addHandler(logging.NullHandler())
    keyword = KeywordLogger(base)
    obj = {"model_name": "Site", "pk": 1}
    out: dict[str, float] = {}
    for level, label in ((logging.INFO, "below level"), (logging.DEBUG, "written")):
        base.setLevel(level)
        started = time.perf_counter()
        for _ in range(calls):
            keyword.debug("msg", o=obj, n=3)
        out[f"keyword {label}"] = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(calls):
            base.debug("msg", extra={"o": obj, "n": 3})
        out[f"stdlib {label}"] = time.perf_counter() - started
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--log-calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not FOLDER.is_dir():
        print(f"skipped: the real XOS synchronizers are missing at {FOLDER.parent.parent}")
        return 0
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-xos-") as tmp_name:
        tmp = Path(tmp_name)
        with_code, without = config(tmp, "ses", steps=True), config(tmp, "bare", steps=False)
        populate(with_code, 0)
        populate(without, 0)
        xos_start, bare_start = timed_start(with_code), timed_start(without)
        print(
            f"start: XOS folder {xos_start * 1000:.1f} ms, models only {bare_start * 1000:.1f} ms, "
            f"ratio {xos_start / bare_start:.2f}"
        )
        runs = {True: float("inf"), False: float("inf")}
        # Alternating rounds, best of each: the machine is shared, so single runs are noisy.
        for round_ in range(args.rounds):
            for reaper in (True, False):
                path = config(tmp, f"ses-{round_}-{'reaper' if reaper else 'plain'}", steps=True)
                populate(path, args.instances)
                runs[reaper] = min(runs[reaper], timed_passes(path, reaper=reaper))
        n = args.instances
        print(
            f"passes: {n} instances until idle, with reaper {runs[True]:.2f} s ({n / runs[True]:.0f} instances/s), "
            f"without {runs[False]:.2f} s ({n / runs[False]:.0f} instances/s), ratio {runs[True] / runs[False]:.2f}"
        )
    logging.disable(logging.NOTSET)
    logged = timed_logging(args.log_calls)
    for label in ("below level", "written"):
        k, s = logged[f"keyword {label}"], logged[f"stdlib {label}"]
        per = 1e9 / args.log_calls
        print(
            f"logging {label}: keyword {k * per:.0f} ns/call, stdlib {s * per:.0f} ns/call, ratio {k / s:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
