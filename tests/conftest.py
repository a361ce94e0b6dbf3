"""Shared fixtures: where the reference corpus lives, and helpers to run the CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xprotogen.core_models import BUILTIN_CORE_PATH

ROOT = Path(__file__).resolve().parent.parent
# The XOS corpus (real xproto files and xosgenx's outputs) sits beside a developer's clone,
# not in it: a clone with nothing beside it skips the tests that read it; CI fails them.
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
IN_CI = os.environ.get("CI") == "true"
# The core models every service builds on: the ones the package ships.
CORE_XPROTO = BUILTIN_CORE_PATH


def require_shared() -> None:
    """Skip (fail under CI=true) a test that reads ../shared when it is absent."""
    if CORPUS.is_dir():
        return
    reason = f"needs the reference corpus, absent at {CORPUS}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def corpus_names() -> list[str]:
    """The corpus files' names; none without the corpus (pytest then skips, with the reason)."""
    if not CORPUS.is_dir():
        if IN_CI:
            pytest.fail(f"the reference corpus is absent at {CORPUS} (CI=true)", pytrace=False)
        return []
    return sorted(p.stem for p in (CORPUS / "xproto").glob("*.xproto"))


def corpus_file(name: str) -> Path:
    require_shared()
    return CORPUS / "xproto" / f"{name}.xproto"


def run_cli(*args: str, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m <module> args...` in a subprocess; stdout and stderr kept apart."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=input,
        timeout=120,
    )


@pytest.fixture(scope="session")
def corpus() -> Path:
    require_shared()
    return CORPUS
