"""Columns as a store keeps them: kind, default, length and range, derived from an xproto field.

These are facts about the schema, so they live in the toolchain: the scaffold's sample
objects read them, and the runtime's store (`xsync.store`) builds its tables and checks
written values against them. The runtime imports this module, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .options import NOW, NowDefault, literal_default
from .options import Default as _Default
from .schema import Field

Kind = Literal["text", "int", "bigint", "float", "bool", "date"]

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)

_INT_TYPES = {"int32": INT32, "sint32": INT32, "sfixed32": INT32}
_UINT32_TYPES = {"uint32", "fixed32"}
_INT64_TYPES = {"int64", "sint64", "sfixed64", "uint64", "fixed64"}
_FLOAT_TYPES = {"float", "double"}

# The default markers and reading of `default` options are shared with the ORM's specs.
Default = _Default


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One scalar or link-to-one column of a model table."""

    name: str
    kind: Kind
    default: Default = None
    max_length: int | None = None
    required: bool = False
    feedback: bool = False
    link_peer: str | None = None  # the peer model's name for a `<x>_id` column
    int_range: tuple[int, int] | None = None

    def initial(self, now: float) -> object:
        """The value a new row gets when the writer gives none."""
        return now if isinstance(self.default, NowDefault) else self.default


def column_for_field(f: Field) -> ColumnSpec:
    """The column that stores a scalar field or a link to one object."""
    if f.link is not None:
        return ColumnSpec(
            name=f.column_name,
            kind="int",
            default=None,
            required=f.required,
            link_peer=f.link.peer_name,
            int_range=(1, INT32[1]),
        )
    kind, int_range = _kind_of(f)
    max_length = f.options.value("max_length")
    return ColumnSpec(
        name=f.column_name,
        kind=kind,
        default=_default_of(f, kind),
        max_length=max_length if kind == "text" and isinstance(max_length, int) else None,
        required=f.required,
        feedback=f.options.flag("feedback_state"),
        int_range=int_range,
    )


def _kind_of(f: Field) -> tuple[Kind, tuple[int, int] | None]:
    if f.type == "string":
        return ("date" if f.content_type == "date" else "text"), None
    if f.type in _INT_TYPES:
        return "int", _INT_TYPES[f.type]
    # uint32 does not fit PostgreSQL's signed INTEGER, so it is stored as BIGINT.
    if f.type in _UINT32_TYPES:
        return "bigint", UINT32
    if f.type in _INT64_TYPES:
        return "bigint", INT64
    if f.type in _FLOAT_TYPES:
        return "float", None
    if f.type == "bool":
        return "bool", None
    return "text", None  # bytes and unknown scalar types are kept as text


def _default_of(f: Field, kind: Kind) -> Default:
    if kind == "date" and f.options.flag("auto_now_add"):
        return NOW
    return literal_default(f.options.get("default"), "int" if kind == "bigint" else kind)
