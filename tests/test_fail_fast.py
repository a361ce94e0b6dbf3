"""Fail fast: refused credentials end `xsync run`, `status` and `ui` at once with one line naming
the endpoint and the cause, and exit 1; so does an unreachable core, except for a long-running
`xsync run`, which waits for it (tests/test_core_wait.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Iterator

import pytest

from sync_project import (
    Core,
    free_port,
    log_lines,
    make_project,
    runner_config,
    start_xsync,
    wait_for,
    xsync,
)
from xsync.connect import connect

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"
"""
COMMANDS = [
    ("run", "--once"),
    ("run", "--until-idle", "--timeout", "20"),
    ("run", "--timeout", "20"),  # long-running: wrong credentials are fatal there too
    ("status",),
    ("status", "--json"),
    ("ui", "--listen", "127.0.0.1:0"),
]


@pytest.fixture
def core(tmp_path: Path) -> Iterator[str]:
    make_project(tmp_path, STEPS)
    endpoint = f"127.0.0.1:{free_port()}"
    running = Core(tmp_path, endpoint, None)
    yield endpoint
    running.stop()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_refused_credentials_are_one_line_and_exit_1(
    tmp_path: Path, core: str, command: tuple[str, ...]
) -> None:
    config = runner_config(tmp_path, core, None, password="not-the-password")
    result = xsync(command[0], str(config), *command[1:], timeout=60)
    assert result.returncode == 1
    prog = "xsync ui" if command[0] == "ui" else "xsync"
    assert result.stderr.strip().splitlines() == [
        f"{prog}: the core at {core} refused the credentials of 'sync': "
        "wrong username or password"
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "command",
    [c for c in COMMANDS if "--once" in c or "--until-idle" in c or c[0] != "run"],
    ids=" ".join,
)
def test_a_core_that_is_down_is_one_line_and_exit_1(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    make_project(tmp_path, STEPS)
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = runner_config(tmp_path, endpoint, None)
    started = time.monotonic()
    result = xsync(command[0], str(config), *command[1:], timeout=60)
    assert result.returncode == 1
    assert time.monotonic() - started < 15  # at once: --once and --until-idle do not wait
    prog = "xsync ui" if command[0] == "ui" else "xsync"
    assert result.stderr.strip().splitlines() == [
        f"{prog}: cannot reach the core at {endpoint}: connection refused "
        "(is `xsync core` running there?)"
    ]


SLOW_STEPS = """
import time

from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        time.sleep(0.02)
"""


def test_a_core_dying_mid_pass_costs_a_few_lines_not_one_per_object(tmp_path: Path) -> None:
    make_project(tmp_path, SLOW_STEPS)
    endpoint = f"127.0.0.1:{free_port()}"
    core = Core(tmp_path, endpoint, None)
    config = runner_config(tmp_path, endpoint, None)
    with connect(config) as api:
        api.store.create_many("Region", [{"name": f"r{i}"} for i in range(400)])
    runner = start_xsync("run", str(config))
    try:
        synced = lambda: sum(1 for e in log_lines(tmp_path) if e.get("outcome") == "synced")
        wait_for(lambda: synced() >= 20, 60, "the first objects syncing")
        core.process.kill()  # mid-pass: most objects are still to do
        core.process.wait()
        time.sleep(3)
        core = Core(tmp_path, endpoint, None)  # the same store file, the same port

        # The store is the judge: a sync whose reply the killed core never sent is saved but
        # logs no "synced" line (its outcome is unknown to the runner), so lines may fall short.
        def every_object_synced() -> bool:
            with connect(config) as api:
                return {r["backend_code"] for r in api.store.query("Region")} == {1}

        wait_for(every_object_synced, 90, "every object syncing after the core is back")
        assert synced() >= 390
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=20) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        core.stop()
    lines = log_lines(tmp_path)
    assert not [e for e in lines if e.get("outcome") == "failed"]
    assert not [e for e in lines if "could not save" in e["message"]]
    messages = [e["message"] for e in lines if e.get("outcome") is None]
    assert messages.count("lost the store; passes wait until it answers again") == 1
    assert messages.count("the store answers again; passes resume") == 1
    assert messages.count("watching the store failed") <= 1
    # Everything but the per-object sync lines: a handful, whatever the number of objects (the
    # start, the leadership, and one line each for the watch, the leases and the store).
    assert len(messages) <= 12, messages
