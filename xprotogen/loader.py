"""Files to schema: parse every input, report all syntax errors together, then resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from . import ast
from .diagnostics import Diagnostic, XprotoError
from .parser import parse_file
from .schema import Schema, build_schema


def load_files(paths: Sequence[str | Path]) -> list[ast.File]:
    """Parse each file; raise one `XprotoError` holding every file's problems."""
    files: list[ast.File] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            files.append(parse_file(path))
        except XprotoError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise XprotoError(problems)
    return files


def load_schema(paths: Sequence[str | Path]) -> Schema:
    """Parse and resolve `paths` in order; later files build on earlier ones."""
    return build_schema(load_files(paths))
