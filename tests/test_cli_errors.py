"""`xsgen` on bad input: one clear error, exit 1, nothing on stdout, no output file, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CORE_XPROTO, run_cli

BAD_INPUTS: dict[str, tuple[bytes | None, str, str]] = {
    # name: (file content, or None for no file; where the error points; words in the message)
    "missing": (None, "{path}:", "no such file"),
    "empty": (b"", "{path}:", "empty"),
    "blank": (b"  \n\n", "{path}:", "empty"),
    "not_utf8": (b"message A {}\n// caf\xe9\n", "{path}:2:7:", "UTF-8"),
    "syntax_error": (b"message A {\n  required string n = 1\n}\n", "{path}:3:1:", "expected"),
    "policy_error": (b"policy p < a & >\n", "{path}:1:16:", "policy 'p'"),
}


def _prepare(tmp_path: Path, name: str) -> Path:
    content = BAD_INPUTS[name][0]
    path = tmp_path / f"{name}.xproto"
    if content is not None:
        path.write_bytes(content)
    return path


def _assert_one_clear_error(stderr: str, where: str, words: str) -> None:
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(error_lines) == 1, stderr
    assert error_lines[0].startswith(where), stderr
    assert words in error_lines[0], stderr


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_fails_with_one_error_naming_the_file(tmp_path: Path, name: str) -> None:
    path = _prepare(tmp_path, name)
    done = run_cli("xprotogen", "deps", str(path))
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    _, where, words = BAD_INPUTS[name]
    _assert_one_clear_error(done.stderr, where.format(path=path), words)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_lint_reports_bad_input_once_and_fails(tmp_path: Path, name: str) -> None:
    # lint's report is its output, so the error may go to stdout; it must still be the one error.
    path = _prepare(tmp_path, name)
    done = run_cli("xprotogen", "lint", str(path))
    assert done.returncode == 1, done.stderr
    _, where, words = BAD_INPUTS[name]
    _assert_one_clear_error(done.stdout + done.stderr, where.format(path=path), words)


def test_directory_argument_is_an_error(tmp_path: Path) -> None:
    done = run_cli("xprotogen", "deps", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout == ""
    _assert_one_clear_error(done.stderr, f"{tmp_path}:", "directory")


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_failed_deps_does_not_create_the_output_file(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out" / "deps.json"
    done = run_cli("xprotogen", "deps", str(_prepare(tmp_path, name)), "-o", str(out))
    assert done.returncode == 1
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_failed_deps_leaves_an_existing_output_file_untouched(tmp_path: Path) -> None:
    out = tmp_path / "deps.json"
    out.write_text("previous result\n")
    done = run_cli("xprotogen", "deps", str(_prepare(tmp_path, "syntax_error")), "-o", str(out))
    assert done.returncode == 1
    assert out.read_text() == "previous result\n"
    # No temporary file left behind either.
    assert {p.name for p in tmp_path.iterdir()} == {out.name, "syntax_error.xproto"}


def test_one_bad_file_among_good_ones_names_only_the_bad_one(tmp_path: Path) -> None:
    bad = _prepare(tmp_path, "syntax_error")
    done = run_cli("xprotogen", "deps", str(CORE_XPROTO), str(bad))
    assert done.returncode == 1
    assert done.stdout == ""
    _assert_one_clear_error(done.stderr, f"{bad}:3:1:", "expected")


@pytest.mark.parametrize(
    "arguments",
    [(), ("deps",), ("frobnicate", "x.xproto"), ("deps", "--bogus", "x.xproto"), ("--bogus",)],
    ids=[
        "no-subcommand",
        "no-files",
        "unknown-subcommand",
        "unknown-option",
        "unknown-global-option",
    ],
)
def test_usage_errors_exit_2_with_usage_on_stderr(arguments: tuple[str, ...]) -> None:
    done = run_cli("xprotogen", *arguments)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "usage:" in done.stderr
    assert "Traceback" not in done.stderr


def test_good_input_still_succeeds_quietly(tmp_path: Path) -> None:
    out = tmp_path / "deps.json"
    done = run_cli("xprotogen", "deps", str(CORE_XPROTO), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
    assert out.read_text().startswith("{")
