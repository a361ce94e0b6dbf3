"""The ORM's errors. Each message names the model and the field or object it is about."""

from __future__ import annotations


class ORMError(Exception):
    """Base of the errors the ORM raises on purpose."""


class FieldError(ORMError, AttributeError):
    """An unknown or unusable field in `Model(**kw)`, `filter`, `exclude` or `update_fields`."""


class ObjectDoesNotExist(ORMError, IndexError):
    """`get()` found nothing. Each model class has its own subclass, `Model.DoesNotExist`.

    An `IndexError` (hence a `LookupError`): XOS's ORM raises IndexError here, and CORD code
    catches it as `except IndexError`.
    """


class MultipleObjectsReturned(ORMError, LookupError):
    """`get()` found more than one object. Each model class has its own subclass."""


class NotBound(ORMError, RuntimeError):
    """A model class was used before it was bound to a store (see `ModelAccessor.install`)."""
