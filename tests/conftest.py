"""Shared fixtures: where the reference corpus lives, and helpers to run the CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
IN_CI = os.environ.get("CI") == "true"


def corpus_names() -> list[str]:
    return sorted(p.stem for p in (CORPUS / "xproto").glob("*.xproto"))


def corpus_file(name: str) -> Path:
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
    if not CORPUS.is_dir():
        pytest.fail(f"the reference corpus is missing at {CORPUS}")
    return CORPUS
