"""`xsgen scaffold`: a runnable synchronizer for every corpus service, and safe regeneration.

The corpus tests share one module-scoped build: every service is scaffolded once (core
first), the generated tests of all services run in one pytest subprocess and black checks
all of them at once; each test id then reads its own service's part of the results, so a
failure still names the file.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from conftest import CORE_XPROTO, ROOT, corpus_file, corpus_names, run_cli
from xprotogen.loader import load_schema
from xprotogen.targets.scaffold import compare, plan_scaffold, sample_chain, write_scaffold
from xsync.config import _TOP_KEYS, load_config

SERVICES = [n for n in corpus_names() if n != "core"]
HELLO = ROOT / "examples" / "hello" / "hello.xproto"
_MEMORY_LIMIT = 4 * 1024**3


def xsgen(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("xprotogen", "scaffold", *args)


def python_files(project: Path) -> list[Path]:
    """What the scaffold writes in Python, without protoc's output."""
    return sorted(p for p in project.rglob("*.py") if "_pb2" not in p.name)


# --- every corpus service ------------------------------------------------------------------


@dataclass
class CorpusBuild:
    root: Path
    errors: dict[str, str] = field(default_factory=dict)  # service -> why it did not scaffold
    unformatted: set[Path] = field(default_factory=set)
    test_results: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (test, failure)

    def project(self, service: str) -> Path:
        if service in self.errors:
            pytest.fail(f"scaffold failed: {self.errors[service]}")
        return self.root / service


@pytest.fixture(scope="module")
def corpus_build() -> Iterator[CorpusBuild]:
    # Not tmp_path_factory: a parallel pytest run may prune its base directory meanwhile.
    with tempfile.TemporaryDirectory(prefix="xsgen-scaffolds-") as tmp:
        yield _build_corpus(Path(tmp))


def _scaffold_one(service: str, root: Path) -> str | None:
    """Scaffold one corpus service under `root`; why it failed, or None."""
    sources = [CORE_XPROTO, corpus_file(service)]
    try:
        write_scaffold(plan_scaffold(load_schema(sources), sources), root / service)
    except Exception as exc:  # recorded for this service's tests, not the others'
        return f"{type(exc).__name__}: {exc}"
    return None


def _build_corpus(root: Path) -> CorpusBuild:
    build = CorpusBuild(root)
    # Scaffolding is CPU-bound (black formats each generated client): one process per core,
    # spawned, since forking a process that runs gRPC and Kafka threads is not safe.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=spawn) as pool:
        errors = pool.map(_scaffold_one, SERVICES, [root] * len(SERVICES))
        build.errors = {s: e for s, e in zip(SERVICES, errors) if e is not None}
    projects = [build.root / s for s in SERVICES if s not in build.errors]
    # black checks the files while the generated tests run: two processes, two cores.
    with ThreadPoolExecutor(max_workers=1) as background:
        unformatted = background.submit(
            _black_check, [f for p in projects for f in python_files(p)]
        )
        build.test_results = _run_generated_tests(build.root, projects)
        build.unformatted = unformatted.result()
    return build


def _limit_memory() -> None:
    # A runaway generated test must not take the shared machine down with it.
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))


def _black_check(files: list[Path]) -> set[Path]:
    done = subprocess.run(
        [sys.executable, "-m", "black", "--check", "--line-length", "100", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {Path(p) for p in re.findall(r"^would reformat (.+)$", done.stderr, re.M)}


def _run_generated_tests(root: Path, projects: list[Path]) -> dict[str, list[tuple[str, str]]]:
    """Every project's generated tests in one pytest run; per project, (test name, failure)."""
    report = root / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "--rootdir",
            str(root),
            "-o",
            "junit_family=xunit1",
            f"--junitxml={report}",
            *[str(p / "tests") for p in projects],
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_memory,
    )
    results: dict[str, list[tuple[str, str]]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        service = Path(case.get("file", "")).parts[0]
        problem = next(iter(case.findall("failure") + case.findall("error")), None)
        failure = "" if problem is None else (problem.get("message") or "failed")
        results.setdefault(service, []).append((case.get("name", "?"), failure))
    return results


@pytest.mark.parametrize("service", SERVICES)
def test_the_generated_package_imports(corpus_build: CorpusBuild, service: str) -> None:
    project = corpus_build.project(service)
    modules = [p for p in python_files(project) if p.parent.name != "tests"]
    assert (project / "api" / "client.py") in modules
    for index, path in enumerate(modules):
        spec = importlib.util.spec_from_file_location(f"scaffold_{service}_{index}", path)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.mark.parametrize("service", SERVICES)
def test_the_generated_package_passes_mypy_strict_and_black(
    corpus_build: CorpusBuild, service: str
) -> None:
    project = corpus_build.project(service)
    assert not corpus_build.unformatted & set(python_files(project))
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(ROOT / "runtime"), str(ROOT)]))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(corpus_build.root / ".mypy")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_the_generated_tests_pass_as_generated(corpus_build: CorpusBuild, service: str) -> None:
    corpus_build.project(service)
    results = corpus_build.test_results.get(service, [])
    assert any(name.startswith("test_a_pass_over_an_empty_store") for name, _ in results), results
    assert [(name, failure) for name, failure in results if failure] == []


def test_simpleexampleservice_gets_a_step_per_model_and_samples_that_sync() -> None:
    sources = [CORE_XPROTO, corpus_file("simpleexampleservice")]
    plan = plan_scaffold(load_schema(sources), sources)
    steps = sorted(p for p in plan.files if p.startswith("steps/"))
    assert steps == [
        "steps/sync_colornew.py",
        "steps/sync_embeddedimagenew.py",
        "steps/sync_serviceinstancewithcompute2.py",
        "steps/sync_simpleexampleservice.py",
        "steps/sync_simpleexampleserviceinstance.py",
    ]
    assert not any("sync_slice" in p or "sync_site" in p for p in plan.files)  # core's models
    step = plan.files["steps/sync_simpleexampleserviceinstance.py"].data.decode()
    assert 'observes = "SimpleExampleServiceInstance"' in step
    assert "def sync_record(self, obj: SimpleExampleServiceInstance) -> None:" in step
    assert "* `tenant_message`: Tenant Message to Display" in step
    assert "TODO" in step and "idempotent" in step
    chain = sample_chain(load_schema(sources), "SimpleExampleServiceInstance")
    assert chain is not None and [o.model for o in chain] == [
        "Service",
        "SimpleExampleServiceInstance",
    ]
    assert chain[-1].links == {"owner_id": 0} and chain[-1].values == {"tenant_message": "sample"}


# --- what gets a step ----------------------------------------------------------------------

OPTIONS_XPROTO = """
option app_label = "opts";
message Base (XOSBase) {
    option abstract = True;
    required string name = 1;
}
message Plain (Base) {
    required int32 size = 1;
}
message Unsynced (Base) {
    option no_sync = True;
}
message Unpoliced (Base) {
    option no_policy = True;
}
message SyncedAfterAll (Base) {
    option no_sync = False;
}
"""


def test_abstract_and_no_sync_models_get_no_step_and_no_policy_follows_its_option(
    tmp_path: Path,
) -> None:
    source = tmp_path / "opts.xproto"
    source.write_text(OPTIONS_XPROTO)
    plan = plan_scaffold(load_schema([source], core="auto"), [source])
    steps = sorted(p for p in plan.files if p.startswith("steps/"))
    policies = sorted(p for p in plan.files if p.startswith("model_policies/"))
    assert steps == [
        "steps/sync_plain.py",
        "steps/sync_syncedafterall.py",
        "steps/sync_unpoliced.py",
    ]
    assert policies == [
        "model_policies/model_policy_plain.py",
        "model_policies/model_policy_syncedafterall.py",
        "model_policies/model_policy_unsynced.py",
    ]
    assert plan.step_models == ("Plain", "Unpoliced", "SyncedAfterAll")


# --- the config ----------------------------------------------------------------------------


@pytest.fixture
def hello_project(tmp_path: Path) -> tuple[Path, Path]:
    """hello.xproto (alone, for speed) scaffolded by the CLI: (its xproto copy, the project)."""
    source = tmp_path / "hello.xproto"
    source.write_text(HELLO.read_text())
    project = tmp_path / "project"
    result = xsgen(str(source), "-o", str(project))
    assert result.returncode == 0, result.stderr
    return source, project


def test_the_config_loads_and_names_every_option(hello_project: tuple[Path, Path]) -> None:
    _, project = hello_project
    text = (project / "config.yaml").read_text()
    for key in _TOP_KEYS:
        assert re.search(rf"^(# )?{key}:", text, re.M), key
    config = load_config(project / "config.yaml")
    assert config.store == f"sqlite:///{project / 'hello.db'}"
    assert config.model_files == (project / "models" / "hello.xproto",)
    assert (
        config.steps_dir == project / "steps" and config.event_steps_dir == project / "event_steps"
    )
    assert config.dependency_graph == project / "model-deps"


def test_models_keep_core_first_in_the_config(tmp_path: Path) -> None:
    sources = [CORE_XPROTO, HELLO]
    plan = plan_scaffold(load_schema(sources), sources)
    config = plan.files["config.yaml"].data.decode()
    assert "models:\n  - core.xproto\n  - hello.xproto\n" in config
    assert plan.files["models/core.xproto"].data == CORE_XPROTO.read_bytes()


# --- regeneration and --check ----------------------------------------------------------------


def _add_field(source: Path) -> None:
    text = source.read_text().replace(
        'help_text = "Name of the world", tosca_key = True];',
        'help_text = "Name of the world", tosca_key = True];\n'
        "    optional string motto = 2 [max_length = 64];",
    )
    assert "motto" in text
    source.write_text(text)


def test_regeneration_keeps_an_edited_step_and_refreshes_the_api(
    hello_project: tuple[Path, Path],
) -> None:
    source, project = hello_project
    step = project / "steps" / "sync_world.py"
    edited = step.read_text().replace("# TODO: push", "# mine: push")
    step.write_text(edited)
    (project / "tests" / "test_hello_sync.py").unlink()
    _add_field(source)
    result = xsgen(str(source), "-o", str(project))
    assert result.returncode == 0, result.stderr
    assert step.read_text() == edited
    assert "motto: Column[str | None]" in (project / "api" / "client.py").read_text()
    assert "motto" in (project / "models" / "hello.xproto").read_text()
    assert (project / "tests" / "test_hello_sync.py").is_file()  # a deleted user file comes back
    assert "wrote tests/test_hello_sync.py" in result.stdout
    assert "wrote steps/sync_world.py" not in result.stdout


def test_check_is_quiet_and_exits_0_when_in_sync(hello_project: tuple[Path, Path]) -> None:
    source, project = hello_project
    (project / "steps" / "sync_world.py").write_text("# edited by the user\n")
    result = xsgen(str(source), "-o", str(project), "--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_reports_an_added_field_and_writes_nothing(
    hello_project: tuple[Path, Path],
) -> None:
    source, project = hello_project
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    _add_field(source)
    result = xsgen(str(source), "-o", str(project), "--check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "changed api/client.py" in lines and "changed models/hello.xproto" in lines
    assert "changed api/hello.proto" in lines and not any("steps/" in line for line in lines)
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


def test_check_reports_a_new_model_as_missing_user_files(
    hello_project: tuple[Path, Path],
) -> None:
    source, project = hello_project
    source.write_text(
        source.read_text() + "\nmessage Planet (XOSBase) {\n    required string name = 1;\n}\n"
    )
    result = xsgen(str(source), "-o", str(project), "--check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "missing steps/sync_planet.py" in lines
    assert "missing model_policies/model_policy_planet.py" in lines
    assert "changed model-deps" in lines
    assert not (project / "steps" / "sync_planet.py").exists()


def test_stale_toolchain_files_are_reported_then_removed(
    hello_project: tuple[Path, Path],
) -> None:
    source, project = hello_project
    (project / "api" / "old_pb2.py").write_text("# from a model that is gone\n")
    (project / "steps" / "sync_gone.py").write_text("# the user's: never removed\n")
    check = xsgen(str(source), "-o", str(project), "--check")
    assert (check.returncode, check.stdout) == (1, "removed api/old_pb2.py\n")
    assert xsgen(str(source), "-o", str(project)).returncode == 0
    assert not (project / "api" / "old_pb2.py").exists()
    assert (project / "steps" / "sync_gone.py").exists()
    plan = plan_scaffold(load_schema([source], core="auto"), [source])
    assert compare(plan, project).lines() == []


def test_check_on_a_missing_directory_lists_everything_and_creates_nothing(
    tmp_path: Path,
) -> None:
    result = xsgen(str(HELLO), "-o", str(tmp_path / "nowhere"), "--check")
    assert result.returncode == 1
    assert "added api/client.py" in result.stdout and "missing config.yaml" in result.stdout
    assert not (tmp_path / "nowhere").exists()


# --- errors ----------------------------------------------------------------------------------


def test_two_inputs_with_the_same_file_name_are_one_line_and_exit_1(tmp_path: Path) -> None:
    other = tmp_path / "hello.xproto"
    other.write_text("message Other {\n    required string name = 2;\n}\n")
    result = xsgen(str(HELLO), str(other), "-o", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "same file name" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_syntax_error_names_the_file_and_writes_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xproto"
    broken.write_text("message Broken {\n    required string = 1;\n}\n")
    result = xsgen(str(broken), "-o", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{broken}:2" in result.stderr
    assert not (tmp_path / "out").exists()
