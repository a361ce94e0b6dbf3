"""Descriptors that make model attributes: columns, links, many-to-many links, reverse accessors.

A descriptor holds only what the schema says about the attribute; the values live in the
object (`ModelObject._values`, keyed by store column), and the object does the store work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Iterable, NoReturn, TypeVar, overload

if TYPE_CHECKING:
    from .model import ModelObject
    from .query import RelatedManager

T = TypeVar("T")
M = TypeVar("M", bound="ModelObject")


class Attribute:
    """Base of the ORM descriptors; `name` is the attribute name, set when the class is made."""

    name: str = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name


class Column(Attribute, Generic[T]):
    """A value stored in one store column: a scalar, a link's `<name>_id`, a `<name>_ids` list."""

    def __init__(
        self, *, default: object = None, column: str | None = None, python_type: str | None = None
    ) -> None:
        self.default = default
        self._column = column
        # "int", "float", "str" or "bool" when known: filters coerce values to it, as XOS's do.
        self.python_type = python_type

    @property
    def column(self) -> str:
        return self._column or self.name

    def coerce(self, value: object) -> object:
        """`value` as this column's type when it is a scalar given as another type.

        XOS's ORM sends filter values to Django, which converts them to the field's type, so
        CORD code filters an integer field with a string (`filter(uni_port_id="5")`). A value
        that does not convert is passed on as it is, and the store refuses it naming the field.
        """
        kind = self.python_type
        if value is None or isinstance(value, bool) or kind is None:
            return value
        try:
            if kind == "int" and isinstance(value, (str, float)):
                number = float(value)
                return int(number) if number.is_integer() else value
            if kind == "float" and isinstance(value, (str, int)):
                return float(value)
            if kind == "str" and isinstance(value, (int, float)):
                return str(value)
        except ValueError:
            return value
        return value

    def initial(self) -> object:
        """The value of a fresh object; lists are copied so objects never share one."""
        return list(self.default) if isinstance(self.default, list) else self.default

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Column[T]: ...

    @overload
    def __get__(self, obj: ModelObject, owner: type[Any]) -> T: ...

    def __get__(self, obj: ModelObject | None, owner: type[Any]) -> Column[T] | T:
        if obj is None:
            return self
        value: T = obj._read(self.column)
        return value

    def __set__(self, obj: ModelObject, value: T) -> None:
        obj._write(self.column, value)


class ForeignKey(Attribute, Generic[M]):
    """A link to one object (`slice.site`), stored as the peer's id in `<name>_id`."""

    def __init__(self, *, peer: str, column: str | None = None) -> None:
        self.peer = peer
        self._column = column

    @property
    def column(self) -> str:
        return self._column or f"{self.name}_id"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> ForeignKey[M]: ...

    @overload
    def __get__(self, obj: ModelObject, owner: type[Any]) -> M | None: ...

    def __get__(self, obj: ModelObject | None, owner: type[Any]) -> ForeignKey[M] | M | None:
        if obj is None:
            return self
        peer: M | None = obj._follow(self.name, self.column, self.peer)  # type: ignore[assignment]
        return peer

    def __set__(self, obj: ModelObject, value: M | None) -> None:
        obj._link(self.name, self.column, self.peer, value)


class ManyToMany(Attribute, Generic[M]):
    """A many-to-many link (`network.permitted_slices`), stored as a list of ids in `<name>_ids`."""

    def __init__(self, *, peer: str, column: str | None = None) -> None:
        self.peer = peer
        self._column = column

    @property
    def column(self) -> str:
        return self._column or f"{self.name}_ids"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> ManyToMany[M]: ...

    @overload
    def __get__(self, obj: ModelObject, owner: type[Any]) -> RelatedManager[M]: ...

    def __get__(
        self, obj: ModelObject | None, owner: type[Any]
    ) -> ManyToMany[M] | RelatedManager[M]:
        if obj is None:
            return self
        related: RelatedManager[M] = obj._many(self.column, self.peer)  # type: ignore[assignment]
        return related

    def __set__(self, obj: ModelObject, value: Iterable[M]) -> None:
        obj._link_many(self.name, self.column, self.peer, value)


class Reverse(Attribute, Generic[M]):
    """The other side of a link (`site.slices`): the `source` objects that point at this one."""

    def __init__(self, *, source: str, column: str, many: bool = False) -> None:
        self.source = source
        self.column = column
        self.many = many

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Reverse[M]: ...

    @overload
    def __get__(self, obj: ModelObject, owner: type[Any]) -> RelatedManager[M]: ...

    def __get__(self, obj: ModelObject | None, owner: type[Any]) -> Reverse[M] | RelatedManager[M]:
        if obj is None:
            return self
        related: RelatedManager[M] = obj._reverse(self.source, self.column, self.many)  # type: ignore[assignment]
        return related

    def __set__(self, obj: ModelObject, value: NoReturn) -> None:
        raise AttributeError(
            f"{obj.model_name}.{self.name} lists the {self.source} objects that link here; "
            f"set the link on the {self.source} side instead"
        )
