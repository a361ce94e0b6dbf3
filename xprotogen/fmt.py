"""`xsgen fmt FILE...`: rewrite xproto files in the canonical layout (`printer`), comments kept.

A file is rewritten only if its text changes, atomically and with its permission bits kept;
before anything is written the result is parsed back and must give the same tree, comments
included, so a bug in the printer can never lose a word of a model. `--check` writes nothing
and lists the files that would change; `--diff` writes nothing and shows the changes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

from .diagnostics import XprotoError, format_plain
from .parser import parse_text, read_source
from .printer import print_file
from .revisions import files_on_disk

EXIT_OK, EXIT_CHANGES, EXIT_USAGE = 0, 1, 2


class FormatterError(Exception):
    """The canonical text of a file would not read back as the same model (a bug of ours)."""


def format_text(text: str, path: str = "<string>") -> str:
    """The canonical layout of xproto `text`; raises `XprotoError` if it does not parse."""
    tree = parse_text(text, path)
    formatted = print_file(tree)
    if parse_text(formatted, path) != tree:
        raise FormatterError(
            f"{path}: formatting would change the model; the file is left as it is"
        )
    return formatted


@dataclass
class _Outcome:
    changed: list[Path]
    failed: bool


def run_fmt(
    paths: Sequence[str | Path],
    *,
    check: bool = False,
    diff: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Format `paths`; 1 when a file is broken, or (with `check`) when one would change."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    files = files_on_disk(paths)
    if not files:
        print("xsgen fmt: error: no xproto files found", file=err)
        return EXIT_USAGE
    outcome = _Outcome([], False)
    for path in files:
        _format_one(path, outcome, write=not (check or diff), diff=diff, out=out, err=err)
    if check:
        for path in outcome.changed:
            print(f"{path}: not formatted", file=out)
    elif not diff:
        for path in outcome.changed:
            print(f"formatted {path}", file=out)
    if outcome.failed or (check and outcome.changed):
        return EXIT_CHANGES
    return EXIT_OK


def _format_one(
    path: Path, outcome: _Outcome, *, write: bool, diff: bool, out: TextIO, err: TextIO
) -> None:
    try:
        text = read_source(path)
        formatted = format_text(text, str(path))
    except XprotoError as exc:
        for diagnostic in exc.diagnostics:
            print(format_plain(diagnostic), file=err)
        outcome.failed = True
        return
    except FormatterError as exc:
        print(f"xsgen fmt: internal error: {exc}", file=err)
        outcome.failed = True
        return
    if formatted == text:
        return
    outcome.changed.append(path)
    if diff:
        import difflib

        out.writelines(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                formatted.splitlines(keepends=True),
                f"{path} (as written)",
                f"{path} (formatted)",
            )
        )
    if write:
        from .output import write_atomically

        write_atomically(path, formatted, mode=path.stat().st_mode & 0o7777)
