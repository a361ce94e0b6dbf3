"""Managers and query sets: `Model.objects.filter(...)`, `site.slices.all()`.

A query set is an immutable description of a selection; it asks the store each time it is
evaluated (iteration, `len`, indexing, `first`, `get`, `count`), so a long-running
synchronizer never sees stale results. Equality on a scalar goes to the store as a filter;
the other lookups (`__in`, `__gt`, ..., `exclude`) are applied here to what the store returns.
"""

from __future__ import annotations

import difflib
import operator
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    TypeVar,
    overload,
)

from ..store.chunks import CreateStreamError, create_in_chunks
from .errors import FieldError, ORMError
from .fields import Column, ForeignKey, ManyToMany, Reverse

STREAM_CHUNK = 1000  # objects per transaction of `Manager.create_stream`

if TYPE_CHECKING:
    from .model import ModelObject

M = TypeVar("M", bound="ModelObject")


def _contains(container: object, item: object) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    return item in container  # type: ignore[operator]


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[object, object], bool]:
    def test(value: object, bound: object) -> bool:
        if value is None or bound is None:
            return False  # NULL compares false, as in SQL
        try:
            return compare(value, bound)
        except TypeError:
            return False

    return test


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


_LOOKUPS: dict[str, Callable[[object, object], bool]] = {
    "exact": operator.eq,
    "iexact": lambda v, b: _lower(v) == _lower(b),
    "in": lambda v, b: v in b,  # type: ignore[operator]
    "gt": _ordered(operator.gt),
    "gte": _ordered(operator.ge),
    "lt": _ordered(operator.lt),
    "lte": _ordered(operator.le),
    "contains": _contains,
    "icontains": lambda v, b: _contains(_lower(v), _lower(b)),
    "startswith": lambda v, b: isinstance(v, str) and isinstance(b, str) and v.startswith(b),
    "endswith": lambda v, b: isinstance(v, str) and isinstance(b, str) and v.endswith(b),
    "isnull": lambda v, b: (v is None) == bool(b),
}


_SCALARS = (str, int, float)
# Lookups whose value is compared as the column's type (and so is coerced to it first).
_TYPED_LOOKUPS = frozenset({"exact", "gt", "gte", "lt", "lte"})


@dataclass(frozen=True, slots=True)
class Condition:
    """`column <lookup> value` on a store record."""

    column: str
    lookup: str
    value: object

    def matches(self, record: Mapping[str, Any]) -> bool:
        return _LOOKUPS[self.lookup](record.get(self.column), self.value)

    @property
    def store_key(self) -> str | None:
        """The key of this condition in `Store.query(filters=...)`, or None when only we can test it.

        The store gets the lookups whose meaning is the same in SQL and in Python; ordering
        on text stays here because database collations differ from Python's.
        """
        value = self.value
        if self.lookup == "exact" and isinstance(value, _SCALARS):
            return self.column
        if (
            self.lookup == "in"
            and isinstance(value, list)
            and all(isinstance(v, _SCALARS) for v in value)
        ):
            return f"{self.column}__in"
        if self.lookup in ("gt", "gte", "lt", "lte") and isinstance(value, (int, float)):
            return f"{self.column}__{self.lookup}"
        if self.lookup == "isnull" and isinstance(value, bool):
            return f"{self.column}__isnull"
        return None


def parse_conditions(
    model: type[ModelObject], lookups: Mapping[str, object]
) -> tuple[Condition, ...]:
    """`filter(site=s, name__startswith="x")` keywords as conditions on store columns."""
    return tuple(_condition(model, key, value) for key, value in lookups.items())


def _id_of(value: object) -> object:
    """A model object stands for its id in a condition; anything else for itself.

    Recognised by the class attribute every model class has, not by `isinstance`, so that this
    module need not import `model` (which imports it).
    """
    if isinstance(getattr(type(value), "model_name", None), str):
        return getattr(value, "id")
    return value


def _condition(model: type[ModelObject], key: str, value: object) -> Condition:
    name, _, lookup = key.partition("__")
    if not lookup:
        lookup = "exact"
    elif lookup not in _LOOKUPS:
        raise FieldError(
            f"{model.model_name}: unknown lookup '{lookup}' in '{key}'; "
            f"use one of {', '.join(sorted(_LOOKUPS))}"
        )
    if lookup == "in":
        value = [_id_of(v) for v in _iterable(model, key, value)]
    if name == "pk":
        name = "id"
    attribute = model._attributes.get(name)
    if isinstance(attribute, Column):
        if lookup == "in":
            return Condition(attribute.column, lookup, [attribute.coerce(v) for v in value])  # type: ignore[attr-defined]
        if lookup in _TYPED_LOOKUPS:
            value = attribute.coerce(value)
        return Condition(attribute.column, lookup, value)
    if isinstance(attribute, ForeignKey):
        return Condition(attribute.column, lookup, _id_of(value))
    if isinstance(attribute, ManyToMany):
        if lookup == "exact":
            lookup = "contains"  # filter(permitted_slices=s): the ones whose list holds s
        return Condition(attribute.column, lookup, _id_of(value))
    if isinstance(attribute, Reverse):
        raise FieldError(
            f"{model.model_name}: cannot filter on the reverse accessor '{name}'; "
            f"query {attribute.source} by its link instead"
        )
    raise FieldError(unknown_field_message(model, name))


def _iterable(model: type[ModelObject], key: str, value: object) -> list[object]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise FieldError(f"{model.model_name}: '{key}' needs a list of values, got {value!r}")
    return list(value)


def unknown_field_message(model: type[ModelObject], name: str) -> str:
    known = sorted(set(model._attributes) | {"pk"})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{model.model_name} has no field '{name}'{hint}"


class QuerySet(Generic[M]):
    """A selection of `model` objects; build it with `filter`/`exclude`, read it by iterating."""

    def __init__(
        self,
        model: type[M],
        *,
        deleted: bool | None = False,
        conditions: tuple[Condition, ...] = (),
        excluded: tuple[tuple[Condition, ...], ...] = (),
        order: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self._deleted = deleted
        self._conditions = conditions
        self._excluded = excluded
        self._order = order

    def _derive(
        self,
        *,
        conditions: tuple[Condition, ...] = (),
        excluded: tuple[tuple[Condition, ...], ...] = (),
        order: tuple[str, ...] | None = None,
    ) -> QuerySet[M]:
        return QuerySet(
            self.model,
            deleted=self._deleted,
            conditions=self._conditions + conditions,
            excluded=self._excluded + excluded,
            order=self._order if order is None else order,
        )

    # --- building -----------------------------------------------------------------------

    def all(self) -> QuerySet[M]:
        return self._derive()

    def filter(self, **lookups: object) -> QuerySet[M]:
        """The objects that match every lookup (`name="x"`, `site=s`, `id__in=[1, 2]`)."""
        return self._derive(conditions=parse_conditions(self.model, lookups))

    def exclude(self, **lookups: object) -> QuerySet[M]:
        """The objects that do not match all of the lookups together."""
        return self._derive(excluded=(parse_conditions(self.model, lookups),))

    def order_by(self, *names: str) -> QuerySet[M]:
        """Sort by these fields; a leading '-' sorts that field in descending order."""
        columns = []
        for name in names:
            descending = name.startswith("-")
            condition = _condition(self.model, name.lstrip("-"), None)
            columns.append(("-" if descending else "") + condition.column)
        return self._derive(order=tuple(columns))

    # --- reading ------------------------------------------------------------------------

    def get(self, **lookups: object) -> M:
        """The one object that matches; `Model.DoesNotExist` or `MultipleObjectsReturned` otherwise."""
        found = self.filter(**lookups)._fetch(limit=2)
        if not found:
            raise self.model.DoesNotExist(
                f"no {self.model.model_name} matches {_describe(lookups)}"
            )
        if len(found) > 1:
            raise self.model.MultipleObjectsReturned(
                f"more than one {self.model.model_name} matches {_describe(lookups)}"
            )
        return found[0]

    def first(self) -> M | None:
        found = self._fetch(limit=1)
        return found[0] if found else None

    def last(self) -> M | None:
        found = self._fetch()
        return found[-1] if found else None

    def count(self) -> int:
        return len(self._fetch())

    def exists(self) -> bool:
        return bool(self._fetch(limit=1))

    def __iter__(self) -> Iterator[M]:
        return iter(self._fetch())

    def __len__(self) -> int:
        return len(self._fetch())

    def __bool__(self) -> bool:
        return self.exists()

    @overload
    def __getitem__(self, index: int) -> M: ...

    @overload
    def __getitem__(self, index: slice) -> list[M]: ...

    def __getitem__(self, index: int | slice) -> M | list[M]:
        return self._fetch()[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.model.model_name}>"

    # --- evaluation -----------------------------------------------------------------------

    def _fetch(self, limit: int | None = None) -> list[M]:
        binding = self.model._bound()
        store_filters: dict[str, object] = {}
        local: list[Condition] = []
        for condition in self._conditions:
            key = condition.store_key
            if key is not None and key not in store_filters:
                store_filters[key] = condition.value
            else:
                local.append(condition)
        store_does_all = not local and not self._excluded and not self._order
        records = binding.store.query(
            self.model.model_name,
            filters=store_filters,
            deleted=self._deleted,
            limit=limit if store_does_all else None,
        )
        records = [
            r
            for r in records
            if all(c.matches(r) for c in local)
            and not any(all(c.matches(r) for c in group) for group in self._excluded)
        ]
        for column in reversed(self._order):
            # NULL sorts as the largest value, as the stores sort it.
            name = column.lstrip("-")
            records.sort(
                key=lambda r: (r.get(name) is None, r.get(name)), reverse=column.startswith("-")
            )
        if limit is not None:
            records = records[:limit]
        return [self.model.from_record(r) for r in records]


class Manager(QuerySet[M]):
    """`Model.objects` (live objects) and `Model.deleted_objects` (soft-deleted ones)."""

    def new(self, **fields: object) -> M:
        """An unsaved object (XOS's `objects.new`)."""
        return self.model(**fields)

    def create(self, **fields: object) -> M:
        """A new object, saved."""
        obj = self.model(**fields)
        obj.save()
        return obj

    def bulk_create(self, objs: Sequence[M]) -> list[M]:
        """Save unsaved objects of this model in one store call (one transaction per batch).

        All or nothing per batch: a bad object fails the batch, naming its field. The objects
        get their ids and stored values, as `save()` would give them.
        """
        for obj in objs:
            if type(obj).model_name != self.model.model_name or obj.id is not None:
                raise ORMError(
                    f"bulk_create on {self.model.model_name} takes unsaved "
                    f"{self.model.model_name} objects, not {obj!r}"
                )
        binding = self.model._bound()
        records = binding.store.create_many(
            self.model.model_name, [obj._creation_values() for obj in objs], actor=binding.writer
        )
        for obj, record in zip(objs, records):
            obj._load(record)
        return list(objs)

    def create_stream(self, objs: Iterable[M], *, chunk: int = STREAM_CHUNK) -> list[M]:
        """Save unsaved objects from any iterable (read lazily: a loader's), `chunk` of them
        per transaction; on a core, on one `StreamCreate` call.

        A prefix of the objects is saved: at a bad one, every object before it is saved (and
        gets its id), it and the ones after are not, and `CreateStreamError` (a store error)
        names its index and field (`xsync.store.chunks`).
        """
        binding = self.model._bound()
        name = self.model.model_name
        taken: list[M] = []

        def values() -> Iterator[Mapping[str, Any]]:
            for obj in objs:
                if type(obj).model_name != name or obj.id is not None:
                    raise ORMError(
                        f"create_stream on {name} takes unsaved {name} objects, not {obj!r}"
                    )
                taken.append(obj)
                yield obj._creation_values()

        store: Any = binding.store
        try:
            if hasattr(store, "create_stream"):  # a core: one call for the whole stream
                records = store.create_stream(name, values(), actor=binding.writer, chunk=chunk)
            else:
                records = create_in_chunks(store, name, values(), actor=binding.writer, chunk=chunk)
        except CreateStreamError as exc:
            for obj, record in zip(taken, exc.created):
                obj._load(record)
            raise
        for obj, record in zip(taken, records):
            obj._load(record)
        return taken


class RelatedManager(QuerySet[M]):
    """The objects at the other end of a many-to-many link or a reverse accessor."""


def _describe(lookups: Mapping[str, object]) -> str:
    if not lookups:
        return "the query"
    return ", ".join(f"{key}={value!r}" for key, value in lookups.items())
