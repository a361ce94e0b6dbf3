"""Model stores: the contract (`Store`) and its SQL implementation (`open_store`).

The contract is light; the SQL backend (SQLAlchemy and the drivers) loads on first use of
`SqlStore` or `open_store`, so code that only speaks the contract does not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import (
    Actor,
    Change,
    ChangeKind,
    InvalidArgument,
    NotFound,
    OutcomeWrite,
    PendingQuery,
    PermissionDenied,
    Record,
    Store,
    StoreError,
    Unauthenticated,
)
from .version import CORE_VERSION

if TYPE_CHECKING:
    from .model_guard import BreakingModelChange
    from .sql import SqlStore, open_store

_LAZY = {
    "BreakingModelChange": "model_guard",
    "SqlStore": "sql",
    "open_store": "sql",
}

__all__ = [
    "CORE_VERSION",
    "Actor",
    "BreakingModelChange",
    "Change",
    "ChangeKind",
    "InvalidArgument",
    "NotFound",
    "OutcomeWrite",
    "PendingQuery",
    "PermissionDenied",
    "Record",
    "SqlStore",
    "Store",
    "StoreError",
    "Unauthenticated",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xsync.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
