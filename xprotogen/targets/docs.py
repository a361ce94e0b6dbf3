"""What generated code says about a model: the comment above its message and its description."""

from __future__ import annotations

from ..schema import Model


def model_summary(model: Model) -> str | None:
    """The comment written above the message and its description option, or None."""
    parts = [p for p in (model.doc, model.description) if p]
    return "\n\n".join(dict.fromkeys(parts)) or None
