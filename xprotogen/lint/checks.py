"""All lint findings for a schema: the builder's problems, xosgenx's rules, then ours."""

from __future__ import annotations

from typing import Iterable, Sequence

from .. import ast
from ..core_models import is_builtin_core
from ..diagnostics import Diagnostic
from ..schema import Schema
from .semantic_rules import SEMANTIC_RULES, resolves
from .xosgenx_rules import validate_model

# Numbering problems that only exist because a base is missing: without the base's
# fields, own field numbers look like a root model's and collide with `id`. The
# missing base is reported on its own (`undefined-base`).
_NUMBERING_RULES = frozenset({"duplicate-field-number"})


def lint_schema(schema: Schema) -> list[Diagnostic]:
    """Every finding for `schema`, without repeats, sorted by file order, line and column.

    Findings at one position keep the order the rules produced them in. Findings inside the
    built-in core are left out: they are not the user's to fix.
    """
    found: list[Diagnostic] = list(_builder_problems(schema))
    for model in schema.models:
        found.extend(validate_model(model))
    for rule in SEMANTIC_RULES:
        found.extend(rule(schema))
    found = [d for d in found if not is_builtin_core(d.span.file)]
    return sort_diagnostics(_unique(found), [f.path for f in schema.files])


def _builder_problems(schema: Schema) -> Iterable[Diagnostic]:
    unnumbered = {
        (field.span.file, field.span.line, field.span.column)
        for model in schema.models
        if any(not resolves(schema, ref) for ref in model.base_refs)
        for field in model.own_fields
    }
    for problem in schema.problems:
        span = problem.span
        if problem.rule in _NUMBERING_RULES and (span.file, span.line, span.column) in unnumbered:
            continue
        yield problem


def _unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(diagnostics))


def sort_diagnostics(
    diagnostics: Iterable[Diagnostic], file_order: Sequence[str]
) -> list[Diagnostic]:
    """Stable sort by the position of the file in `file_order`, then line, then column."""
    rank = {path: index for index, path in enumerate(file_order)}

    def key(diagnostic: Diagnostic) -> tuple[int, str, int, int]:
        span: ast.Span = diagnostic.span
        return (rank.get(span.file, len(rank)), span.file, span.line, span.column)

    return sorted(diagnostics, key=key)
