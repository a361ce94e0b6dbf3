"""`make demo` on a copy of the repository with nothing beside it: no ../shared, no corpus.

The copy reuses this checkout's virtualenv (`make demo VENV=...`, its install stamp taken as
up to date) instead of installing again; that venv's packages are installed from this same
source tree, so the demo runs the code under test. What the test proves is that nothing the
demo needs lives outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def _repository_files() -> list[str]:
    """What a clone holds: tracked files, plus new ones not yet committed (never ignored ones)."""
    done = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [name for name in done.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def test_make_demo_runs_in_a_copy_without_shared_beside_it(tmp_path: Path) -> None:
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("needs make and git")
    copy = tmp_path / "xprotogen"
    for name in _repository_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    assert not (copy.parent / "shared").exists()
    venv = Path(sys.prefix)
    done = subprocess.run(
        ["make", "demo", f"VENV={venv}", "-o", f"{venv}/.installed"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "shared" not in out + done.stderr
    # The noticeboard: the policy built 3 posters; the bad ink holds back its notice and poster.
    assert "Poster 8 -> Notice 5 -> Ink 3" in out
    pages = sorted((copy / "examples" / "build" / "noticeboard" / "site").glob("*.html"))
    assert len(pages) == 2
    assert "Summer fete on Saturday" in pages[0].read_text()
    # The generated tests pass as generated, and the demo ends with what to try next.
    assert "passed" in out and "failed" not in out
    assert "== What next" in out and "xsync ui" in out
