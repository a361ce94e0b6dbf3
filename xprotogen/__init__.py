"""xprotogen: the xproto toolchain (text -> AST -> schema -> targets -> files).

The public names below load their module on first use, so that `xsgen deps` and
`xsgen lint` pay only for what they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .diagnostics import Diagnostic, XprotoError
    from .lint import lint_schema
    from .loader import load_files, load_schema
    from .parser import parse_file, parse_text
    from .schema import Field, Link, Model, ReverseLink, Schema, build_schema
    from .targets.deps import model_deps, render_model_deps

_EXPORTS = {
    "Diagnostic": "diagnostics",
    "XprotoError": "diagnostics",
    "lint_schema": "lint",
    "load_files": "loader",
    "load_schema": "loader",
    "parse_file": "parser",
    "parse_text": "parser",
    "Field": "schema",
    "Link": "schema",
    "Model": "schema",
    "ReverseLink": "schema",
    "Schema": "schema",
    "build_schema": "schema",
    "model_deps": "targets.deps",
    "render_model_deps": "targets.deps",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xprotogen' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
