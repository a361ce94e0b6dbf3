"""The operator's view: a start-up line saying what was loaded, --log-level on the CLI."""

from __future__ import annotations

from pathlib import Path

from sync_project import log_lines, make_project, write_config, xsync
from xsync.connect import connect

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"


class SyncCluster(SyncStep):
    observes = "Cluster"
"""


def test_the_start_up_line_lists_what_was_loaded(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    result = xsync("run", str(config), "--once")
    assert result.returncode == 0, result.stderr
    started = [line for line in log_lines(tmp_path) if line["message"].startswith("started")]
    assert [line["message"] for line in started] == [
        "started cloud: 2 sync steps (SyncRegion, SyncCluster); 0 policies; 0 pull steps; "
        f"0 event steps; store sqlite:///{tmp_path / 'sync.db'}; no event bus"
    ]


def test_the_start_up_line_never_shows_a_password(tmp_path: Path) -> None:
    from xsync.runner import _without_password

    assert (
        _without_password("postgresql://sync:s3cret@db:5432/x") == "postgresql://sync:***@db:5432/x"
    )
    assert _without_password("postgresql://sync@db/x") == "postgresql://sync@db/x"


def test_log_level_on_the_command_line_overrides_the_config(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    with connect(config) as api:
        api.Region(name="eu").save()
    result = xsync("run", str(config), "--once", "--log-level", "warning")
    assert result.returncode == 0, result.stderr
    assert log_lines(tmp_path) == []  # INFO lines (start-up, syncs) are below WARNING
    write_config(
        tmp_path, logging={"level": "WARNING", "format": "json", "destination": "sync.log"}
    )
    with connect(config) as api:
        api.Region(name="us").save()
    result = xsync("run", str(config), "--once", "--log-level", "DEBUG")
    assert result.returncode == 0, result.stderr
    assert {line["level"] for line in log_lines(tmp_path)} >= {"debug", "info"}


def test_an_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    result = xsync("run", str(config), "--once", "--log-level", "chatty")
    assert result.returncode == 2
    assert "--log-level: invalid choice: 'CHATTY'" in result.stderr
