"""A long-running `xsync run` whose core is down at start waits for it, in one line per cause,
and stops at once on a signal; what waiting cannot fix still ends the start at once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from certificates import Authority
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

pytestmark = pytest.mark.slow

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"
"""
WAITING = "waiting for the core at {endpoint}: connection refused (is `xsync core` running there?)"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_project(tmp_path, STEPS)
    return tmp_path


@pytest.fixture
def runners() -> Iterator[list[subprocess.Popen[str]]]:
    """The runners a test starts, killed if the test left them running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for runner in started:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for stream in (runner.stdout, runner.stderr):
            if stream is not None:
                stream.close()


def _messages(project: Path) -> list[str]:
    return [line["message"] for line in log_lines(project)]


def _waiting(project: Path, endpoint: str) -> bool:
    return WAITING.format(endpoint=endpoint) in _messages(project)


def test_a_runner_started_before_its_core_waits_then_syncs(
    project: Path, runners: list[subprocess.Popen[str]]
) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    config = runner_config(project, endpoint, None)
    runner = start_xsync("run", str(config))
    runners.append(runner)
    wait_for(lambda: _waiting(project, endpoint), 30, "the waiting line")
    time.sleep(2)
    core = Core(project, endpoint, None)
    try:
        with connect(config) as api:
            region = api.Region(name="eu")
            region.save()

        def synced() -> bool:
            with connect(config) as api:
                return api.Region.objects.get(id=region.id).backend_code == 1

        wait_for(synced, 60, "the object syncing once the core is up")
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=20) == 0
    finally:
        core.stop()
    messages = _messages(project)
    assert messages.count(WAITING.format(endpoint=endpoint)) == 1
    assert not [m for m in messages if m.startswith("waiting for") and "refused" not in m]
    assert f"the core at {endpoint} answers; starting" in messages


def test_sigterm_while_waiting_for_the_core_stops_at_once(
    project: Path, runners: list[subprocess.Popen[str]]
) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    runner = start_xsync("run", str(runner_config(project, endpoint, None)))
    runners.append(runner)
    wait_for(lambda: _waiting(project, endpoint), 30, "the waiting line")
    started = time.monotonic()
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=10) == 0
    assert time.monotonic() - started < 2
    assert runner.stderr is not None and runner.stderr.read() == ""
    assert f"stopped while waiting for the core at {endpoint}" in _messages(project)


def test_wait_seconds_bounds_the_wait(project: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    config = runner_config(project, endpoint, None)
    _set_accessor(config, wait_seconds=1.5)
    started = time.monotonic()
    result = xsync("run", str(config), "--once", timeout=60)
    assert result.returncode == 1
    assert 1.5 <= time.monotonic() - started < 30
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        f"xsync: cannot reach the core at {endpoint}: connection refused "
        "(is `xsync core` running there?); still down after "
    )
    assert line.endswith(" s (accessor.wait_seconds)")


def test_wrong_credentials_end_a_long_running_start_at_once(project: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    core = Core(project, endpoint, None)
    try:
        config = runner_config(project, endpoint, None, password="not-the-password")
        result = xsync("run", str(config), "--timeout", "60", timeout=30)
    finally:
        core.stop()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: the core at {endpoint} refused the credentials of 'sync': "
        "wrong username or password"
    ]


def test_a_refused_tls_handshake_ends_a_long_running_start_at_once(project: Path) -> None:
    authority = Authority(project, "ca")
    server = authority.server("core", "localhost", "127.0.0.1")
    endpoint = f"127.0.0.1:{free_port()}"
    core = Core(project, endpoint, (server.cert, server.key), client_ca=authority.cert)
    try:
        config = runner_config(project, endpoint, {"ca": str(authority.cert)})
        result = xsync("run", str(config), "--timeout", "60", timeout=30)
    finally:
        core.stop()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: cannot reach the core at {endpoint}: the core refused the TLS handshake: "
        "it requires a client certificate (set accessor.tls.cert and accessor.tls.key)"
    ]


def _set_accessor(config: Path, **options: object) -> None:
    data = json.loads(config.read_text())
    data["accessor"].update(options)
    config.write_text(json.dumps(data))
