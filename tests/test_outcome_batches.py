"""Outcomes saved in batches: what a crash may lose, and what a stop must not.

A runner keeps its objects' outcomes in memory until a batch is full, old enough, or needed by
a dependent. SIGKILL loses that batch: those objects are still outdated in the store, so the
next run syncs them again (at least once), and nothing else. SIGTERM saves it before exiting.
"""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from subprocess import Popen
from typing import Iterator

from multi_runner import CallLog, kill, make_runner_project, start_runner
from sync_project import wait_for

from xsync.connect import connect

REGIONS = 40


def _project(root: Path, **extra: object) -> Path:
    config = make_runner_project(root, f"sqlite:///{root / 'cloud.db'}", sleep=0.02, **extra)
    options = json.loads(config.read_text())
    options["max_workers"] = 2
    config.write_text(json.dumps(options))
    return config


def _create_regions(config: Path) -> None:
    with connect(config) as api:
        api.store.create_many("Region", [{"name": f"r{i}"} for i in range(REGIONS)])


def _enacted(config: Path) -> dict[int, float | None]:
    with connect(config) as api:
        return {r["id"]: r["enacted"] for r in api.store.query("Region")}


@contextlib.contextmanager
def _runner_ten_objects_in(tmp_path: Path) -> Iterator[tuple[Path, Path, Popen[str]]]:
    """A runner whose outcome batch neither fills nor ages during a test (every outcome stays
    in memory), once ten objects are synced: its config, its call log and its process."""
    config = _project(tmp_path, outcome_batch_size=1000, outcome_flush_seconds=600)
    _create_regions(config)
    calls = tmp_path / "calls.log"
    runner = start_runner(config)
    try:
        wait_for(lambda: len(CallLog.read(calls).by_object()) >= 10, 30, "ten objects synced")
        yield config, calls, runner
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_sigkill_loses_only_the_unsaved_batch_and_those_objects_are_synced_again(
    tmp_path: Path,
) -> None:
    with _runner_ten_objects_in(tmp_path) as (config, calls, runner):
        killed_at = kill(runner)
    before = CallLog.read(calls, {runner.pid: killed_at})
    done_before = {c.key for c in before.calls}
    assert 10 <= len(done_before) < REGIONS
    # Synced in the steps, never recorded: the whole batch was lost with the process.
    assert all(enacted is None for enacted in _enacted(config).values())

    again = start_runner(config, "--until-idle", "--timeout", "60")
    assert again.wait(timeout=90) == 0, again.stderr.read() if again.stderr else ""
    synced = CallLog.read(calls).by_object()
    assert len(synced) == REGIONS  # none lost
    twice = {key for key, cs in synced.items() if len(cs) > 1}
    assert twice == done_before  # exactly the lost batch was synced again
    assert all(enacted is not None for enacted in _enacted(config).values())


def test_sigterm_saves_the_batch_before_exiting(tmp_path: Path) -> None:
    with _runner_ten_objects_in(tmp_path) as (config, calls, runner):
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) in (0, 3)
    done_before = {key[1] for key in CallLog.read(calls).by_object()}
    enacted = _enacted(config)
    # Every object whose step finished has its outcome on record.
    assert done_before and all(enacted[i] is not None for i in done_before)
    again = start_runner(config, "--until-idle", "--timeout", "60")
    assert again.wait(timeout=90) == 0
    synced = CallLog.read(calls).by_object()
    assert len(synced) == REGIONS
    assert [key for key, cs in synced.items() if len(cs) > 1] == []
