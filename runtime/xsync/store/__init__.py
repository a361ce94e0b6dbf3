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
from .model_guard import BreakingModelChange
from .sql import SqlStore, open_store
from .version import CORE_VERSION

__all__ = [
    "CORE_VERSION",
    "Actor",
    "BreakingModelChange",
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
