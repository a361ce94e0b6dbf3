"""Django-style filters (`name`, `name__in`, `name__gt`, ...) to SQLAlchemy conditions.

Each filter value is checked against its column like a written value, so a query with a
string for an integer column is an InvalidArgument, not a database error.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import sqlalchemy as sa

from xprotogen.store_columns import ColumnSpec

from .base import InvalidArgument
from .tables import ModelTable
from .values import check_value, shown

ID_SPEC = ColumnSpec("id", "int")

_COMPARE: dict[str, Callable[[sa.ColumnElement[Any], Any], sa.ColumnElement[bool]]] = {
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
}
SUFFIXES = frozenset({"in", "isnull", *_COMPARE})


def conditions(
    mt: ModelTable,
    table: sa.Table,
    filters: Mapping[str, Any] | None,
    excludes: Mapping[str, Any] | None,
) -> list[sa.ColumnElement[bool]]:
    """Rows must match every filter and must not match all the excludes together."""
    out = [_condition(mt, table, key, value) for key, value in (filters or {}).items()]
    if excludes:
        out.append(sa.not_(sa.and_(*(_condition(mt, table, k, v) for k, v in excludes.items()))))
    return out


def _condition(mt: ModelTable, table: sa.Table, key: str, value: Any) -> sa.ColumnElement[bool]:
    name, _, suffix = key.rpartition("__")
    if not name or suffix not in SUFFIXES:
        name, suffix = key, ""
    spec = column_spec(mt, name)
    column = table.c[name]
    if suffix == "isnull":
        if not isinstance(value, bool):
            raise InvalidArgument(f"{mt.name} filter {key!r} needs a bool, got {shown(value)}")
        return column.is_(None) if value else column.is_not(None)
    if suffix == "in":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise InvalidArgument(f"{mt.name} filter {key!r} needs a list, got {shown(value)}")
        return column.in_([check_value(spec, mt.name, v) for v in value if v is not None])
    if value is None:
        if suffix:
            raise InvalidArgument(f"{mt.name} filter {key!r} cannot compare with None")
        return column.is_(None)
    checked = _check(mt, spec, value)
    return _COMPARE[suffix](column, checked) if suffix else column == checked


def _check(mt: ModelTable, spec: ColumnSpec, value: Any) -> Any:
    # Filters may compare text with a longer value than fits; only the type matters here.
    if spec.kind == "text" and isinstance(value, str):
        return value
    return check_value(spec, mt.name, value)


def column_spec(mt: ModelTable, name: str) -> ColumnSpec:
    """The column `name` of `mt` that a query may use, or InvalidArgument."""
    if name == "id":
        return ID_SPEC
    spec = mt.columns.get(name)
    if spec is not None:
        return spec
    if name in mt.many:
        raise InvalidArgument(f"{mt.name}.{name} is a many-to-many link; it cannot be filtered on")
    raise InvalidArgument(f"{mt.name} has no field {name!r}")


def ordering(
    mt: ModelTable, table: sa.Table, order_by: Sequence[str]
) -> list[sa.UnaryExpression[Any]]:
    """`name` ascending, `-name` descending; NULL sorts as the largest value on both backends."""
    out: list[sa.UnaryExpression[Any]] = []
    for key in order_by:
        name = key[1:] if key.startswith("-") else key
        column_spec(mt, name)
        column = table.c[name]
        out.append(
            column.desc().nulls_first() if key.startswith("-") else column.asc().nulls_last()
        )
    return out


def sort_key_names(order_by: Sequence[str]) -> list[tuple[str, bool]]:
    """(name, descending) pairs, for merging rows of several tables in Python."""
    return [(k[1:], True) if k.startswith("-") else (k, False) for k in order_by]
