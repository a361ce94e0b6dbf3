"""The CI script a scaffolded project gets: green as generated, red for each kind of drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, corpus_file

XSGEN = str(Path(sys.executable).parent / "xsgen")
HELLO = (ROOT / "examples" / "hello" / "hello.xproto").read_text(encoding="utf-8")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository on `main`: the hello models in src/, the project scaffolded in proj/."""
    root = tmp_path_factory.mktemp("ci-repo")
    (root / "src").mkdir()
    (root / "src" / "core.xproto").write_bytes(corpus_file("core").read_bytes())
    (root / "src" / "hello.xproto").write_text(HELLO, encoding="utf-8")
    done = subprocess.run(
        [XSGEN, "scaffold", "src/core.xproto", "src/hello.xproto", "-o", "proj"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first version")
    return root


def _check(repo: Path, *checks: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "XSGEN": XSGEN, "PYTHON": sys.executable, "XSYNC_BASE_REF": "main"}
    environment.pop("PYTEST_ADDOPTS", None)
    environment.update(env)
    return subprocess.run(
        ["bash", "proj/ci/check.sh", *checks],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


def test_scaffold_writes_the_script_and_workflows_once(repo: Path) -> None:
    project = repo / "proj"
    script = (project / "ci" / "check.sh").read_text(encoding="utf-8")
    assert 'MODELS=("../src/core.xproto" "../src/hello.xproto")' in script
    assert 'SERVICE_MODELS=("../src/hello.xproto")' in script
    assert "bash ci/check.sh" in (project / ".github" / "workflows" / "hello.yml").read_text()
    assert "bash ci/check.sh" in (project / ".gitlab-ci.yml").read_text()


def test_generated_project_passes_every_check(repo: Path) -> None:
    result = _check(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("scaffold", "lint", "fmt", "breaking", "tests"):
        assert f"ok: {name}" in result.stdout
    assert result.stdout.rstrip().endswith("ci/check.sh: all checks passed")


DRIFTS = [
    # check, what is changed: (file, old text, new text)
    (
        "scaffold",
        "src/hello.xproto",
        "    optional bool fail = 3",
        "    optional string mood = 4;\n    optional bool fail = 3",
    ),
    ("lint", "src/hello.xproto", "required string message = 1", "required string message = 2"),
    ("fmt", "src/hello.xproto", "message Greeting (XOSBase) {", "message Greeting(XOSBase){"),
    (
        "breaking",
        "src/hello.xproto",
        "required manytoone country->Country:greetings",
        "required manytoone country->Country:hellos",
    ),
    ("tests", "proj/tests/test_drift.py", "", "def test_drift() -> None:\n    assert 1 == 2\n"),
]


@pytest.mark.parametrize(("check", "path", "old", "new"), DRIFTS, ids=[d[0] for d in DRIFTS])
def test_each_kind_of_drift_fails_its_check(
    repo: Path, check: str, path: str, old: str, new: str
) -> None:
    target = repo / path
    before = target.read_text(encoding="utf-8") if target.exists() else None
    target.write_text((before or "").replace(old, new, 1) if old else new, encoding="utf-8")
    try:
        # The failing test alone, for speed: the generated tests passed above.
        extra = {"PYTEST_ADDOPTS": "-k drift"} if check == "tests" else {}
        result = _check(repo, check, **extra)
    finally:
        if before is None:
            target.unlink()
        else:
            target.write_text(before, encoding="utf-8")
    assert result.returncode == 1, result.stdout
    assert f"FAILED: {check}" in result.stdout
    assert result.stdout.rstrip().endswith(f"ci/check.sh: failed: {check}")


def test_breaking_fails_clearly_without_the_base_revision(repo: Path) -> None:
    result = _check(repo, "breaking", XSYNC_BASE_REF="origin/main")
    assert result.returncode == 1
    assert "no git revision 'origin/main' to compare with" in result.stdout
