"""A bug of ours reaches the user as one line and exit 70, never as a traceback."""

from __future__ import annotations

import argparse

import pytest

from xprotogen import cli as xsgen_cli
from xprotogen.cliargs import EXIT_INTERNAL, TRACEBACK_ENV
from xsync import cli as xsync_cli


def _boom(args: argparse.Namespace) -> int:
    raise RuntimeError("the unexpected happened")


def test_xsgen_reports_an_internal_error_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    monkeypatch.setattr(xsgen_cli, "_run_deps", _boom)
    assert xsgen_cli.main(["deps", "whatever.xproto"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "xsgen: internal error: RuntimeError: the unexpected happened "
        f"(this is a bug; set {TRACEBACK_ENV}=1 to see where it happened)"
    ]


def test_xsync_reports_an_internal_error_and_shows_the_traceback_on_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(xsync_cli, "_status", _boom)
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    assert xsync_cli.main(["status", "sync.yaml"]) == EXIT_INTERNAL
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    assert xsync_cli.main(["status", "sync.yaml"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "xsync: internal error: RuntimeError" in err
