"""The store refuses models that break what it holds, unless told the data was migrated."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import corpus_file, run_cli
from store_support import schema_from_text
from xsync.store import BreakingModelChange, open_store

V1 = """
option app_label = "cloud";

// A region of the cloud.
message Region (XOSBase) {
    required string name = 1 [max_length = 64];
}
"""


def _open(tmp_path: Path, text: str, **options: bool) -> None:
    store = open_store(
        f"sqlite:///{tmp_path / 's.db'}", schema_from_text(tmp_path, text), **options
    )
    store.close()


def _columns(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "s.db") as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(region)")}


def _kept(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "s.db") as conn:
        (value,) = conn.execute("SELECT value FROM xsync_meta WHERE key = 'models'").fetchone()
    return str(value)


def test_breaking_change_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    _open(tmp_path, V1)
    kept = _kept(tmp_path)
    v2 = V1.replace("max_length = 64", "max_length = 8").replace(
        "[max_length = 8];", "[max_length = 8];\n    optional string zone = 2;"
    )
    with pytest.raises(BreakingModelChange) as refused:
        _open(tmp_path, v2)
    message = str(refused.value)
    assert message.startswith(
        "the models changed in ways that break what the store holds (1 finding):"
    )
    assert "Region.name' max_length went from 64 to 8 [max-length-shrunk]" in message
    assert message.endswith("start once with --migrated to accept the new models")
    assert "zone" not in _columns(tmp_path)  # the safe part of the change was not applied either
    assert _kept(tmp_path) == kept


def test_migrated_flag_accepts_and_keeps_the_new_models(tmp_path: Path) -> None:
    _open(tmp_path, V1)
    v2 = V1.replace("max_length = 64", "max_length = 8")
    _open(tmp_path, v2, migrated=True)
    assert "max_length = 8" in _kept(tmp_path)
    _open(tmp_path, v2)  # the new models are now the store's: no flag needed


def test_safe_change_is_applied_and_kept(tmp_path: Path) -> None:
    _open(tmp_path, V1)
    v2 = V1.replace(
        "[max_length = 64];",
        '[max_length = 64, help_text = "its name"];\n    optional string zone = 2;',
    )
    _open(tmp_path, v2)
    assert "zone" in _columns(tmp_path)
    assert "optional string zone = 2;" in _kept(tmp_path)


def test_layout_and_comments_are_no_change(tmp_path: Path) -> None:
    _open(tmp_path, V1)
    kept = _kept(tmp_path)
    _open(
        tmp_path, V1.replace("// A region of the cloud.", "").replace("    required", "  required")
    )
    assert (
        json.loads(_kept(tmp_path))["files"][0][1] != json.loads(kept)["files"][0][1]
    )  # comment gone
    _open(tmp_path, V1)


def test_store_made_before_models_were_kept_accepts_any(tmp_path: Path) -> None:
    _open(tmp_path, V1)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("DELETE FROM xsync_meta WHERE key = 'models'")
    _open(tmp_path, V1.replace("max_length = 64", "max_length = 8"))
    assert "max_length = 8" in _kept(tmp_path)


# --- end to end: xsync run and xsync core -------------------------------------------------------

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "core.xproto").write_bytes(corpus_file("core").read_bytes())
    (tmp_path / "models" / "cloud.xproto").write_text(V1)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "sync_region.py").write_text(STEPS)
    config = {
        "name": "cloud",
        "models_dir": "models",
        "steps_dir": "steps",
        "store": "sqlite:///sync.db",
        "logging": {"level": "ERROR", "destination": "sync.log"},
    }
    (tmp_path / "sync.yaml").write_text(json.dumps(config))
    return tmp_path


def test_xsync_run_refuses_a_breaking_change_until_migrated(project: Path) -> None:
    config = str(project / "sync.yaml")
    first = run_cli("xsync.cli", "run", config, "--once")
    assert first.returncode == 0, first.stderr
    (project / "models" / "cloud.xproto").write_text(
        V1.replace("max_length = 64", "max_length = 8")
    )
    refused = run_cli("xsync.cli", "run", config, "--once")
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert "the models changed in ways that break what the store holds (1 finding):" in lines[0]
    assert (
        f"{project / 'models' / 'cloud.xproto'}:6:5: error: field 'Region.name' max_length went from 64 to 8 [max-length-shrunk]"
        in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    accepted = run_cli("xsync.cli", "run", config, "--once", "--migrated")
    assert accepted.returncode == 0, accepted.stderr
    again = run_cli("xsync.cli", "run", config, "--once")
    assert again.returncode == 0, again.stderr


def test_xsync_core_refuses_a_breaking_change_until_migrated(project: Path) -> None:
    config = str(project / "sync.yaml")
    assert run_cli("xsync.cli", "run", config, "--once").returncode == 0
    (project / "models" / "cloud.xproto").write_text(
        V1.replace("required string name = 1", "required int32 name = 1")
    )
    credentials = ("--username", "admin", "--password", "secret")
    refused = run_cli("xsync.cli", "core", config, "--listen", "127.0.0.1:0", *credentials)
    assert refused.returncode == 1
    assert any(
        line.startswith("xsync core: the models changed in ways that break")
        for line in refused.stderr.splitlines()
    )
    assert "changed type from string to int32 [field-type-changed]" in refused.stderr
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xsync.cli",
            "core",
            config,
            "--listen",
            "127.0.0.1:0",
            "--migrated",
            *credentials,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, server.kill)  # readline() has no time limit of its own
    watchdog.start()
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("xsync core: serving"), line
    finally:
        watchdog.cancel()
        server.terminate()
        server.wait(timeout=30)
