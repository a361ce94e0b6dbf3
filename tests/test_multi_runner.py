"""Several runners share one synchronizer's work over a real PostgreSQL store.

Real `xsync run` processes; each step call logs its start and end with the process id, so
the tests can check that no object was ever inside `sync_record` in two runners at once.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import run_cli
from multi_runner import CallLog, kill, make_runner_project, start_runner, stop_all
from pg import fresh_schema
from sync_project import PASSWORD, USER, Core, free_port
from sync_project import wait_for as wait
from xsync.connect import connect
from xsync.store.base import PendingQuery

REGIONS, CLUSTERS = 60, 240  # 300 objects, every Cluster waits for its Region


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


# Outcomes a runner saves in one transaction in the kill test: what a kill may lose.
OUTCOME_BATCH = 5


def runner_configs(root: Path, store: str | None, count: int, **extra: Any) -> list[Path]:
    """One config per runner, identical but for the file each one logs to."""
    base = make_runner_project(root, store, **extra)
    options = json.loads(base.read_text())
    if store is None:
        options.pop("store")
    configs = []
    for index in range(count):
        options["logging"] = {
            "level": "INFO",
            "format": "json",
            "destination": f"runner-{index}.log",
        }
        path = root / f"sync-{index}.yaml"
        path.write_text(json.dumps(options))
        configs.append(path)
    return configs


def started(root: Path, index: int) -> bool:
    log = root / f"runner-{index}.log"
    return log.exists() and '"started cloud' in log.read_text()


def create_objects(config: Path) -> dict[int, int]:
    """The Regions and Clusters; returns each Cluster's Region."""
    with connect(config) as api:
        regions = api.store.create_many("Region", [{"name": f"r{i}"} for i in range(REGIONS)])
        clusters = api.store.create_many(
            "Cluster",
            [{"name": f"c{i}", "region_id": regions[i % REGIONS]["id"]} for i in range(CLUSTERS)],
        )
    return {c["id"]: c["region_id"] for c in clusters}


def pending(config: Path) -> int:
    with connect(config) as api:
        return sum(
            len(api.store.pending(model, PendingQuery.DIRTY_OBJECTS))
            for model in ("Region", "Cluster")
        )


def check_dependency_order(log: CallLog, region_of: dict[int, int]) -> None:
    calls = log.by_object()
    for cluster, region in region_of.items():
        region_done = min(c.end for c in calls[("Region", region)] if c.end is not None)
        assert min(c.start for c in calls[("Cluster", cluster)]) >= region_done, (cluster, region)


def test_runners_share_the_work_through_a_core(tmp_path: Path) -> None:
    configs = runner_configs(tmp_path, None, 2, sleep=0.01)
    endpoint = f"127.0.0.1:{free_port()}"
    core = Core(tmp_path, endpoint, None)  # on SQLite: the core is the store's one writer
    accessor = {"endpoint": endpoint, "username": USER, "password": PASSWORD}
    for config in configs:
        options = json.loads(config.read_text())
        options["accessor"] = accessor
        config.write_text(json.dumps(options))
    runners = [start_runner(config, "--timeout", "40") for config in configs]
    try:
        for index in range(2):
            wait(lambda: started(tmp_path, index), 30, f"runner {index}'s start")
        region_of = create_objects(configs[0])
        wait(lambda: pending(configs[0]) == 0, 30, "every object synced")
        log = CallLog.read(tmp_path / "calls.log")
        assert log.overlaps() == []
        synced = log.by_object()
        assert len(synced) == REGIONS + CLUSTERS
        assert [k for k, calls in synced.items() if len(calls) > 1] == []
        assert len(log.pids()) == 2, "the work was not shared"
        check_dependency_order(log, region_of)
        status = run_cli("xsync.cli", "status", str(configs[0]), "--json")
        assert status.returncode == 0, status.stderr
        leader = json.loads(status.stdout)["runners"]["leader"]
        assert int(leader.split(":")[1]) in {r.pid for r in runners}
    finally:
        stop_all(runners)
        core.stop()


def test_runners_share_the_work_and_a_sigkilled_runners_is_taken_over_with_nothing_lost(
    tmp_path: Path, store_url: str
) -> None:
    rng = random.Random(14)
    configs = runner_configs(
        tmp_path, store_url, 4, sleep=0.03, max_workers=2, outcome_batch_size=OUTCOME_BATCH
    )
    runners = [start_runner(config, "--timeout", "60") for config in configs[:3]]
    killed: dict[int, float] = {}
    try:
        for index in range(3):
            wait(lambda: started(tmp_path, index), 30, f"runner {index}'s start")
        region_of = create_objects(configs[0])
        total = REGIONS + CLUSTERS
        calls = tmp_path / "calls.log"
        for done_share, replace in ((0.2, True), (0.5, False)):
            wait(
                lambda: len(CallLog.read(calls).by_object()) >= done_share * total,
                30,
                f"{done_share:.0%} of the objects started",
            )
            alive = [r for r in runners if r.poll() is None]
            victim = rng.choice(alive)
            killed[victim.pid] = kill(victim)
            if replace:
                runners.append(start_runner(configs[3], "--timeout", "60"))
        wait(lambda: pending(configs[0]) == 0, 40, "every object synced after the kills")
        log = CallLog.read(calls, killed)
        assert log.overlaps() == []
        synced = log.by_object()
        assert len(synced) == total
        # Synced twice only if a killed runner had started it: its step was in flight, or its
        # outcome was still waiting for its batch (at most OUTCOME_BATCH per runner), so it
        # was still outdated in the store and its lease still the dead runner's.
        started_by_killed = {c.key for c in log.calls if c.pid in killed}
        twice = {k for k, cs in synced.items() if len(cs) > 1}
        assert twice <= started_by_killed
        assert len(twice) <= 2 * (2 + OUTCOME_BATCH)  # workers and a batch, per killed runner
        assert len(log.pids()) >= 2, "the work was not shared"
        check_dependency_order(log, region_of)
        # Leases are given back when the work is done, or end with their (killed) runner.
        with connect(configs[0]) as api:
            wait(lambda: api.store.leases.holders("cloud") == {}, 5, "every lease ended")
        status = run_cli("xsync.cli", "status", str(configs[0]), "--json")
        assert status.returncode == 0, status.stderr
        runners_seen = json.loads(status.stdout)["runners"]
        assert runners_seen["leases"] == {}
        assert int(runners_seen["leader"].split(":")[1]) in {r.pid for r in runners}
    finally:
        stop_all(runners)
