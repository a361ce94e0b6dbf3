"""Schema to a typed Python client: one `ModelObject` subclass per model.

The attributes come from the same specs (`xprotogen.orm_specs`) that the runtime uses to build
its classes, so a generated class and a run-time class behave the same. Built in stages:
the specs become a small model of the output (`ClientClass`, `ClientAttribute`), that model
is checked for names Python or the module cannot take, and the template prints it.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import Path

from ..ast import Span
from ..diagnostics import Diagnostic, XprotoError
from ..orm_specs import ColumnSpec, SpecError, model_spec
from ..render import format_python, render
from ..schema import Model, Schema
from .docs import model_summary

# Names the generated module defines or imports; a model may not take one.
_MODULE_NAMES = frozenset(
    {"TYPE_CHECKING", "Any", "ClassVar", "Self", "Column", "ForeignKey", "Manager", "ManyToMany"}
    | {"ModelObject", "Reverse", "ModelAccessor", "MODELS", "bind", "annotations"}
)


@dataclass(frozen=True, slots=True)
class ClientAttribute:
    name: str
    annotation: str
    value: str
    doc: str | None


@dataclass(frozen=True, slots=True)
class ClientClass:
    name: str
    ancestors: tuple[str, ...]
    doc: str
    attributes: tuple[ClientAttribute, ...]


def render_client(schema: Schema) -> str:
    """The client module for `schema`, formatted by black."""
    classes = build_client(schema)
    sources = ", ".join(dict.fromkeys(Path(f.path).name for f in schema.files)) or "no files"
    uses_any = any("[Any]" in a.annotation for c in classes for a in c.attributes)
    text = render("client/models.py.j2", classes=classes, sources=sources, uses_any=uses_any)
    return format_python(text)


def build_client(schema: Schema) -> list[ClientClass]:
    """The classes to generate, checked; raises `XprotoError` naming each unusable name."""
    classes: list[ClientClass] = []
    problems: list[Diagnostic] = []
    seen: set[str] = set()
    for model in schema.models:
        if model.options.flag("abstract"):
            continue
        if model.name in seen:
            continue  # a repeated name: the first definition wins, as in the store and the API
        seen.add(model.name)
        try:
            spec = model_spec(model)
        except SpecError as exc:
            problems.append(_problem(str(exc), exc.span))
            continue
        problems.extend(
            _name_problems(model, [c.name for c in spec.columns] + [r.name for r in spec.reverses])
        )
        attributes: list[ClientAttribute] = []
        for column in spec.columns:
            attributes.extend(_column_attributes(column))
        for reverse in spec.reverses:
            attributes.append(
                ClientAttribute(
                    reverse.name,
                    f"Reverse[{reverse.source}]",
                    f'Reverse(source="{reverse.source}", column="{reverse.column}"'
                    + (", many=True)" if reverse.many else ")"),
                    _doc(f"The {reverse.source} objects whose {reverse.column} points here."),
                )
            )
        classes.append(
            ClientClass(model.name, spec.ancestors, _doc(_class_doc(model)), tuple(attributes))
        )
    if problems:
        raise XprotoError(problems)
    return classes


def _column_attributes(column: ColumnSpec) -> list[ClientAttribute]:
    doc = _doc(column.help_text) if column.help_text else None
    if column.kind == "scalar":
        annotation = column.python_type + (" | None" if column.nullable else "")
        value = "Column()" if column.default is None else f"Column(default={column.default!r})"
        return [ClientAttribute(column.name, f"Column[{annotation}]", value, doc)]
    if column.kind == "link":
        id_attribute = ClientAttribute(column.column, "Column[int | None]", "Column()", None)
        if column.peer is None:
            return [ClientAttribute(column.column, "Column[int | None]", "Column()", doc)]
        link = ClientAttribute(
            column.name,
            f"ForeignKey[{column.peer}]",
            f'ForeignKey(peer="{column.peer}", column="{column.column}")',
            doc,
        )
        return [id_attribute, link]
    ids_attribute = ClientAttribute(column.column, "Column[list[int]]", "Column(default=[])", None)
    if column.peer is None:
        return [ClientAttribute(column.column, "Column[list[int]]", "Column(default=[])", doc)]
    many = ClientAttribute(
        column.name,
        f"ManyToMany[{column.peer}]",
        f'ManyToMany(peer="{column.peer}", column="{column.column}")',
        doc,
    )
    return [ids_attribute, many]


def _name_problems(model: Model, names: list[str]) -> list[Diagnostic]:
    found = []
    if model.name in _MODULE_NAMES or not model.name.isidentifier():
        found.append(
            _problem(
                f"model name '{model.name}' cannot be used in the client module; rename the model",
                model.span,
            )
        )
    for name in names:
        if keyword.iskeyword(name) or not name.isidentifier():
            field = model.field(name)
            span = field.span if field is not None else model.span
            found.append(
                _problem(
                    f"{model.name}.{name}: not a usable Python attribute name; rename the field",
                    span,
                )
            )
    return found


def _problem(message: str, span: Span) -> Diagnostic:
    return Diagnostic("error", message, "client-name", span)


def _class_doc(model: Model) -> str:
    """The `//` comment above the message and its description option, or a plain line."""
    return model_summary(model) or f"A {model.name}."


def _doc(text: str) -> str:
    """`text` as a docstring literal for a class body, valid whatever `text` holds.

    Whitespace inside a paragraph is collapsed; paragraphs (blank-line separated) are kept.
    """
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    body = "\n\n    ".join(paragraphs).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    return f'"""{body}"""'
