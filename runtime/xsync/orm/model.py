"""`ModelObject`: the base of every model class, built at run time or generated.

An object keeps its values as the store sends them (a record keyed by column), remembers
which columns were assigned since it was loaded, and saves only those unless
`update_fields` names others. The class's binding says which store to use and as which
actor, so the same class hierarchy serves user code, policies and sync steps.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Mapping, Self, Sequence

from ..store.base import Actor, NotFound, Record, Store
from . import errors
from .fields import Attribute, Column, ForeignKey, ManyToMany, Reverse
from .query import Condition, Manager, RelatedManager, unknown_field_message

# Who the code running now saves as, whatever class it uses (see `acting_as`).
_ACTING_AS: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "xsync_acting_as", default=None
)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Within the block, saves of bound classes made by this thread are made as `actor`.

    XOS decides who saves by the thread that saves (a policy thread's saves are policy saves,
    reference section 1), not by the class used: a model policy that saves through a class it
    imported at module level still makes a policy save. The policy engine runs handlers inside
    `acting_as("policy")` to give the same meaning here.
    """
    token = _ACTING_AS.set(actor)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


@dataclass(eq=False)
class Binding:
    """Where a set of model classes reads and writes: a store, an actor, the classes by name."""

    store: Store
    actor: Actor
    classes: dict[str, type[ModelObject]]

    @property
    def writer(self) -> Actor:
        """The actor saves are made as now: `acting_as`'s, else the binding's."""
        return _ACTING_AS.get() or self.actor

    def model_class(self, name: str) -> type[ModelObject]:
        found = self.classes.get(name)
        if found is None:
            raise errors.ORMError(f"no model class named {name!r} is bound to this store")
        return found


class ModelObject:
    """One object of a model. Subclasses are made per model, with one descriptor per field.

    Class keywords: `model` (the model name, default the class name) and `ancestors`
    (the names of its xproto bases, so a `Service` link accepts a `VSGService`).
    """

    model_name: ClassVar[str] = "ModelObject"
    ancestors: ClassVar[tuple[str, ...]] = ()
    objects: ClassVar[Manager[Self]]
    deleted_objects: ClassVar[Manager[Self]]
    DoesNotExist: ClassVar[type[errors.ObjectDoesNotExist]] = errors.ObjectDoesNotExist
    MultipleObjectsReturned: ClassVar[type[errors.MultipleObjectsReturned]] = (
        errors.MultipleObjectsReturned
    )
    _attributes: ClassVar[dict[str, Attribute]] = {}
    _columns: ClassVar[dict[str, Column[Any]]] = {}
    _binding: ClassVar[Binding | None] = None

    id: Column[int | None] = Column(python_type="int")

    def __init_subclass__(
        cls, *, model: str | None = None, ancestors: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.model_name = model or cls.__name__
        cls.ancestors = tuple(ancestors)
        attributes: dict[str, Attribute] = {}
        for klass in reversed(cls.__mro__):
            attributes.update((k, v) for k, v in vars(klass).items() if isinstance(v, Attribute))
        cls._attributes = attributes
        cls._columns = {a.column: a for a in attributes.values() if isinstance(a, Column)}
        # mypy sees `cls` as the base class here; each class gets managers of its own type.
        cls.objects = Manager(cls, deleted=False)  # type: ignore[arg-type]
        cls.deleted_objects = Manager(cls, deleted=True)  # type: ignore[arg-type]
        cls.DoesNotExist = type(
            "DoesNotExist",
            (errors.ObjectDoesNotExist,),
            {"__qualname__": f"{cls.__qualname__}.DoesNotExist"},
        )
        cls.MultipleObjectsReturned = type(
            "MultipleObjectsReturned",
            (errors.MultipleObjectsReturned,),
            {"__qualname__": f"{cls.__qualname__}.MultipleObjectsReturned"},
        )

    def __init__(self, **fields: Any) -> None:
        self._values: Record = {column: attr.initial() for column, attr in self._columns.items()}
        self._changed: set[str] = set()
        self._initial: dict[str, Any] = {}
        self._related: dict[str, ModelObject] = {}
        if "leaf_model_name" in self._columns:
            self._write("leaf_model_name", self.model_name)
        for name, value in fields.items():
            if name == "pk":
                name = "id"
            attribute = self._attributes.get(name)
            if attribute is None:
                raise errors.FieldError(unknown_field_message(type(self), name))
            if isinstance(attribute, Reverse):
                raise errors.FieldError(
                    f"{self.model_name}.{name} lists the {attribute.source} objects that link here; "
                    f"set the link on the {attribute.source} side instead"
                )
            setattr(self, name, value)
        # XOS's change tracking starts from what the constructor was given.
        self._initial = {}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        """An object holding a store record (as `Store.get`/`query`/`pending` return them)."""
        obj = cls.__new__(cls)
        obj._values = dict(record)
        obj._changed = set()
        obj._initial = {}
        obj._related = {}
        return obj

    _from_record = from_record  # the name the engine used first

    @classmethod
    def _bound(cls) -> Binding:
        if cls._binding is None:
            raise errors.NotBound(
                f"{cls.model_name} is not bound to a store; get model classes from xsync.connect(...), "
                f"or bind a generated client with its bind(api)"
            )
        return cls._binding

    # --- identity -------------------------------------------------------------------------

    @property
    def pk(self) -> int | None:
        return self.id

    @pk.setter
    def pk(self, value: int | None) -> None:
        self.id = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelObject) or self.id is None:
            return self is other
        return self.model_name == other.model_name and self.id == other.id

    def __hash__(self) -> int:
        return hash((self.model_name, self.id)) if self.id is not None else id(self)

    def __repr__(self) -> str:
        name = self._values.get("name")
        shown = f" name={name!r}" if isinstance(name, str) else ""
        return f"<{self.model_name} id={self.id}{shown}>"

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: say which model and suggest a near name.
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(unknown_field_message(type(self), name))

    if TYPE_CHECKING:
        # Lets code that uses run-time classes assign fields without type errors; declared
        # attributes (a generated client's) are still checked against their own types.
        def __setattr__(self, name: str, value: Any) -> None: ...

    @property
    def class_names(self) -> str:
        """The object's model and its bases, comma-separated, leaf first (XOS's `class_names`)."""
        leaf = self._values.get("leaf_model_name") or self.model_name
        binding = type(self)._binding
        cls = binding.classes.get(leaf) if binding is not None else None
        names = (leaf, *cls.ancestors) if cls is not None else (self.model_name, *self.ancestors)
        return ",".join(names)

    # --- change tracking (XOS's ORM: is_new, diff, changed_fields, ...) ------------------

    @property
    def is_new(self) -> bool:
        """True until the object is saved for the first time."""
        return self.id is None

    @property
    def diff(self) -> dict[str, tuple[Any, Any]]:
        """`{column: (value when loaded or constructed, value now)}` for every changed column."""
        return {
            column: (old, self._values.get(column))
            for column, old in self._initial.items()
            if self._values.get(column) != old
        }

    @property
    def changed_fields(self) -> list[str]:
        """The columns a save would need to write: all those set on a new object, else `diff`'s."""
        if self.is_new:
            return sorted(self._changed - {"leaf_model_name"})
        return sorted(self.diff)

    def has_field_changed(self, name: str) -> bool:
        return self._column_name(name) in self.diff

    def get_field_diff(self, name: str) -> tuple[Any, Any] | None:
        return self.diff.get(self._column_name(name))

    def recompute_initial(self) -> None:
        """Take the current values as the new starting point: `diff` becomes empty."""
        self._initial = {}

    def save_changed_fields(self, always_update_timestamp: bool = False) -> None:
        """Save only the fields whose value changed; nothing at all when none did.

        A new object is created. With nothing changed, no write happens, so `updated` does
        not move even with `always_update_timestamp` (XOS's contract, used to avoid
        re-triggering policies and sync steps).
        """
        if self.is_new:
            self.save(always_update_timestamp=always_update_timestamp)
            return
        changed = self.changed_fields
        if changed:
            self.save(update_fields=changed, always_update_timestamp=always_update_timestamp)

    def _column_name(self, name: str) -> str:
        attribute = self._attributes.get("id" if name == "pk" else name)
        if isinstance(attribute, (Column, ForeignKey, ManyToMany)):
            return attribute.column
        return name

    def tologdict(self) -> dict[str, Any]:
        """Context for structured log lines: `model_name`, `pk`, and `name` when there is one."""
        context: dict[str, Any] = {"model_name": self.model_name, "pk": self.id}
        name = self._values.get("name")
        if name is not None:
            context["name"] = name
        return context

    # --- store operations ---------------------------------------------------------------------

    def save(
        self, update_fields: Sequence[str] | None = None, always_update_timestamp: bool = False
    ) -> None:
        """Create the object when `id` is unset, else write the assigned fields.

        With `update_fields`, only those fields are written (link names and column names
        both work); other assigned values stay unsaved in memory.
        """
        binding = self._bound()
        if self.id is None:
            record = binding.store.create(
                self.model_name, self._creation_values(), actor=binding.writer
            )
            self._load(record)
            return
        if update_fields is None:
            columns = sorted(self._changed)
        else:
            columns = [self._column_of(name) for name in update_fields]
        record = binding.store.update(
            self.model_name,
            self.id,
            {column: self._values.get(column) for column in columns},
            actor=binding.writer,
            update_fields=None if update_fields is None else columns,
            always_update_timestamp=always_update_timestamp,
        )
        unsaved = {column: self._values.get(column) for column in self._changed - set(columns)}
        self._load(record)
        for column, value in unsaved.items():
            self._write(column, value)

    def _creation_values(self) -> dict[str, Any]:
        """The columns a create sends: those assigned since the object was made."""
        return {column: self._values[column] for column in sorted(self._changed)}

    def delete(self) -> None:
        """Soft-delete the object (and, in the store, what links to it)."""
        binding = self._bound()
        if self.id is None:
            raise errors.ORMError(f"cannot delete a {self.model_name} that was never saved")
        binding.store.delete(self.model_name, self.id, actor=binding.writer)
        try:
            self.refresh()
        except errors.ObjectDoesNotExist:
            self._values["deleted"] = True

    def refresh(self) -> None:
        """Reload every field from the store, dropping unsaved changes."""
        binding = self._bound()
        if self.id is None:
            raise errors.ORMError(f"cannot refresh a {self.model_name} that was never saved")
        try:
            record = binding.store.get(self.model_name, self.id, include_deleted=True)
        except NotFound:
            raise self.DoesNotExist(f"{self.model_name} id {self.id} no longer exists") from None
        self._load(record)

    @property
    def leaf_model(self) -> ModelObject:
        """This object as its most derived model (a `Service` row seen as a `VSGService`)."""
        leaf = self._values.get("leaf_model_name")
        binding = self._bound()
        if not leaf or leaf == self.model_name or leaf not in binding.classes or self.id is None:
            return self
        return binding.model_class(leaf)._get_any(self.id)

    @classmethod
    def _get_any(cls, id: int) -> Self:
        """The object with this id, live or soft-deleted."""
        try:
            return cls.from_record(cls._bound().store.get(cls.model_name, id, include_deleted=True))
        except NotFound:
            raise cls.DoesNotExist(f"{cls.model_name} id {id} does not exist") from None

    # --- used by the descriptors ----------------------------------------------------------

    def _load(self, record: Mapping[str, Any]) -> None:
        self._values = dict(record)
        self._changed = set()
        self._initial = {}
        self._related = {}

    def _read(self, column: str) -> Any:
        if column in self._values:
            return self._values[column]
        attribute = self._columns.get(column)
        return attribute.initial() if attribute is not None else None

    def _write(self, column: str, value: Any) -> None:
        if column not in self._initial:
            # The value before the first change since load: what `diff` compares against.
            self._initial[column] = self._values.get(column)
        self._values[column] = value
        self._changed.add(column)

    def _column_of(self, name: str) -> str:
        attribute = self._attributes.get("id" if name == "pk" else name)
        if isinstance(attribute, (Column, ForeignKey, ManyToMany)):
            return attribute.column
        raise errors.FieldError(f"update_fields: {unknown_field_message(type(self), name)}")

    def _follow(self, name: str, column: str, peer: str) -> ModelObject | None:
        peer_id = self._values.get(column)
        if peer_id is None:
            return None
        cached = self._related.get(column)
        if cached is not None and cached.id == peer_id:
            return cached
        peer_class = self._bound().model_class(peer)
        try:
            found = peer_class._get_any(peer_id)
        except errors.ObjectDoesNotExist:
            raise peer_class.DoesNotExist(
                f"{self.model_name} id {self.id}: {name} points at {peer} id {peer_id}, which does not exist"
            ) from None
        self._related[column] = found
        return found

    def _link(self, name: str, column: str, peer: str, value: ModelObject | None) -> None:
        if value is None:
            self._write(column, None)
            self._related.pop(column, None)
            return
        peer_id = self._linkable_id(name, peer, value)
        self._write(column, peer_id)
        self._related[column] = value

    def _link_many(self, name: str, column: str, peer: str, values: Iterable[ModelObject]) -> None:
        self._write(column, [self._linkable_id(name, peer, v) for v in values])

    def _linkable_id(self, name: str, peer: str, value: object) -> int:
        if not isinstance(value, ModelObject) or not (
            value.model_name == peer or peer in value.ancestors
        ):
            raise TypeError(f"{self.model_name}.{name} links to a {peer}, not to {value!r}")
        if value.id is None:
            raise errors.ORMError(f"{self.model_name}.{name}: save the {peer} before linking to it")
        return value.id

    def _many(self, column: str, peer: str) -> RelatedManager[ModelObject]:
        ids = list(self._values.get(column) or ())
        return RelatedManager(
            self._bound().model_class(peer), conditions=(Condition("id", "in", ids),)
        )

    def _reverse(self, source: str, column: str, many: bool) -> RelatedManager[ModelObject]:
        source_class = self._bound().model_class(source)
        if self.id is None:
            return RelatedManager(source_class, conditions=(Condition("id", "in", []),))
        lookup = "contains" if many else "exact"
        return RelatedManager(source_class, conditions=(Condition(column, lookup, self.id),))
