"""Rendering generated text: Jinja2 templates with StrictUndefined, and black for Python.

Every target renders through here, so a template that names a missing variable fails
loudly instead of writing an empty string into the output.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2

TEMPLATE_PACKAGE = "xprotogen.templates"
PYTHON_LINE_LENGTH = 100


class _ResourceLoader(jinja2.BaseLoader):
    """Templates from the `xprotogen.templates` package data, wherever it is installed."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Any]:
        resource = files(TEMPLATE_PACKAGE).joinpath(*template.split("/"))
        if not resource.is_file():
            raise jinja2.TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), str(resource), lambda: True


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: strict about undefined names, no autoescaping (not HTML)."""
    return jinja2.Environment(
        loader=_ResourceLoader(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template_name: str, **context: Any) -> str:
    """Render `templates/<template_name>` with `context`."""
    return environment().get_template(template_name).render(**context)


def format_python(text: str) -> str:
    """`text` formatted by black; raises `black.InvalidInput` when it is not valid Python."""
    import black  # heavy: only the targets that write Python pay for it

    return black.format_str(text, mode=black.Mode(line_length=PYTHON_LINE_LENGTH))
