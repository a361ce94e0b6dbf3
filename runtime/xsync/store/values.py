"""The check every written value passes, before any SQL runs.

What a column is (kind, default, length, range) is a fact about the schema and lives in the
toolchain (`xprotogen.store_columns`); this module decides whether a value a client sent fits
it. Checking here is what keeps a bad request from ever leaving a half-written row.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any, Callable

from xprotogen.store_columns import INT64, ColumnSpec, Kind

from .base import InvalidArgument


def check_value(spec: ColumnSpec, model: str, value: Any) -> Any:
    """`value` as stored in the column `spec`, or InvalidArgument naming model and field."""
    if value is None:
        if spec.required:
            raise InvalidArgument(f"{model}.{spec.name} is required and cannot be None")
        return None
    return _CHECKERS[spec.kind](spec, model, value)


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
