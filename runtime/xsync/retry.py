"""Retry now: make objects due at once, for the fix-and-retry loop (`xsync retry`, the UI).

What is written is `backend_state.retry_now`'s (both backoffs end now), as the synchronizer,
so the object's `updated` does not move and nothing else about it changes.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from . import backend_state
from .backend_state import State, classify, is_gone
from .planner import Key
from .store.base import NotFound, Record, Store


def retry_now(store: Store, model: str, id: int) -> Record:
    """End the backoffs of `model` `id` so the next pass takes it. Raises `NotFound`."""
    record = store.get(model, id, include_deleted=True)
    values = backend_state.retry_now(register=record.get("backend_register"))
    return store.update(model, id, values, actor="synchronizer", update_fields=list(values))


def select(
    store: Store,
    models: Sequence[str],
    ids: Iterable[int] = (),
    *,
    failed_only: bool = False,
    now: float,
) -> list[Key]:
    """The objects `xsync retry` acts on: those of `models` (only `ids` when given) that are
    waiting for a backoff or, with `failed_only`, whose last attempt failed."""
    wanted = set(ids)
    found: list[Key] = []
    for model in models:
        for record in store.query(model, deleted=None):
            id = int(record["id"])
            if (wanted and id not in wanted) or is_gone(record):
                continue
            c = classify(record, now)
            if failed_only and c.state is not State.ERROR:
                continue
            waiting = c.next_retry is not None or c.policy_next_retry is not None
            if wanted or waiting or c.state is State.ERROR:
                found.append((model, id))
    return found


def missing(store: Store, model: str, ids: Iterable[int]) -> list[int]:
    """The ids among `ids` that `model` has no object for."""
    absent = []
    for id in ids:
        try:
            store.get(model, id, include_deleted=True)
        except NotFound:
            absent.append(id)
    return absent
