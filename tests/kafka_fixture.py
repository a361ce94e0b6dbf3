"""A real Kafka broker for the tests, run by `tests/services/kafka.sh`.

`kafka_endpoint` makes sure the broker is up (starting it if needed) and yields "host:port".
When no broker can be had the test is skipped, except in CI (CI=true), where that is a failure.
`stop_broker()` and `start_broker()` let a test take the broker away and bring it back.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from typing import Callable, Iterator

import pytest

from conftest import IN_CI, ROOT

KAFKA_SH = ROOT / "tests" / "services" / "kafka.sh"
HOST = "127.0.0.1"


def kafka_port() -> int:
    return int(os.environ.get("XSYNC_KAFKA_PORT", "29092"))


def endpoint() -> str:
    return f"{HOST}:{kafka_port()}"


def _kafka_sh(action: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), action], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def broker_running() -> bool:
    try:
        with socket.create_connection((HOST, kafka_port()), timeout=1.0):
            return True
    except OSError:
        return False


def start_broker() -> None:
    """Start the broker (a no-op when it runs); raise RuntimeError naming the log on failure."""
    result = _kafka_sh("start", timeout=180)
    if result.returncode != 0 or not broker_running():
        raise RuntimeError(f"kafka.sh start failed: {(result.stderr or result.stdout).strip()}")


def stop_broker() -> None:
    _kafka_sh("stop", timeout=60)


def unique_name(prefix: str) -> str:
    """A topic or group name no other test run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll a zero-argument callable until it returns truthy or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture(scope="session")
def kafka_endpoint() -> Iterator[str]:
    if not broker_running():
        try:
            start_broker()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            message = f"no Kafka broker on {endpoint()}: {error}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    yield endpoint()


__all__ = [
    "kafka_endpoint",
    "endpoint",
    "broker_running",
    "start_broker",
    "stop_broker",
    "unique_name",
    "wait_until",
]


def create_topic(name: str, partitions: int) -> None:
    """Create `name` with `partitions` partitions (Kafka 0.9 has no admin API: its topic tool)."""
    result = subprocess.run(
        ["bash", str(KAFKA_SH), "topic", name, str(partitions)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kafka.sh topic failed: {(result.stderr or result.stdout).strip()}")
