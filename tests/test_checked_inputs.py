"""Checked inputs: what the runtime reads at start (model-deps, numbers, step files, the log
file) is refused in one line naming the problem, never accepted to misbehave later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import run_cli
from sync_project import log_lines, make_project, write_config, xsync
from xsync.connect import connect

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"


class SyncCluster(SyncStep):
    observes = "Cluster"
"""


def _one_line(result: object) -> str:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    return str(lines[0])


def _generated_deps(project: Path) -> dict[str, list[list[str]]]:
    """The model-deps of the project's models, as `xsgen deps` writes them."""
    models = project / "models"
    made = run_cli("xprotogen", "deps", str(models / "core.xproto"), str(models / "cloud.xproto"))
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda deps: {**deps, "Galaxy": []}, "unknown models: Galaxy)"),
        (
            lambda deps: {**deps, "Cluster": [["Region", "zone", "clusters"]]},
            "unknown fields: Cluster.zone)",
        ),
        (
            lambda deps: {**deps, "Cluster": [["Realm", "region", "clusters"]]},
            "unknown peer models: Realm)",
        ),
    ],
)
def test_a_model_deps_file_that_contradicts_the_models_is_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], dict[str, Any]], problem: str
) -> None:
    make_project(tmp_path, STEPS)
    (tmp_path / "deps.json").write_text(json.dumps(change(_generated_deps(tmp_path))))
    config = write_config(tmp_path, dependency_graph="deps.json")
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith(f"xsync: {tmp_path / 'deps.json'}: does not match the models (")
    assert problem in line
    assert line.endswith(
        "; regenerate it with `xsgen deps` or leave dependency_graph out to derive it"
    )


@pytest.mark.parametrize("deps", [{}, {"Region": []}], ids=["empty", "no Cluster"])
def test_a_model_deps_file_that_omits_a_synced_model_is_completed_from_the_models(
    tmp_path: Path, deps: dict[str, Any]
) -> None:
    steps = STEPS.replace(
        'observes = "Region"\n',
        'observes = "Region"\n\n    def sync_record(self, obj):\n        raise RuntimeError("down")\n',
    )
    make_project(tmp_path, steps)
    (tmp_path / "deps.json").write_text(json.dumps(deps))
    config = write_config(tmp_path, dependency_graph="deps.json")
    with connect(config) as api:
        region = api.Region(name="eu")
        region.save()
        cluster = api.Cluster(name="c", region=region)
        cluster.save()
    result = xsync("run", str(config), "--once")
    assert result.returncode == 0, result.stderr
    warnings = [e["message"] for e in log_lines(tmp_path) if e["level"] == "warning"]
    assert (
        f"{tmp_path / 'deps.json'}: no entry for Cluster, whose objects link to others; their "
        "order is taken from the models (regenerate the file with `xsgen deps`)"
    ) in warnings
    with connect(config) as api:
        # The child waited for its failing parent instead of being synced before it.
        assert api.store.get("Cluster", cluster.id)["backend_code"] == 0
        assert (
            "Failed due to error in model Region"
            in api.store.get("Cluster", cluster.id)["backend_status"]
        )


def test_a_model_deps_file_from_xsgen_is_accepted(tmp_path: Path) -> None:
    make_project(tmp_path, STEPS)
    (tmp_path / "deps.json").write_text(json.dumps(_generated_deps(tmp_path)))
    config = write_config(tmp_path, dependency_graph="deps.json")
    result = xsync("run", str(config), "--once")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "key, written, shown",
    [
        ("loop_interval_seconds", ".inf", ".inf"),
        ("backoff_base_seconds", ".nan", ".nan"),
        ("backoff_cap_seconds", ".inf", ".inf"),
        ("step_timeout_seconds", "-.inf", "-.inf"),
        ("stop_grace_seconds", "-3", "-3"),
    ],
)
def test_non_finite_or_negative_numbers_are_refused(
    tmp_path: Path, key: str, written: str, shown: str
) -> None:
    config = make_project(tmp_path, STEPS, **{key: None})
    # JSON has no .inf: the option is added in YAML's own spelling.
    config.write_text(_as_block_yaml(json.loads(config.read_text().split("\n")[0]), key, written))
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    assert _one_line(result) == (
        f"xsync: {config}: {key}: expected a finite number > 0, got {shown}"
    )


def _as_block_yaml(options: dict[str, object], key: str, written: str) -> str:
    lines = [f"{name}: {json.dumps(value)}" for name, value in options.items()]
    return "\n".join([*lines, f"{key}: {written}"]) + "\n"


@pytest.mark.parametrize(
    "body, problem",
    [
        (
            "import sys\nsys.exit(3)\n",
            "sync_cloud.py:2: the module exits while being imported (SystemExit: 3)",
        ),
        ("raise KeyboardInterrupt\n", "sync_cloud.py:1: KeyboardInterrupt"),
        (
            "import no_such_module_here\n",
            "sync_cloud.py:1: ModuleNotFoundError: No module named 'no_such_module_here'",
        ),
    ],
)
def test_a_step_module_that_exits_or_raises_at_import_is_named(
    tmp_path: Path, body: str, problem: str
) -> None:
    config = make_project(tmp_path, body)
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    assert _one_line(result) == f"xsync: steps_dir: {tmp_path / 'steps'}/{problem}"


def test_a_log_file_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    make_project(tmp_path, STEPS)
    (tmp_path / "sync.log").mkdir()
    config = write_config(tmp_path, logging={"destination": "sync.log"})
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    assert _one_line(result) == (
        f"xsync: {config}: logging.destination: cannot write {tmp_path / 'sync.log'}: "
        "Is a directory"
    )
