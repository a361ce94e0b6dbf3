"""What generated code says about a model: the `//` comment above it and its description."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..ast import NOWHERE
from ..schema import Model


def model_summary(model: Model) -> str | None:
    """The comment written above the message and its description option, or None."""
    parts = [p for p in (leading_comment(model), model.description) if p]
    return "\n\n".join(dict.fromkeys(parts)) or None


def leading_comment(model: Model) -> str | None:
    """The `//` lines right above `message Name`, joined; comments are not in the AST."""
    if model.span is NOWHERE or model.span.line < 2:
        return None
    lines = _source_lines(model.span.file)
    comment: list[str] = []
    index = model.span.line - 2
    while 0 <= index < len(lines) and lines[index].strip().startswith("//"):
        comment.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return " ".join(line for line in comment if line) or None


@lru_cache(maxsize=64)
def _source_lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()
