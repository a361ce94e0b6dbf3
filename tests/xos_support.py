"""Running the real CORD synchronizers of ../shared/xos-synchronizers on xsync, for the tests.

The synchronizers are read in place (never copied, never edited): the xsync config written
here points its step folders into them, and its model list at the corpus's core and service
xproto files plus the synchronizer's own. Without ../shared the tests skip with one line;
in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import CORPUS, IN_CI, ROOT

SYNCHRONIZERS = ROOT.parent / "shared" / "xos-synchronizers"

# The xproto files each synchronizer's models build on (core first), from the corpus.
MODELS_OF = {
    "simpleexampleservice": ["core", "kubernetes"],
    "exampleservice": ["core", "openstack"],
    "att-workflow-driver": ["core", "volt", "rcord"],
}


def synchronizer_dir(service: str) -> Path:
    """`xos/synchronizer` of a real synchronizer; skips (fails in CI) when ../shared is absent."""
    folder = SYNCHRONIZERS / service / "xos" / "synchronizer"
    if not folder.is_dir() or not (CORPUS / "xproto" / "core.xproto").is_file():
        message = f"the real XOS synchronizers are missing at {SYNCHRONIZERS}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return folder


def write_config(tmp_path: Path, service: str, *, store: str | None = None, **extra: Any) -> Path:
    """An xsync config whose step folders are the synchronizer's own; returns its path."""
    folder = synchronizer_dir(service)
    models = [CORPUS / "xproto" / f"{name}.xproto" for name in MODELS_OF[service]]
    models += sorted((folder / "models").glob("*.xproto"))
    data: dict[str, Any] = {
        "name": service,
        "models_dir": str(folder / "models"),
        "models": [str(p) for p in models],
        "store": store or f"sqlite:///{tmp_path / (service + '.db')}",
        "backoff_base_seconds": 0.05,
        "backoff_cap_seconds": 0.2,
    }
    for key in ("steps", "model_policies", "event_steps", "pull_steps"):
        if (folder / key).is_dir():
            data[f"{key}_dir"] = str(folder / key)
    if (folder / "model-deps").is_file() and (folder / "model-deps").read_text().strip():
        data["dependency_graph"] = str(folder / "model-deps")
    data.update(extra)
    path = tmp_path / f"{service}-xsync.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def build(config_path: Path, log: logging.Logger | None = None) -> Any:
    """The runtime of `config_path` (close it)."""
    from xsync.config import load_config
    from xsync.runner import build_runtime

    return build_runtime(load_config(config_path), log=log)


def runner_of(runtime: Any, *, events: bool = False) -> Any:
    """A runner as `xsync run` makes it; with `events`, passes consume the waiting events."""
    from xsync.runner import Runner, build_event_engine

    engine = build_event_engine(runtime, logging.getLogger("xsync")) if events else None
    if events:
        assert engine is not None, "no usable event bus in the config"
    return Runner(
        runtime.engine,
        runtime.store,
        interval=0.2,
        policies=runtime.policy_engine,
        pulls=runtime.pull_scheduler,
        reaper=runtime.reaper,
        events=engine,
        events_timeout=20.0,
    )


def user_api(config_path: Path) -> Any:
    """The models as a user (a script, the UI) sees them: saves move `updated`."""
    import xsync

    return xsync.connect(config_path)


def records(api: Any, model: str) -> list[Any]:
    return list(api.get_model_class(model).objects.all())


def opened(config_path: Path) -> Iterator[Any]:
    runtime = build(config_path)
    try:
        yield runtime
    finally:
        runtime.close()
