"""`xsync status` answers "why": failures grouped by message, held-back objects grouped by
what they wait for, one object's whole story with its traceback; `xsync retry` makes
objects due now."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sync_project import log_lines, make_project, xsync
from xsync.backend_state import last_message
from xsync.connect import connect

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"

    def sync_record(self, obj):
        if obj.name.startswith("bad"):
            raise RuntimeError("disk full")
        if obj.name == "bug":
            obj.imag


class SyncCluster(SyncStep):
    observes = "Cluster"
"""


def _status(config: Path, *args: str) -> str:
    result = xsync("status", str(config), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_programming_error_shows_where_it_is_in_status_and_in_the_log(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    with connect(config) as api:
        region = api.Region(name="bug")
        region.save()
    assert xsync("run", str(config), "--once").returncode == 0
    step_file = tmp_path / "steps" / "sync_cloud.py"
    line = STEPS.splitlines().index("            obj.imag") + 1
    story = _status(config, "Region", str(region.id))
    assert f"Region {region.id} (bug): failing" in story
    assert f'File "{step_file}", line {line}, in sync_record' in story
    assert "AttributeError: Region has no field 'imag'" in story
    detail = json.loads(_status(config, "Region", str(region.id), "--json"))
    assert detail["object"]["state"] == "error"
    assert detail["traceback"].endswith("AttributeError: Region has no field 'imag'")
    # backend_status stays the one-line message XOS writes.
    assert last_message(detail["backend_status"]) == "Region has no field 'imag'"
    assert "\n" not in detail["backend_status"]
    failed = [entry for entry in log_lines(tmp_path) if entry.get("outcome") == "failed"]
    assert len(failed) == 1 and f'File "{step_file}", line {line}' in failed[0]["traceback"]


def test_the_traceback_is_logged_when_an_object_starts_failing_not_on_every_retry(
    tmp_path: Path,
) -> None:
    config = make_project(tmp_path, STEPS)
    with connect(config) as api:
        api.Region(name="bug").save()
    for _ in range(3):
        assert xsync("run", str(config), "--once").returncode == 0
        assert xsync("retry", str(config), "--failed").returncode == 0
    failed = [entry for entry in log_lines(tmp_path) if entry.get("outcome") == "failed"]
    # Failing again the same way is no news: one line, with the traceback.
    assert len(failed) == 1 and "traceback" in failed[0]
    debug = xsync("run", str(config), "--once", "--log-level", "debug")
    assert debug.returncode == 0
    again = [entry for entry in log_lines(tmp_path) if entry.get("outcome") == "failed"]
    assert len(again) == 2 and again[1]["level"] == "debug" and "traceback" not in again[1]


def test_status_groups_1000_objects_by_message_and_by_root_cause(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    with connect(config) as api:
        regions = api.store.create_many(
            "Region", [{"name": f"bad-{i}" if i < 40 else f"good-{i}"} for i in range(50)]
        )
        ids = [r["id"] for r in regions]
        api.store.create_many(
            "Cluster", [{"name": f"c{i}", "region_id": ids[i % 50]} for i in range(950)]
        )
    result = xsync("run", str(config), "--once", timeout=300)
    assert result.returncode == 0, result.stderr
    text = _status(config)
    lines = text.splitlines()
    assert len(lines) < 15, text  # a handful of groups, not a line per object
    assert "Failing, by message:" in lines
    assert f"  40 Region: disk full  (Region {ids[0]}, {ids[1]}, {ids[2]}, ...)" in lines
    held = [line for line in lines if " wait for " in line and line.startswith("  ")]
    assert len(held) == 1 and held[0].startswith("  760 Cluster wait for 40 failing Region  (e.g.")
    report = json.loads(_status(config, "--json"))
    assert [(g["model"], g["message"], g["count"]) for g in report["failing"]] == [
        ("Region", "disk full", 40)
    ]
    [group] = report["held_back"]
    assert (group["model"], group["count"], group["waits_for_model"]) == ("Cluster", 760, "Region")
    assert (group["waits_for_state"], group["waits_for_count"]) == ("error", 40)
    assert len(group["examples"]) == 3


def test_retry_after_a_fix_makes_failed_objects_due_now(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)  # backoff_base_seconds: 60
    with connect(config) as api:
        bad = [api.Region(name=f"bad-{i}") for i in range(3)]
        for region in bad:
            region.save()
        good = api.Region(name="good")
        good.save()
    assert xsync("run", str(config), "--once").returncode == 0
    (tmp_path / "steps" / "sync_cloud.py").write_text(STEPS.replace("disk full", "still"))
    (tmp_path / "steps" / "sync_cloud.py").write_text(
        STEPS.replace('if obj.name.startswith("bad")', "if False")
    )
    # Backing off for a minute: a pass now does not touch them.
    started = time.monotonic()
    assert xsync("run", str(config), "--until-idle", "--timeout", "30").returncode == 0
    assert time.monotonic() - started < 30
    assert _states(config, bad) == ["error"] * 3
    one = xsync("retry", str(config), "Region", str(bad[0].id))
    assert (one.returncode, one.stdout.strip()) == (0, f"1 object due now: Region {bad[0].id}")
    rest = xsync("retry", str(config), "--failed")
    assert rest.returncode == 0
    assert rest.stdout.strip() == (
        f"3 objects due now: Region {bad[0].id}, Region {bad[1].id}, Region {bad[2].id}"
    )
    assert xsync("run", str(config), "--once").returncode == 0
    assert _states(config, bad) == ["ok"] * 3


def test_retry_names_what_it_cannot_find(tmp_path: Path) -> None:
    config = make_project(tmp_path, STEPS)
    result = xsync("retry", str(config), "Galaxy")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "xsync: no model named 'Galaxy'; the synchronized models are: Cluster, Region"
    )
    result = xsync("retry", str(config), "Region", "999")
    assert (result.returncode, result.stderr.strip()) == (1, "xsync: no Region with id 999")
    result = xsync("status", str(config), "Region", "999")
    assert (result.returncode, result.stderr.strip()) == (1, "xsync: no Region with id 999")


def _states(config: Path, regions: list[object]) -> list[str]:
    states = []
    for region in regions:
        detail = json.loads(_status(config, "Region", str(region.id), "--json"))  # type: ignore[attr-defined]
        states.append(detail["object"]["state"])
    return states
