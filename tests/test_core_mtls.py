"""Mutual TLS: `xsync core --tls-client-ca` lets in only callers whose client certificate its
CA signed; a runner without one, or with another CA's, stops in one line naming the core."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from certificates import Authority, Issued
from core_support import CoreProcess, write_core_config
from store_support import SHOP, schema_from_text
from sync_project import (
    Core,
    free_port,
    make_project,
    run_once_syncs_a_region,
    runner_config,
    xsync,
)
from xsync.grpc.client import RemoteStore, TlsOptions, TlsRefused

pytestmark = pytest.mark.slow

STEPS = """
from xsync import SyncStep


class SyncRegion(SyncStep):
    observes = "Region"
"""


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path, "ca")


@pytest.fixture
def mtls_core(tmp_path: Path, authority: Authority) -> Iterator[str]:
    """The endpoint of a core that requires a client certificate signed by `authority`."""
    make_project(tmp_path, STEPS)
    server = authority.server("core", "localhost", "127.0.0.1")
    endpoint = f"127.0.0.1:{free_port()}"
    core = Core(tmp_path, endpoint, (server.cert, server.key), client_ca=authority.cert)
    yield endpoint
    core.stop()


def _tls(authority: Authority, client: Any = None) -> dict[str, str]:
    tls = {"ca": str(authority.cert)}
    if client is not None:
        tls.update(cert=str(client.cert), key=str(client.key))
    return tls


def test_a_runner_with_a_client_certificate_of_the_core_ca_syncs(
    tmp_path: Path, mtls_core: str, authority: Authority
) -> None:
    config = runner_config(tmp_path, mtls_core, _tls(authority, authority.client("runner")))
    run_once_syncs_a_region(config)


def test_a_runner_without_a_client_certificate_is_refused_in_one_line(
    tmp_path: Path, mtls_core: str, authority: Authority
) -> None:
    config = runner_config(tmp_path, mtls_core, _tls(authority))
    result = xsync("run", str(config), "--once", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: cannot reach the core at {mtls_core}: the core refused the TLS handshake: "
        "it requires a client certificate (set accessor.tls.cert and accessor.tls.key)"
    ]


def test_a_client_certificate_of_another_ca_is_refused_in_one_line(
    tmp_path: Path, mtls_core: str, authority: Authority
) -> None:
    foreign = Authority(tmp_path, "other-ca").client("runner")
    config = runner_config(tmp_path, mtls_core, _tls(authority, foreign))
    result = xsync("run", str(config), "--once", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync: cannot reach the core at {mtls_core}: the core refused the TLS handshake: "
        "it does not accept accessor.tls.cert (is it signed by the CA of the core's "
        "--tls-client-ca?)"
    ]


@pytest.mark.parametrize(
    "client_ca, problem",
    [
        (
            "missing.pem",
            "--tls-client-ca: cannot read {dir}/missing.pem: No such file or directory",
        ),
        (
            "core.key",
            "--tls-client-ca: {dir}/core.key is not a PEM certificate "
            "(no -----BEGIN CERTIFICATE----- line)",
        ),
    ],
    ids=["missing", "not a certificate"],
)
def test_the_core_refuses_a_bad_client_ca_in_one_line(
    tmp_path: Path, authority: Authority, client_ca: str, problem: str
) -> None:
    server = authority.server("core", "localhost", "127.0.0.1")
    tls = ["--tls-cert", str(server.cert), "--tls-key", str(server.key)]
    result = _core(tmp_path, *tls, "--tls-client-ca", str(tmp_path / client_ca))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"xsync core: {problem.format(dir=tmp_path)}"]


def test_the_core_refuses_a_client_ca_without_tls(tmp_path: Path, authority: Authority) -> None:
    result = _core(tmp_path, "--tls-client-ca", str(authority.cert))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "xsync core: --tls-client-ca needs --tls-cert and --tls-key (or core.tls in the "
        "config): client certificates are asked for only over TLS"
    ]


def _core(project: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    make_project(project, STEPS)
    config = runner_config(project, "127.0.0.1:1", None)
    listen = f"127.0.0.1:{free_port()}"
    store = f"sqlite:///{project / 'core.db'}"
    return xsync("core", str(config), "--listen", listen, "--db", store, *flags, timeout=60)


def test_the_core_config_can_require_client_certificates(
    tmp_path: Path, authority: Authority
) -> None:
    server = authority.server("core", "localhost", "127.0.0.1")
    tls = f"{{cert: {server.cert}, key: {server.key}, client_ca: {authority.cert}}}"
    config = write_core_config(tmp_path, extra=f"  tls: {tls}\n")
    client = authority.client("runner")
    with CoreProcess(config) as core:
        schema = schema_from_text(tmp_path, SHOP)

        def remote(cert: Issued | None) -> RemoteStore:
            options = TlsOptions(
                ca=authority.cert.read_bytes(),
                cert=None if cert is None else cert.cert.read_bytes(),
                key=None if cert is None else cert.key.read_bytes(),
            )
            return RemoteStore(
                core.endpoint, schema, username="viewer", password="viewer-pw", tls=options
            )

        with remote(client) as allowed:
            assert "Shop" in allowed.model_names()
        with remote(None) as refused, pytest.raises(TlsRefused) as caught:
            refused.model_names()
        assert "it requires a client certificate" in str(caught.value)


@pytest.mark.parametrize(
    "tls, problem",
    [
        ("{cert: core.pem}", "core.tls.key: required option is missing"),
        (
            "{cert: core.pem, key: core.key, client_ca: core.key}",
            "core.tls.client_ca: {dir}/core.key is not a PEM certificate "
            "(no -----BEGIN CERTIFICATE----- line)",
        ),
        (
            "{cert: core.pem, key: core.key, client_ca: nope.pem}",
            "core.tls.client_ca: cannot read {dir}/nope.pem: No such file or directory",
        ),
    ],
    ids=["no key", "not a certificate", "missing"],
)
def test_a_bad_core_tls_section_is_one_line(
    tmp_path: Path, authority: Authority, tls: str, problem: str
) -> None:
    authority.server("core", "localhost", "127.0.0.1")
    config = write_core_config(tmp_path, extra=f"  tls: {tls}\n")
    result = xsync("core", str(config), "--listen", f"127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"xsync core: {config}: {problem.format(dir=tmp_path)}"
    ]
