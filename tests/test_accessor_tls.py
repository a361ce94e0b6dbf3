"""The runner and a TLS core: `accessor.tls` verified against `xsync core --tls-cert/--tls-key`
on loopback, with certificates made in the test; plaintext to a remote core is warned about."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import IN_CI
from sync_project import (
    Core,
    free_port,
    log_lines,
    run_once_syncs_a_region,
    make_project,
    non_loopback_address,
    runner_config,
    xsync,
)

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"
"""


def _certificate(folder: Path, name: str, *addresses: str) -> tuple[Path, Path]:
    """A self-signed certificate for `addresses` (its own CA), and its key."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("openssl is needed to make a test certificate")
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    names = ",".join(f"IP:{a}" if a[0].isdigit() else f"DNS:{a}" for a in addresses)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={addresses[0]}", "-addext", f"subjectAltName={names}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {
        "core": _certificate(tmp_path, "core", "localhost", "127.0.0.1"),
        "other": _certificate(tmp_path, "other", "localhost", "127.0.0.1"),
    }


@pytest.fixture
def tls_core(tmp_path: Path, certificates: dict[str, tuple[Path, Path]]) -> Iterator[str]:
    make_project(tmp_path, STEPS)
    endpoint = f"127.0.0.1:{free_port()}"
    core = Core(tmp_path, endpoint, certificates["core"])
    yield endpoint
    core.stop()


def test_a_runner_trusting_the_core_certificate_syncs_over_tls(
    tmp_path: Path, tls_core: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    config = runner_config(tmp_path, tls_core, {"ca": str(certificates["core"][0])})
    run_once_syncs_a_region(config)
    assert not [line for line in log_lines(tmp_path) if line["level"] == "warning"]


def test_a_core_certificate_from_another_ca_is_refused(
    tmp_path: Path, tls_core: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    config = runner_config(tmp_path, tls_core, {"ca": str(certificates["other"][0])})
    for command in (["run", str(config), "--once"], ["status", str(config)]):
        result = xsync(*command, timeout=60)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"xsync: cannot reach the core at {tls_core}: the TLS handshake failed "
            "(is accessor.tls.ca the CA that signed the core's certificate?)"
        ]


def test_a_plaintext_runner_cannot_talk_to_a_tls_core(tmp_path: Path, tls_core: str) -> None:
    config = runner_config(tmp_path, tls_core, None)
    result = xsync("run", str(config), "--once", timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"xsync: cannot reach the core at {tls_core}: ")
    assert "does the core serve TLS? then set accessor.tls" in line


def test_a_server_name_other_than_the_certificate_is_refused(
    tmp_path: Path, tls_core: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    tls = {"ca": str(certificates["core"][0]), "server_name": "core.example.org"}
    config = runner_config(tmp_path, tls_core, tls)
    result = xsync("run", str(config), "--once", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: cannot reach the core at {tls_core}: the core's certificate is not for "
        "'core.example.org' (set accessor.tls.server_name to a name it has)"
    ]


def test_plaintext_to_a_non_loopback_core_is_warned_about_at_start(tmp_path: Path) -> None:
    make_project(tmp_path, STEPS)
    address = non_loopback_address()
    endpoint = f"{address}:{free_port('0.0.0.0')}"
    core = Core(tmp_path, endpoint, None)
    try:
        config = runner_config(tmp_path, endpoint, None)
        result = xsync("run", str(config), "--once", timeout=60)
    finally:
        core.stop()
    assert result.returncode == 0, result.stderr
    warnings = [line["message"] for line in log_lines(tmp_path) if line["level"] == "warning"]
    assert warnings == [
        f"the core at {endpoint} is reached in plaintext: the password travels unencrypted "
        "(set accessor.tls)"
    ]


@pytest.mark.parametrize(
    "tls, problem",
    [
        (
            {"ca": "missing.pem"},
            "accessor.tls.ca: cannot read {dir}/missing.pem: No such file or directory",
        ),
        ({"cert": "core.pem"}, "accessor.tls: cert and key go together"),
        ({"ca": "core.pem", "verify": False}, "accessor.tls.verify: unknown option"),
    ],
)
def test_a_bad_tls_section_is_one_line(
    tmp_path: Path, certificates: dict[str, tuple[Path, Path]], tls: dict[str, Any], problem: str
) -> None:
    make_project(tmp_path, STEPS)
    config = runner_config(tmp_path, "127.0.0.1:1", tls)
    result = xsync("run", str(config), "--once")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: {config}: {problem.format(dir=tmp_path)}"
    ]
