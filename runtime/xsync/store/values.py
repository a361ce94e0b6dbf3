"""Columns as the store sees them: kind, default, and the check every written value passes.

A `ColumnSpec` is built from an xproto field (or from the lifecycle table below, for models
that do not inherit XOSBase). Checking values here, before any SQL runs, is what keeps a bad
request from ever leaving a half-written row.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any, Callable, Literal

from xprotogen.options import NOW, NowDefault, literal_default
from xprotogen.options import Default as _Default
from xprotogen.schema import Field

from .base import InvalidArgument

Kind = Literal["text", "int", "bigint", "float", "bool", "date"]

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)

_INT_TYPES = {"int32": INT32, "sint32": INT32, "sfixed32": INT32}
_UINT32_TYPES = {"uint32", "fixed32"}
_INT64_TYPES = {"int64", "sint64", "sfixed64", "uint64", "fixed64"}
_FLOAT_TYPES = {"float", "double"}


# The default markers and reading of `default` options are the toolchain's, shared with the ORM.
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

    def initial(self, now: float) -> Any:
        """The value a new row gets when the writer gives none."""
        return now if isinstance(self.default, NowDefault) else self.default

    def check(self, model: str, value: Any) -> Any:
        """`value` as stored in this column, or InvalidArgument naming model and field."""
        if value is None:
            if self.required:
                raise InvalidArgument(f"{model}.{self.name} is required and cannot be None")
            return None
        checker = _CHECKERS[self.kind]
        return checker(self, model, value)


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 60, 60
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 6


def shown(value: Any) -> str:
    """A short repr of a value a client sent, for an error message: never deep, never long
    (a full repr of a list nested 100,000 deep recurses past the limit)."""
    return _SHOWN.repr(value)


def _wrong(spec: ColumnSpec, model: str, value: Any, expected: str) -> InvalidArgument:
    return InvalidArgument(
        f"{model}.{spec.name} must be {expected}, got {type(value).__name__} {shown(value)}"
    )


def _check_text(spec: ColumnSpec, model: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise _wrong(spec, model, value, "a string")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise InvalidArgument(
            f"{model}.{spec.name} is {len(value)} characters long; the limit is {spec.max_length}"
        )
    return value


def _check_int(spec: ColumnSpec, model: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(spec, model, value, "an integer")
    low, high = spec.int_range or INT64
    if not low <= value <= high:
        raise InvalidArgument(f"{model}.{spec.name} = {value} is out of range [{low}, {high}]")
    return value


def _check_float(spec: ColumnSpec, model: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "a timestamp (float seconds since the epoch)" if spec.kind == "date" else "a number"
        raise _wrong(spec, model, value, what)
    if not math.isfinite(value):
        raise InvalidArgument(f"{model}.{spec.name} must be finite, got {value!r}")
    return float(value)


def _check_bool(spec: ColumnSpec, model: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise _wrong(spec, model, value, "a bool")
    return value


_CHECKERS: dict[Kind, Callable[[ColumnSpec, str, Any], Any]] = {
    "text": _check_text,
    "int": _check_int,
    "bigint": _check_int,
    "float": _check_float,
    "date": _check_float,
    "bool": _check_bool,
}


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
