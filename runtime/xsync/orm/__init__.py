"""The ORM that sync steps, policies and user code see: XOS-style model classes over a store.

`make_model_classes(schema, store)` builds the classes at run time; `xsgen client` generates
typed ones on the same base. Both behave the same way because both are made of the
descriptors in `fields` and share `ModelObject`.
"""

from xprotogen.orm_specs import (
    ColumnSpec,
    ModelSpec,
    ReverseSpec,
    SpecError,
    model_spec,
    model_specs,
)

from .build import bind_classes, class_from_spec, make_model_classes
from .errors import FieldError, MultipleObjectsReturned, NotBound, ObjectDoesNotExist, ORMError
from .fields import Column, ForeignKey, ManyToMany, Reverse
from .model import Binding, ModelObject, acting_as
from .query import Manager, QuerySet, RelatedManager

__all__ = [
    "Binding",
    "Column",
    "ColumnSpec",
    "FieldError",
    "ForeignKey",
    "Manager",
    "ManyToMany",
    "ModelObject",
    "ModelSpec",
    "MultipleObjectsReturned",
    "NotBound",
    "ORMError",
    "ObjectDoesNotExist",
    "QuerySet",
    "RelatedManager",
    "Reverse",
    "ReverseSpec",
    "SpecError",
    "acting_as",
    "bind_classes",
    "class_from_spec",
    "make_model_classes",
    "model_spec",
    "model_specs",
]
