"""One leader among several runners: only it runs model policies and pull steps, and another
runner takes over within the lease time when it dies (real processes, real PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from multi_runner import kill, make_runner_project, start_runner, stop_all
from pg import fresh_schema
from sync_project import wait_for as wait
from xsync.connect import connect

LEASE = 2.0

NOTE = """
import os
import time


def note(path, what):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{{what}} {{os.getpid()}} {{time.time():.6f}}\\n".encode())
    finally:
        os.close(fd)
"""

POLICY = """
from xsync import Policy

{note}

class RegionPolicy(Policy):
    model_name = "Region"

    def handle_create(self, obj):
        note({path!r}, f"policy-{{obj.id}}")
"""

PULL = """
from xsync import PullStep

{note}

class PullNothing(PullStep):
    requested_interval = 0.1

    def pull_records(self):
        note({path!r}, "pull")
"""


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def leader_project(root: Path, store: str) -> Path:
    config = make_runner_project(root, store)
    calls = str(root / "leader.log")
    for folder, source in (("policies", POLICY), ("pulls", PULL)):
        (root / folder).mkdir()
        (root / folder / f"{folder}.py").write_text(
            source.format(note=NOTE.format(), path=calls).replace("{{", "{").replace("}}", "}")
        )
    options = json.loads(config.read_text())
    options.update(model_policies_dir="policies", pull_steps_dir="pulls", lease_seconds=LEASE)
    config.write_text(json.dumps(options))
    return config


def notes(root: Path) -> list[tuple[str, int, float]]:
    path = root / "leader.log"
    text = path.read_text() if path.exists() else ""
    return [(w, int(p), float(t)) for w, p, t in (line.split() for line in text.splitlines())]


def policed(config: Path, ids: list[int]) -> bool:
    with connect(config) as api:
        return all(api.store.get("Region", i)["policed"] is not None for i in ids)


def create_regions(config: Path, names: list[str]) -> list[int]:
    with connect(config) as api:
        return [r["id"] for r in api.store.create_many("Region", [{"name": n} for n in names])]


def test_only_the_leader_runs_policies_and_pull_steps_and_another_takes_over(
    tmp_path: Path, store_url: str
) -> None:
    config = leader_project(tmp_path, store_url)
    runners = [start_runner(config, "--timeout", "40") for _ in range(2)]
    try:
        wait(lambda: len([n for n in notes(tmp_path) if n[0] == "pull"]) >= 5, 30, "pulls")
        first = create_regions(config, ["a", "b", "c"])
        # Policed (saved), not only called: a policy cut short by the kill runs again later.
        wait(lambda: policed(config, first), 20, "the first policies")
        leaders = {pid for _, pid, _ in notes(tmp_path)}
        assert len(leaders) == 1, "policies or pull steps ran in two runners"
        leader = next(r for r in runners if r.pid in leaders)
        killed_at = kill(leader)
        survivor = next(r for r in runners if r is not leader)
        wait(
            lambda: any(pid == survivor.pid for _, pid, _ in notes(tmp_path)),
            LEASE + 8,
            "the survivor taking the lead",
        )
        took_over = min(t for _, pid, t in notes(tmp_path) if pid == survivor.pid)
        # Within the lease (plus one renewal period and the pull step's own interval).
        assert took_over - killed_at <= LEASE + LEASE / 3 + 1.0
        then = create_regions(config, ["d", "e"])
        wanted = {f"policy-{i}" for i in then}
        wait(lambda: wanted <= {n[0] for n in notes(tmp_path)}, 20, "the later policies")
        by = {what: pid for what, pid, _ in notes(tmp_path) if what.startswith("policy-")}
        assert {by[f"policy-{i}"] for i in first} == {leader.pid}
        assert {by[f"policy-{i}"] for i in then} == {survivor.pid}
        # Never both at once: nothing from the survivor before the leader died.
        assert all(t > killed_at for _, pid, t in notes(tmp_path) if pid == survivor.pid)
    finally:
        stop_all(runners)
