"""Model classes from a schema, and binding classes to a store."""

from __future__ import annotations

import types
from typing import Any, Mapping

from xprotogen.schema import Schema

from ..store.base import Actor, Store
from .fields import Attribute, Column, ForeignKey, ManyToMany, Reverse
from .model import Binding, ModelObject
from xprotogen.orm_specs import ModelSpec, model_specs


def make_model_classes(
    schema: Schema, store: Store, *, actor: Actor = "user"
) -> dict[str, type[ModelObject]]:
    """One class per concrete model of `schema`, bound to `store`, saving as `actor`."""
    classes = {spec.name: class_from_spec(spec) for spec in model_specs(schema)}
    bind_classes(classes, store, actor=actor)
    return classes


def bind_classes(
    classes: Mapping[str, type[ModelObject]], store: Store, *, actor: Actor = "user"
) -> Binding:
    """Point every class at `store`; links between them resolve through `classes`."""
    binding = Binding(store=store, actor=actor, classes=dict(classes))
    for cls in classes.values():
        cls._binding = binding
    return binding


def class_from_spec(spec: ModelSpec) -> type[ModelObject]:
    """An unbound class with one descriptor per attribute of `spec`."""
    namespace: dict[str, Attribute] = {}
    for column in spec.columns:
        if column.kind == "scalar":
            namespace[column.name] = Column(default=column.default, python_type=column.python_type)
            continue
        link_type = "int" if column.kind == "link" else None
        namespace[column.column] = Column(default=column.default, python_type=link_type)
        if column.peer is None:
            continue  # the peer is not in the schema: only its id is known
        if column.kind == "link":
            namespace[column.name] = ForeignKey(peer=column.peer, column=column.column)
        else:
            namespace[column.name] = ManyToMany(peer=column.peer, column=column.column)
    for reverse in spec.reverses:
        namespace[reverse.name] = Reverse(
            source=reverse.source, column=reverse.column, many=reverse.many
        )

    def fill(body: dict[str, Any]) -> None:
        body.update(namespace)
        body["__doc__"] = spec.description
        body["__module__"] = __name__

    keywords = {"model": spec.name, "ancestors": spec.ancestors}
    cls: type[ModelObject] = types.new_class(spec.name, (ModelObject,), keywords, fill)
    return cls


def same_columns(a: type[ModelObject], b: type[ModelObject]) -> bool:
    """Whether two classes of a model have the same attributes (a generated client is current)."""
    return set(a._attributes) == set(b._attributes)
