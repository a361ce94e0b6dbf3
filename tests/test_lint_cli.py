"""`xsgen lint` through a subprocess: exit codes, output forms, and where each line goes.

Lint findings (syntax and encoding errors included) are the command's output: stdout.
A file that cannot be read at all goes to stderr, as do usage errors. With
`--format json`, stdout holds one JSON list with everything and stderr stays empty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import CORE_XPROTO, corpus_file, run_cli

CLEAN = "message A {\n  required string name = 2 [max_length = 30];\n}\n"
ERROR = "message A {\n  required string name = 2;\n}\n"
WARNING_ONLY = "message A {\n  required string name = 2 [max_length = 255];\n}\n"


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("xprotogen", "lint", *args)


def _write(tmp_path: Path, text: str | bytes, name: str = "t.xproto") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_clean_file_exits_zero_silently(tmp_path: Path) -> None:
    result = _lint(_write(tmp_path, CLEAN))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_core_is_clean() -> None:
    result = _lint(str(CORE_XPROTO))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_error_exits_one_with_position_rule_source_line_and_caret(tmp_path: Path) -> None:
    path = _write(tmp_path, ERROR)
    result = _lint(path)
    assert result.returncode == 1
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{path}:2:3: error: String field should have a max_length or text=True [xosgenx-string-without-max-length]",
        "      required string name = 2;",
        "      ^",
    ]


def test_warnings_alone_exit_zero_unless_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, WARNING_ONLY)
    relaxed, strict = _lint(path), _lint("--strict", path)
    assert relaxed.returncode == 0
    assert strict.returncode == 1
    assert "warning: max_length of 255 is close to suggested max_length of 256" in relaxed.stdout
    assert relaxed.stdout == strict.stdout


def test_json_format_is_one_parseable_list(tmp_path: Path) -> None:
    path = _write(tmp_path, ERROR)
    result = _lint("--format", "json", path)
    assert result.returncode == 1
    assert result.stderr == ""
    assert json.loads(result.stdout) == [
        {
            "file": path,
            "line": 2,
            "column": 3,
            "severity": "error",
            "rule": "xosgenx-string-without-max-length",
            "message": "String field should have a max_length or text=True",
        }
    ]


def test_json_of_a_clean_file_is_an_empty_list(tmp_path: Path) -> None:
    result = _lint("--format", "json", _write(tmp_path, CLEAN))
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_corpus_file_findings_in_text_and_json_agree() -> None:
    text = _lint(str(corpus_file("vnaas")))
    data = _lint("--format", "json", str(corpus_file("vnaas")))
    heads = [line for line in text.stdout.splitlines() if not line.startswith("    ")]
    assert len(heads) == len(json.loads(data.stdout)) > 4
    assert text.returncode == data.returncode == 1


def test_usage_errors_exit_two_on_stderr(tmp_path: Path) -> None:
    for args in (
        [],
        ["--format", "xml", _write(tmp_path, CLEAN)],
        ["--bogus", _write(tmp_path, CLEAN)],
    ):
        result = _lint(*args)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert "usage:" in result.stderr
        _assert_no_traceback(result)


def test_syntax_error_is_a_finding_on_stdout(tmp_path: Path) -> None:
    path = _write(tmp_path, "message A {\n  required string name = 2\n}\n")
    result = _lint(path)
    assert result.returncode == 1
    assert result.stderr == ""
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{path}:3:1: error: ") and first.endswith("[syntax]")
    assert result.stdout.splitlines()[2].strip() == "^"
    _assert_no_traceback(result)


def test_syntax_error_in_json(tmp_path: Path) -> None:
    result = _lint("--format", "json", _write(tmp_path, "message A {"))
    assert result.returncode == 1
    [finding] = json.loads(result.stdout)
    assert (finding["rule"], finding["severity"]) == ("syntax", "error")


def test_missing_file_is_reported_on_stderr(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.xproto")
    result = _lint(missing)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"{missing}: error: no such file [input]\n"
    _assert_no_traceback(result)


def test_missing_file_in_json_goes_to_stdout(tmp_path: Path) -> None:
    result = _lint("--format", "json", str(tmp_path / "nope.xproto"))
    assert result.returncode == 1
    assert result.stderr == ""
    assert [d["rule"] for d in json.loads(result.stdout)] == ["input"]


def test_empty_file_and_directory_are_unreadable_input(tmp_path: Path) -> None:
    for path in (_write(tmp_path, ""), str(tmp_path)):
        result = _lint(path)
        assert result.returncode == 1, path
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and "[input]" in result.stderr
        _assert_no_traceback(result)


def test_non_utf8_file_names_the_byte_and_where(tmp_path: Path) -> None:
    path = _write(tmp_path, b'message A {\n  option verbose_name = "caf\xe9";\n}\n')
    result = _lint(path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{path}:2:29: error: not valid UTF-8: byte 0xe9 cannot be decoded [encoding]"
    )
    _assert_no_traceback(result)


def test_one_bad_file_among_several_reports_every_problem(tmp_path: Path) -> None:
    good = _write(tmp_path, CLEAN, "good.xproto")
    bad = _write(tmp_path, "message {", "bad.xproto")
    missing = str(tmp_path / "missing.xproto")
    result = _lint(good, bad, missing)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{bad}:1:9: error:")
    assert result.stderr.startswith(f"{missing}: error: no such file")


def test_lint_path_imports_no_heavy_modules(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from xprotogen.cli import main\n"
        f"code = main(['lint', {str(corpus_file('core'))!r}, {_write(tmp_path, ERROR)!r}])\n"
        "heavy = sorted(m for m in ('jinja2', 'black', 'grpc', 'kafka', 'sqlalchemy') if m in sys.modules)\n"
        "print(code, heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.stderr.strip() == "1 []"
