"""`xsgen lint`: xosgenx's validator rules, reproduced, and semantic checks of our own.

Rule ids of the reproduced xosgenx rules start with `xosgenx-`; the others are ours.
This package stays light to import: no template engine, formatter or RPC library.
"""

from __future__ import annotations

from .checks import lint_schema, sort_diagnostics
from .runner import run_lint

__all__ = ["lint_schema", "run_lint", "sort_diagnostics"]
