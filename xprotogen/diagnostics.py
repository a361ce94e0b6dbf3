"""Diagnostics: what went wrong, where, and how to show it to a person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from .ast import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: a severity, a message, a rule id and the span it is about."""

    severity: Severity
    message: str
    rule: str
    span: Span

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.column, self.message)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
        }


class XprotoError(Exception):
    """Input that cannot be turned into a schema. Carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(format_plain(d) for d in self.diagnostics))


class TargetError(Exception):
    """A target could not produce its files (protoc, Graphviz, an output folder); the message says why."""


def format_plain(diagnostic: Diagnostic) -> str:
    span = diagnostic.span
    return f"{span}: {diagnostic.severity}: {diagnostic.message} [{diagnostic.rule}]"


def format_with_source(diagnostic: Diagnostic, source_lines: dict[str, list[str]]) -> str:
    """The plain line, then the offending source line with a caret under the column."""
    head = format_plain(diagnostic)
    lines = source_lines.get(diagnostic.span.file)
    line_no = diagnostic.span.line
    if not lines or not 1 <= line_no <= len(lines):
        return head
    text = lines[line_no - 1].rstrip("\r\n").expandtabs(1)
    column = max(diagnostic.span.column, 1)
    return f"{head}\n    {text}\n    {' ' * (column - 1)}^"


def format_json(diagnostics: Iterable[Diagnostic]) -> str:
    import json  # only `--format json` needs it; every run imports this module

    return json.dumps([d.as_dict() for d in diagnostics], indent=2)
