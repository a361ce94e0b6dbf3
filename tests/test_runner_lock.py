"""SQLite serves one runner: a second `xsync run` on the same file is refused at start."""

from __future__ import annotations

import signal
from pathlib import Path

from sync_project import log_lines, make_project, start_xsync, wait_for, xsync

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        pass
"""


def test_second_runner_on_one_sqlite_store_is_refused_with_one_line(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    first = start_xsync("run", str(config))
    try:
        wait_for(
            lambda: any(
                line.get("message", "").startswith("started") for line in log_lines(tmp_path)
            ),
            30,
            "the first runner's start-up line",
        )
        second = xsync("run", str(config), "--once", timeout=60)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert "sync.db" in lines[0] and f"pid {first.pid}" in lines[0]
        assert "use a PostgreSQL store" in lines[0]
        # A killed runner leaves no stale lock: the kernel drops it with the process.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        third = xsync("run", str(config), "--once", timeout=60)
        assert third.returncode == 0, third.stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_status_and_retry_still_open_a_store_a_runner_holds(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    first = start_xsync("run", str(config))
    try:
        wait_for(
            lambda: any(
                line.get("message", "").startswith("started") for line in log_lines(tmp_path)
            ),
            30,
            "the first runner's start-up line",
        )
        assert xsync("status", str(config)).returncode == 0
    finally:
        first.terminate()
        first.wait(timeout=15)
