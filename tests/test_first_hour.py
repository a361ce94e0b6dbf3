"""A new user's first hour, through the CLIs: one service file is enough, and mistakes are loud.

Pinned here: a service file alone scaffolds and runs (the built-in core is read first); a
typo in a link target is an error with a "did you mean", and the scaffold writes nothing; a
step for a model that cannot record a sync is refused at start; dependencies get no steps;
and in one `--until-idle` run an unchanged object is synced at most once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import CORE_XPROTO, run_cli
from xprotogen.loader import load_schema
from xprotogen.targets.scaffold import own_files, synced_models
from xsync.config import load_config
from xsync.connect import connect
from xsync.runner import Runner, build_runtime

SHOP = """option app_label = "shop";

// A shop the service runs.
message Shop (Service) {
    optional string motto = 1 [max_length = 80, help_text = "What the shop stands for"];
}

// An order placed with a shop.
message Order (ServiceInstance) {
    required string item = 1 [max_length = 40, help_text = "What was ordered"];
}
"""

TYPO = """option app_label = "lab";

message Cluster (XOSBase) {
    required string name = 1 [max_length = 40];
}
message Machine (XOSBase) {
    required string name = 1 [max_length = 40];
    required manytoone cluster->Clustr:machines = 2:1001;
}
"""


def _xsgen(*args: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    return run_cli("xprotogen", *args, cwd=cwd)


# --- a service file alone ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`xsgen scaffold shop.xproto -o shop`: the one file, as the design card writes it."""
    root = tmp_path_factory.mktemp("shop")
    (root / "shop.xproto").write_text(SHOP)
    done = _xsgen("scaffold", "shop.xproto", "-o", "shop", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


def test_a_service_file_alone_lints_clean(shop: Path) -> None:
    done = _xsgen("lint", "--strict", "shop.xproto", cwd=shop)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_service_file_alone_scaffolds_steps_for_its_own_models_only(shop: Path) -> None:
    steps = sorted(p.name for p in (shop / "shop" / "steps").glob("*.py"))
    assert steps == ["sync_order.py", "sync_shop.py"]
    assert sorted(p.name for p in (shop / "shop" / "models").iterdir()) == ["shop.xproto"]


def test_one_file_scaffold_equals_the_scaffold_with_core_listed_first(shop: Path) -> None:
    assert _xsgen("core", "-o", "core.xproto", cwd=shop).returncode == 0
    done = _xsgen("scaffold", "core.xproto", "shop.xproto", "-o", "listed", cwd=shop)
    assert done.returncode == 0, done.stderr
    one, two = shop / "shop", shop / "listed"
    generated = [
        "model-deps",
        *(f"api/{p.name}" for p in sorted((one / "api").iterdir()) if p.is_file()),
    ]
    assert len(generated) > 4
    for name in generated:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert sorted(p.name for p in (one / "steps").iterdir()) == sorted(
        p.name for p in (two / "steps").iterdir()
    )


def test_deps_without_file_in_a_synchronizer_folder_prints_its_model_deps(shop: Path) -> None:
    done = _xsgen("deps", cwd=shop / "shop")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (shop / "shop" / "model-deps").read_text()
    assert json.loads(done.stdout)["Order"][0] == ["Service", "owner", "service_instances"]


def test_deps_without_file_elsewhere_is_a_usage_error(tmp_path: Path) -> None:
    done = _xsgen("deps", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    first, usage = done.stderr.splitlines()
    assert first == (
        f"xsgen deps: error: no FILE given and no config.yaml in {tmp_path.resolve()}: "
        "give xproto files, or run it in a synchronizer's folder"
    )
    assert usage.startswith("usage: xsgen deps")


def test_the_scaffolded_service_runs_until_idle_and_syncs_each_object_once(shop: Path) -> None:
    project = shop / "run"
    shutil.copytree(shop / "shop", project)
    config = project / "config.yaml"
    with connect(config) as api:
        shop_obj = api.Shop(name="corner")
        shop_obj.save()
        for item in ("tea", "bread", "milk"):
            api.Order(owner=shop_obj, item=item).save()
    done = run_cli("xsync.cli", "run", str(config), "--until-idle", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    synced = Counter(re.findall(r"sync model=(\w+) id=(\d+) outcome=synced", done.stderr))
    assert sorted(synced.values()) == [1, 1, 1, 1]
    status = run_cli("xsync.cli", "status", str(config), "--json")
    assert status.returncode == 0, status.stderr
    models = json.loads(status.stdout)["models"]
    assert (models["Shop"]["ok"], models["Order"]["ok"]) == (1, 3)
    assert (models["Shop"]["pending"], models["Order"]["pending"]) == (0, 0)


# --- mistakes ---------------------------------------------------------------------------------


def test_a_typo_in_a_link_target_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "lab.xproto").write_text(TYPO)
    expected = (
        "lab.xproto:8:33: error: link 'Machine.cluster' points at undefined model 'Clustr'; "
        "did you mean 'Cluster'? [undefined-link-target]"
    )
    lint = _xsgen("lint", "lab.xproto", cwd=tmp_path)
    assert lint.returncode == 1
    assert lint.stdout.splitlines()[0] == expected
    scaffold = _xsgen("scaffold", "lab.xproto", "-o", "lab", cwd=tmp_path)
    assert scaffold.returncode == 1
    lines = scaffold.stderr.splitlines()
    assert (lines[0], lines[-1]) == (
        expected,
        "xsgen scaffold: error: nothing written to lab: fix the 1 error above first",
    )
    assert not (tmp_path / "lab").exists()
    for target in (("client",), ("graph",), ("proto", "-o", "api")):
        done = _xsgen(target[0], "lab.xproto", *target[1:], cwd=tmp_path)
        assert (done.returncode, done.stderr.splitlines()[0]) == (1, expected), target


def test_an_undefined_base_is_an_error_at_its_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "svc.xproto").write_text("message Thing (ServiceInstanse) {\n}\n")
    done = _xsgen("lint", "svc.xproto", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        "svc.xproto:1:16: error: model 'Thing' derives from undefined model 'ServiceInstanse'; "
        "did you mean 'ServiceInstance'? [undefined-base]"
    )


LIFELESS = """option app_label = "bare";

message Thing {
    required string name = 2 [max_length = 40];
}
"""
LIFELESS_STEP = """from xsync import SyncStep


class SyncThing(SyncStep):
    observes = "Thing"

    def sync_record(self, obj):
        pass
"""


def test_a_step_for_a_model_that_cannot_record_a_sync_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bare.xproto").write_text(LIFELESS)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "sync_thing.py").write_text(LIFELESS_STEP)
    config = tmp_path / "sync.yaml"
    config.write_text(
        json.dumps(
            {
                "name": "bare",
                "models_dir": "models",
                "steps_dir": "steps",
                "store": "sqlite:///s.db",
            }
        )
    )
    done = run_cli("xsync.cli", "run", str(config), "--until-idle", "--timeout", "10")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "xsync: step SyncThing observes 'Thing', which cannot record a sync (no updated, "
        "enacted, backend_code, backend_status fields): derive Thing from XOSBase, the core "
        "model that carries them, or remove the step"
    ]


def test_the_scaffold_writes_no_step_for_a_model_that_cannot_record_a_sync(tmp_path: Path) -> None:
    (tmp_path / "bare.xproto").write_text(LIFELESS)
    done = _xsgen("scaffold", "bare.xproto", "-o", "bare", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "xsgen scaffold: note: Thing: no sync step, since it cannot record a sync (no updated, "
        "enacted, backend_code, backend_status fields); derive it from XOSBase to synchronize it"
    ]
    assert list((tmp_path / "bare" / "steps").iterdir()) == []


def test_dependencies_get_no_steps_unless_named(tmp_path: Path) -> None:
    base = tmp_path / "infra.xproto"
    base.write_text(
        'option app_label = "infra";\nmessage Rack (XOSBase) {\n    required string name = 1 [max_length = 9];\n}\n'
    )
    service = tmp_path / "app.xproto"
    service.write_text(
        'option app_label = "app";\nmessage Server (XOSBase) {\n'
        "    required manytoone rack->Rack:servers = 1:1001;\n}\n"
    )
    paths = [str(base), str(service)]
    schema = load_schema(paths, core="auto")
    default = [m.name for m in synced_models(schema, own_files(paths))]
    named = [m.name for m in synced_models(schema, own_files(paths, [str(base), str(service)]))]
    assert (default, named) == (["Server"], ["Rack", "Server"])


def test_naming_a_service_file_that_is_not_an_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "shop.xproto").write_text(SHOP)
    done = _xsgen("scaffold", "shop.xproto", "--service", "other.xproto", "-o", "out", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        1,
        "xsgen: error: --service other.xproto: not one of the input files\n",
    )


# --- the invariant: at most one sync per unchanged object and pass run ----------------------

CHAIN = """option app_label = "chain";

message Region (XOSBase) {
    required string name = 1 [max_length = 40];
}
message Cluster (XOSBase) {
    required string name = 1 [max_length = 40];
    required manytoone region->Region:clusters = 2:1001;
}
message Machine (XOSBase) {
    required string name = 1 [max_length = 40];
    required manytoone cluster->Cluster:machines = 2:1001;
}
"""
CHAIN_STEPS = """from pathlib import Path

from xsync import SyncStep

CALLS = Path(__file__).with_name("calls.log")


class Recording(SyncStep):
    def sync_record(self, obj):
        if obj.name.startswith("bad"):
            raise RuntimeError("refused " + obj.name)
        with CALLS.open("a") as out:
            out.write(f"{self.observes} {obj.id}\\n")


class SyncRegion(Recording):
    observes = "Region"


class SyncCluster(Recording):
    observes = "Cluster"


class SyncMachine(Recording):
    observes = "Machine"
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("chain")
    (root / "models").mkdir()
    (root / "models" / "chain.xproto").write_text(CHAIN)
    (root / "steps").mkdir()
    (root / "steps" / "sync_chain.py").write_text(CHAIN_STEPS)
    (root / "model-deps").write_text(
        _xsgen("deps", "--with-core", str(root / "models" / "chain.xproto")).stdout
    )
    yield root


NAMES = st.sampled_from(["ok", "bad"])


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    regions=st.lists(NAMES, min_size=1, max_size=3),
    clusters=st.lists(st.tuples(st.integers(0, 2), NAMES), max_size=4),
    nodes=st.lists(st.tuples(st.integers(0, 3), NAMES), max_size=5),
)
def test_an_unchanged_object_is_synced_at_most_once_per_until_idle_run(
    chain: Path, regions: list[str], clusters: list[tuple[int, str]], nodes: list[tuple[int, str]]
) -> None:
    calls = chain / "steps" / "calls.log"
    calls.unlink(missing_ok=True)
    store = chain / "store.db"
    store.unlink(missing_ok=True)
    config_path = chain / "sync.yaml"
    config_path.write_text(
        json.dumps(
            {
                "name": "chain",
                "models_dir": "models",
                "steps_dir": "steps",
                "dependency_graph": "model-deps",
                "store": f"sqlite:///{store}",
                # A failure backs off past the run's end: the run ends idle, not on its timeout.
                "backoff_base_seconds": 60,
                "backoff_cap_seconds": 60,
                "logging": {"level": "ERROR", "destination": "sync.log"},
            }
        )
    )
    config = load_config(config_path)
    with connect(config) as api:
        made_regions = []
        for index, name in enumerate(regions):
            region = api.Region(name=f"{name}-r{index}")
            region.save()
            made_regions.append(region)
        made_clusters = []
        for index, (parent, name) in enumerate(clusters):
            cluster = api.Cluster(
                name=f"{name}-c{index}", region=made_regions[parent % len(made_regions)]
            )
            cluster.save()
            made_clusters.append(cluster)
        for index, (parent, name) in enumerate(nodes):
            if made_clusters:
                api.Machine(
                    name=f"{name}-m{index}", cluster=made_clusters[parent % len(made_clusters)]
                ).save()
    runtime = build_runtime(config)
    try:
        runner = Runner(runtime.engine, runtime.store, interval=0.01)
        assert runner.run_until_idle(timeout=20)
    finally:
        runtime.close()
    synced = Counter(calls.read_text().splitlines() if calls.exists() else [])
    assert [key for key, count in synced.items() if count > 1] == []
    expected_ok = sum(name == "ok" for name in regions)
    assert sum(k.startswith("Region") for k in synced) == expected_ok


# --- small things of the first hour ------------------------------------------------------------


def test_the_generated_projects_own_instructions_pass_as_generated(shop: Path) -> None:
    # As its README says: `mypy` and `pytest tests`, in the project, with nothing set up.
    project = shop / "as-generated"
    shutil.copytree(shop / "shop", project)
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    for command in (["mypy"], ["pytest", "-q", "-p", "no:cacheprovider", "tests"]):
        done = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])


def test_generated_files_honour_the_umask(shop: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    for path in ("config.yaml", "model-deps", "api/client.py", "steps/sync_shop.py"):
        mode = stat.S_IMODE((shop / "shop" / path).stat().st_mode)
        assert mode == 0o666 & ~umask, (path, oct(mode))  # 0644 under the usual umask


@pytest.mark.parametrize(
    "command",
    [("xprotogen", "core"), ("xsync.cli", "status", "config.yaml")],
    ids=["xsgen", "xsync"],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(
    shop: Path, command: tuple[str, ...]
) -> None:
    # `xsync status config.yaml | head -1`: the pipe closes before the command is done writing.
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=shop / "shop",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=60) == 1
    assert errors == b""
