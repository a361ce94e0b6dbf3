"""Bounded steps: a call into user code that never returns, or that raises a BaseException,
costs its own object and nothing else; SIGTERM/SIGINT end a runner in bounded time."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from sync_project import log_lines, make_project, start_xsync, wait_for, write_config, xsync
from xsync.connect import connect
from xsync.backend_state import last_message

STUCK_STEPS = """
import time
from pathlib import Path

from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        if obj.name == "stuck":
            Path(__file__).with_name("entered").write_text(str(obj.id))
            time.sleep(100000)


class SyncCluster(SyncStep):
    observes = "Cluster"
"""


def _regions(config: Path, *names: str) -> dict[str, int]:
    with connect(config) as api:
        ids = {}
        for name in names:
            region = api.Region(name=name)
            region.save()
            ids[name] = region.id
        return ids


def _record(config: Path, model: str, id: int) -> dict[str, object]:
    with connect(config) as api:
        return dict(api.store.get(model, id))


def test_a_step_that_never_returns_fails_its_object_and_the_pass_goes_on(tmp_path: Path) -> None:
    config = make_project(tmp_path, STUCK_STEPS, step_timeout_seconds=1)
    ids = _regions(config, "stuck", "fine")
    with connect(config) as api:
        cluster = api.Cluster(name="c", region=api.Region.objects.get(id=ids["stuck"]))
        cluster.save()
    started = time.monotonic()
    result = xsync("run", str(config), "--once", timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    stuck = _record(config, "Region", ids["stuck"])
    assert (stuck["backend_code"], last_message(stuck["backend_status"])) == (
        2,
        "timed out after 1 s",
    )
    assert _record(config, "Region", ids["fine"])["backend_code"] == 1
    # Its dependent is held back behind it, as behind any failure.
    assert "timed out after 1 s" in str(_record(config, "Cluster", cluster.id)["backend_status"])
    failed = [line for line in log_lines(tmp_path) if line.get("outcome") == "failed"]
    assert [(line["model"], line["id"], line["error"]) for line in failed] == [
        ("Region", ids["stuck"], "timed out after 1 s")
    ]


def test_a_step_class_time_limit_overrides_the_config(tmp_path: Path) -> None:
    steps = STUCK_STEPS.replace(
        'observes = "Region"', 'observes = "Region"\n    timeout_seconds = 0.5'
    )
    config = make_project(tmp_path, steps, step_timeout_seconds=100)
    ids = _regions(config, "stuck")
    result = xsync("run", str(config), "--until-idle", "--timeout", "20", timeout=30)
    assert result.returncode == 0, result.stderr
    record = _record(config, "Region", ids["stuck"])
    assert last_message(record["backend_status"]) == "timed out after 0.5 s"


def test_an_unusable_step_time_limit_is_refused_at_start(tmp_path: Path) -> None:
    steps = STUCK_STEPS.replace(
        'observes = "Region"', 'observes = "Region"\n    timeout_seconds = -1'
    )
    config = make_project(tmp_path, steps)
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: {tmp_path / 'steps' / 'sync_cloud.py'}: SyncRegion.timeout_seconds must be a "
        "number of seconds > 0, got -1"
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_runner_stuck_in_a_step_within_the_grace_period(
    tmp_path: Path, signum: signal.Signals
) -> None:
    config = make_project(tmp_path, STUCK_STEPS, stop_grace_seconds=1, logging=None)
    ids = _regions(config, "stuck")
    process = start_xsync("run", str(config))
    try:
        wait_for((tmp_path / "steps" / "entered").exists, 30, "the step starting")
        signalled = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=10)
        took = time.monotonic() - signalled
        stderr = process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 3
    assert 1.0 <= took < 4.0
    assert (
        "stopped: the 1 s grace period (stop_grace_seconds) is over; work in flight was "
        f"abandoned: SyncRegion.sync_record Region {ids['stuck']} (running" in stderr
    )
    assert "Traceback" not in stderr


def test_a_second_signal_abandons_at_once(tmp_path: Path) -> None:
    config = make_project(tmp_path, STUCK_STEPS, stop_grace_seconds=60, logging=None)
    _regions(config, "stuck")
    process = start_xsync("run", str(config))
    try:
        wait_for((tmp_path / "steps" / "entered").exists, 30, "the step starting")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 3
        assert "stopped: a second SIGINT came" in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    "raised, message",
    [
        ("KeyboardInterrupt", "KeyboardInterrupt raised by user code"),
        ("SystemExit(3)", "SystemExit raised by user code: 3"),
        ("GeneratorExit", "GeneratorExit raised by user code"),
    ],
)
def test_a_base_exception_from_a_step_fails_only_its_object(
    tmp_path: Path, raised: str, message: str
) -> None:
    steps = f"""
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        if obj.name == "bad":
            raise {raised}
"""
    config = make_project(tmp_path, steps, max_workers=1)
    ids = _regions(config, "bad", "good", "also-good")
    result = xsync("run", str(config), "--once", timeout=30)
    assert result.returncode == 0, result.stderr
    assert last_message(_record(config, "Region", ids["bad"])["backend_status"]) == message
    assert _record(config, "Region", ids["good"])["backend_code"] == 1
    assert _record(config, "Region", ids["also-good"])["backend_code"] == 1


def test_a_policy_handler_and_a_pull_step_over_their_limit_are_abandoned(tmp_path: Path) -> None:
    config = make_project(tmp_path, STUCK_STEPS.replace("stuck", "never"), step_timeout_seconds=1)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "region_policy.py").write_text("""
import time
from xsync import Policy


class RegionPolicy(Policy):
    model_name = "Region"

    def handle_create(self, obj):
        time.sleep(100000)
""")
    (tmp_path / "pulls").mkdir()
    (tmp_path / "pulls" / "pull_regions.py").write_text("""
import time
from xsync import PullStep


class PullRegions(PullStep):
    def pull_records(self):
        time.sleep(100000)
""")
    write_config(
        tmp_path, step_timeout_seconds=1, model_policies_dir="policies", pull_steps_dir="pulls"
    )
    ids = _regions(config, "eu")
    started = time.monotonic()
    result = xsync("run", str(config), "--once", timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    record = _record(config, "Region", ids["eu"])
    assert (record["policy_code"], record["policy_status"]) == (2, "timed out after 1 s")
    pulls = [line for line in log_lines(tmp_path) if line["message"] == "pull step failed"]
    assert [line["error"] for line in pulls] == ["StepTimeout: timed out after 1 s"]


def test_an_object_whose_abandoned_call_still_runs_is_not_run_again(tmp_path: Path) -> None:
    steps = """
import time
from pathlib import Path

from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        calls = Path(__file__).with_name("calls")
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        time.sleep(100000)
"""
    # A backoff far shorter than the run: without the guard the object would run again.
    config = make_project(
        tmp_path,
        steps,
        step_timeout_seconds=0.5,
        backoff_base_seconds=0.1,
        backoff_cap_seconds=0.1,
        loop_interval_seconds=0.2,
    )
    _regions(config, "stuck")
    result = xsync("run", str(config), "--timeout", "3", timeout=30)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "steps" / "calls").read_text() == "x"
