"""Model stores: the contract (`Store`) and its SQL implementation (`open_store`)."""

from .base import (
    Actor,
    Change,
    ChangeKind,
    InvalidArgument,
    NotFound,
    PendingQuery,
    PermissionDenied,
    Record,
    Store,
    StoreError,
    Unauthenticated,
)
from .sql import SqlStore, open_store

__all__ = [
    "Actor",
    "Change",
    "ChangeKind",
    "InvalidArgument",
    "NotFound",
    "PendingQuery",
    "PermissionDenied",
    "Record",
    "SqlStore",
    "Store",
    "StoreError",
    "Unauthenticated",
    "open_store",
]
