"""What an ORM class holds, derived once from the schema.

Both `make_model_classes` (the runtime's classes, `xsync.orm`) and the typed client generator
(`xsgen client`) read these specs, so a generated class and a run-time class of the same
model have the same attributes, defaults and links. They live in the toolchain because they
are facts about the schema; the runtime imports them from here, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ast import Span
from .options import DefaultKind, NowDefault, literal_default
from .schema import Field, Model, Schema

ColumnKind = Literal["scalar", "link", "many"]

# Python types of the xproto scalar types; anything else is passed through untyped.
_PYTHON_TYPES = {
    "string": "str",
    "bool": "bool",
    "int32": "int",
    "uint32": "int",
    "int64": "int",
    "uint64": "int",
    "sint32": "int",
    "sint64": "int",
    "fixed32": "int",
    "fixed64": "int",
    "float": "float",
    "double": "float",
}

# Names the ORM's own API uses; a field or reverse accessor may not take them.
RESERVED_NAMES = frozenset(
    {
        "id",
        "pk",
        "objects",
        "deleted_objects",
        "DoesNotExist",
        "MultipleObjectsReturned",
        "model_name",
        "save",
        "delete",
        "refresh",
        "tologdict",
        "leaf_model",
        "ancestors",
        "from_record",
    }
)


class SpecError(Exception):
    """A schema the ORM cannot represent (a name clash with the ORM's API); `span` is where."""

    def __init__(self, message: str, span: Span) -> None:
        super().__init__(message)
        self.span = span


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One attribute backed by a store column.

    `name` is the attribute (`site`), `column` the store key (`site_id`, `name`).
    `python_type` is the type of the column's value: the peer id for links, a list of
    ids for many-to-many links.
    """

    name: str
    column: str
    kind: ColumnKind
    python_type: str
    nullable: bool
    default: object
    peer: str | None
    help_text: str | None


@dataclass(frozen=True, slots=True)
class ReverseSpec:
    """A reverse accessor: `Site.slices` lists the `source` objects whose `column` holds the id."""

    name: str
    source: str
    column: str
    many: bool


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    ancestors: tuple[str, ...]
    description: str | None
    columns: tuple[ColumnSpec, ...]
    reverses: tuple[ReverseSpec, ...]


def model_specs(schema: Schema) -> list[ModelSpec]:
    """A spec for every concrete (non-abstract) model, in schema order."""
    return [model_spec(m) for m in schema.models if not m.options.flag("abstract")]


def model_spec(model: Model) -> ModelSpec:
    columns = tuple(_column_spec(model, f) for f in model.fields)
    taken = {c.name for c in columns} | {c.column for c in columns}
    reverses: list[ReverseSpec] = []
    for reverse in model.reverse_links:
        # A field of the same name wins, as it does in the XOS API.
        if reverse.name in taken or reverse.source.options.flag("abstract"):
            continue
        _check_name(model, reverse.name, reverse.source_field.span)
        taken.add(reverse.name)
        reverses.append(
            ReverseSpec(
                name=reverse.name,
                source=reverse.source.name,
                column=reverse.source_field.column_name,
                many=reverse.link_type == "manytomany",
            )
        )
    return ModelSpec(
        name=model.name,
        ancestors=tuple(base.name for base in model.ancestors()),
        description=model.description,
        columns=columns,
        reverses=tuple(reverses),
    )


def _check_name(model: Model, name: str, span: Span) -> None:
    if name in RESERVED_NAMES or name.startswith("_"):
        raise SpecError(
            f"{model.name}.{name}: the name is reserved by the ORM; rename the field", span
        )


def _column_spec(model: Model, field: Field) -> ColumnSpec:
    _check_name(model, field.name, field.span)
    help_text = field.help_text
    link = field.link
    if link is not None and link.is_many:
        return ColumnSpec(
            field.name, field.column_name, "many", "list[int]", False, [], _peer(field), help_text
        )
    if link is not None:
        return ColumnSpec(
            field.name, field.column_name, "link", "int", True, None, _peer(field), help_text
        )
    if field.content_type == "date":
        # Timestamps cross the store boundary as float seconds since the epoch.
        return ColumnSpec(field.name, field.name, "scalar", "float", True, None, None, help_text)
    python_type = _PYTHON_TYPES.get(field.type, "Any")
    default = _literal_default(field, python_type)
    nullable = default is None and not field.required
    return ColumnSpec(
        field.name, field.name, "scalar", python_type, nullable, default, None, help_text
    )


def _peer(field: Field) -> str | None:
    """The model a link loads; None when it has no class (unknown or abstract): only its id is offered."""
    peer = field.link.peer if field.link is not None else None
    if peer is None or peer.options.flag("abstract"):
        return None
    return peer.name


def _literal_default(field: Field, python_type: str) -> object:
    """The field's default as a Python value; None where the store computes it (`now()`)."""
    kind = _DEFAULT_KINDS.get(python_type)
    if kind is None:
        return None
    default = literal_default(field.options.get("default"), kind)
    return None if isinstance(default, NowDefault) else default


_DEFAULT_KINDS: dict[str, DefaultKind] = {
    "str": "text",
    "int": "int",
    "float": "float",
    "bool": "bool",
}
