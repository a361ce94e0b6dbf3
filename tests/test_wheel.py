"""The wheel: it carries its data files, and an installed `xsgen deps` matches the golden output."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import CORE_XPROTO, CORPUS, ROOT, corpus_file, require_shared
from xprotogen.loader import load_schema
from xprotogen.targets.deps import render_model_deps

pytestmark = pytest.mark.slow


SOURCES = ("pyproject.toml", "README.md", "xprotogen", "templates", "runtime")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        elif (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("xprotogen-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel and lark, nothing else."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=600)
    subprocess.run([*pip, "lark>=1.2"], check=True, capture_output=True, timeout=600)
    return env


def test_wheel_contains_grammars_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"xprotogen/grammar/xproto.lark", "xprotogen/grammar/policy.lark"} <= names
    assert "xprotogen/core.xproto" in names  # the built-in core models
    templates = [n for n in names if n.startswith("xprotogen/templates/") and n.endswith(".j2")]
    assert templates, sorted(names)
    # The grammar cache is written at run time, never shipped.
    assert not [n for n in names if "cache" in n]


def _xsgen(env: Path, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env / "bin" / "xsgen"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )


def test_installed_xsgen_deps_matches_golden_output(installed: Path, tmp_path: Path) -> None:
    require_shared()
    cache = tmp_path / "cache"
    expected = json.loads((CORPUS / "model-deps" / "volt.json").read_text())
    for _ in range(2):  # the first run writes the grammar cache, the second one reads it
        done = _xsgen(installed, "deps", str(corpus_file("volt")), cache=cache)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert json.dumps(json.loads(done.stdout)) == json.dumps(expected)
    # volt.xproto has no policies, so only the xproto grammar was needed.
    assert [p.name.split("-")[0] for p in (cache / "xprotogen").iterdir()] == ["xproto"]


def test_installed_xsgen_works_when_the_cache_directory_is_read_only(
    installed: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "readonly"
    (cache / "xprotogen").mkdir(parents=True)
    (cache / "xprotogen").chmod(stat.S_IRUSR | stat.S_IXUSR)
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        done = _xsgen(installed, "deps", str(CORE_XPROTO), cache=cache)
    finally:
        cache.chmod(stat.S_IRWXU)
        (cache / "xprotogen").chmod(stat.S_IRWXU)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == render_model_deps(load_schema([CORE_XPROTO]))


def test_installed_xsgen_ships_the_builtin_core(installed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = _xsgen(installed, "core", cache=cache)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == CORE_XPROTO.read_text()
    service = tmp_path / "svc.xproto"
    service.write_text(
        'option app_label = "svc";\n'
        "message Box (ServiceInstance) {\n"
        "    required manytoone home->Site:boxes = 1:1100;\n"
        "}\n"
    )
    done = _xsgen(installed, "deps", "--with-core", str(service), cache=cache)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == render_model_deps(load_schema([service], core="always"))
    assert json.loads(done.stdout)["Box"] == [
        ["Service", "owner", "service_instances"],
        ["ServiceInstance", "master_serviceinstance", "child_serviceinstances"],
        ["Site", "home", "boxes"],
    ]
