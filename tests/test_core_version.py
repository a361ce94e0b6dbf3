"""`core_version`: the store serves a plain version; a synchronizer's requirement is checked at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CORE_XPROTO, run_cli
from xsync.store.version import (
    CORE_VERSION,
    VersionSpecError,
    served_version,
    version_matches,
)


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ("4.0", "4.0.0", True),
        (">=4.0", "4.0.0", True),
        (">=4.1", "4.0.9", False),
        (">=3.0,<4", "4.0.0", False),
        ("3.0 ~ 4.0", "4.0.0", True),
        ("4.1 ~ 5.0", "4.0.0", False),
        ("!=4.0.0", "4.0", False),
    ],
)
def test_requirements_are_read_as_semver_ranges(spec: str, version: str, expected: bool) -> None:
    assert version_matches(spec, version) is expected


def test_an_unreadable_requirement_is_an_error_quoting_it() -> None:
    with pytest.raises(VersionSpecError, match="'newest please'"):
        version_matches("newest please", "4.0.0")


@given(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)))
def test_a_version_satisfies_itself_and_its_lower_bound(parts: tuple[int, int, int]) -> None:
    version = ".".join(map(str, parts))
    assert version_matches(version, version)
    assert version_matches(f">={version}", version)
    assert not version_matches(f">{version}", version)


def test_a_store_serves_the_configured_plain_version_or_the_core_api_version() -> None:
    assert served_version("4.2.1") == "4.2.1"
    assert served_version(">=4.0") == CORE_VERSION
    assert served_version(None) == CORE_VERSION


def _project(tmp_path: Path, core_version: str) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "core.xproto").write_text(CORE_XPROTO.read_text())
    config = {
        "name": "versioned",
        "models_dir": "models",
        "store": "sqlite:///sync.db",
        "core_version": core_version,
    }
    path = tmp_path / "sync.yaml"
    path.write_text(json.dumps(config))
    return path


def test_run_starts_when_the_embedded_store_satisfies_the_requirement(tmp_path: Path) -> None:
    result = run_cli("xsync.cli", "run", str(_project(tmp_path, ">=4.0")), "--once")
    assert result.returncode == 0, result.stderr


def test_run_refuses_a_store_that_does_not_satisfy_the_requirement(tmp_path: Path) -> None:
    config = _project(tmp_path, ">=5.0")
    result = run_cli("xsync.cli", "run", str(config), "--once")
    assert result.returncode == 1
    assert f"{config}: core_version: the store serves core version {CORE_VERSION}" in result.stderr
    assert "'>=5.0'" in result.stderr
    assert "Traceback" not in result.stderr
