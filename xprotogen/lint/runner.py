"""`xsgen lint FILE...`: load, lint, print, and choose the exit code.

Where output goes: findings about the files' content (lint findings, syntax and
encoding errors) are the command's output and go to stdout. A file that cannot be
read at all (missing, a directory, empty) is a failure of the run and goes to stderr.
With `--format json`, stdout always holds exactly one JSON list with every
diagnostic, unreadable files included, and stderr stays empty.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence, TextIO

from ..diagnostics import Diagnostic, XprotoError, format_json, format_plain, format_with_source
from ..loader import load_schema
from .checks import lint_schema, sort_diagnostics

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
OUTPUT_FORMATS = ("text", "json")
# The loader's rule for a file it could not read at all.
_UNREADABLE_RULE = "input"


def run_lint(
    paths: Sequence[str | Path],
    *,
    strict: bool,
    output_format: str,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Lint `paths` (in order, as one schema), print the findings, return the exit code.

    0 when clean; 1 on an error, or on a warning with `strict`; 2 on a usage error.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if output_format not in OUTPUT_FORMATS:
        print(
            f"xsgen lint: error: unknown format {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}",
            file=err,
        )
        return EXIT_USAGE
    if not paths:
        print("xsgen lint: error: no input files", file=err)
        return EXIT_USAGE
    diagnostics = lint_paths(paths)
    if output_format == "json":
        print(format_json(diagnostics), file=out)
    else:
        _print_text(diagnostics, out, err)
    return exit_code(diagnostics, strict=strict)


def lint_paths(paths: Sequence[str | Path]) -> list[Diagnostic]:
    """The findings for `paths`; syntax and read errors stand in for them when loading fails.

    The built-in core models are read first when the files need them, as in every command.
    """
    try:
        schema = load_schema(paths, core="auto")
    except XprotoError as exc:
        return sort_diagnostics(exc.diagnostics, [str(p) for p in paths])
    return lint_schema(schema)


def exit_code(diagnostics: Sequence[Diagnostic], *, strict: bool) -> int:
    """1 if any finding fails the run (errors; warnings too when strict), else 0."""
    failing = ("error", "warning") if strict else ("error",)
    return EXIT_FINDINGS if any(d.severity in failing for d in diagnostics) else EXIT_CLEAN


def _print_text(diagnostics: Sequence[Diagnostic], out: TextIO, err: TextIO) -> None:
    sources = _source_lines({d.span.file for d in diagnostics if d.span.line > 0})
    for diagnostic in diagnostics:
        stream = err if diagnostic.rule == _UNREADABLE_RULE else out
        print(_format_text(diagnostic, sources), file=stream)


def _format_text(diagnostic: Diagnostic, sources: dict[str, list[str]]) -> str:
    if diagnostic.span.line > 0:
        return format_with_source(diagnostic, sources)
    # About a whole file: a position of 0:0 would only be noise.
    plain = format_plain(diagnostic)
    return plain.replace(str(diagnostic.span), diagnostic.span.file, 1)


def _source_lines(paths: set[str]) -> dict[str, list[str]]:
    sources: dict[str, list[str]] = {}
    for path in paths:
        try:
            # Undecodable bytes are shown replaced, so an encoding error still gets its caret.
            sources[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            sources[path] = []
    return sources
