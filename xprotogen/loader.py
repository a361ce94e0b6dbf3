"""Files to schema: parse every input, report all syntax errors together, then resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from . import ast
from .core_models import CoreMode, with_core
from .diagnostics import Diagnostic, XprotoError
from .parser import parse_file
from .schema import Schema, build_schema


def load_files(paths: Sequence[str | Path], *, core: CoreMode = "never") -> list[ast.File]:
    """Parse each file; raise one `XprotoError` holding every file's problems.

    `core` says when the built-in core models are read first (see `core_models`).
    """
    files: list[ast.File] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            files.append(parse_file(path))
        except XprotoError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise XprotoError(problems)
    return with_core(files, core)


def load_schema(paths: Sequence[str | Path], *, core: CoreMode = "never") -> Schema:
    """Parse and resolve `paths` in order; later files build on earlier ones.

    With `core="auto"`, as every command reads its inputs, the built-in core models come
    first whenever the files use a name only they define.
    """
    return build_schema(load_files(paths, core=core))
