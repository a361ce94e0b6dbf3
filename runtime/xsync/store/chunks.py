"""Creating a stream of objects a chunk at a time, as a prefix: the one rule for loaders.

A stream of objects is created in chunks, each chunk in one transaction (`create_many`).
At a bad object every object before it is created and it and everything after are not;
when the store refuses a whole chunk, its objects are created one at a time up to the bad
one, so which objects exist never depends on where the chunks fall. The core's
`StreamCreate` RPC (`xsync.grpc.stream_create`) and the ORM's `Manager.create_stream` on an
embedded store both follow this rule through `create_prefix`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from .base import Actor, InvalidArgument, NotFound, PermissionDenied, Record, Store, StoreError

# Errors of one object (the store refused it, not the call): a chunk refused with one of
# these is retried one object at a time. Others (store down, credentials) end the stream.
ITEM_ERRORS = (InvalidArgument, NotFound, PermissionDenied)


class CreateStreamError(StoreError):
    """A stream of creates stopped at item `index` (None: not an item's fault); `created`
    holds the records of the objects created before it, in order."""

    def __init__(self, message: str, *, created: list[Record], index: int | None) -> None:
        super().__init__(message)
        self.created = created
        self.index = index


def create_prefix(
    store: Store, model: str, chunk: Sequence[Mapping[str, Any]], actor: Actor
) -> tuple[list[Record], tuple[int, StoreError] | None]:
    """The chunk created in one transaction; when the store refuses it, its objects one at a
    time up to the first refused: (records created, (its offset, the error) or None)."""
    try:
        return store.create_many(model, list(chunk), actor=actor), None
    except ITEM_ERRORS:
        pass
    records: list[Record] = []
    for offset, values in enumerate(chunk):
        try:
            records.extend(store.create_many(model, [values], actor=actor))
        except ITEM_ERRORS as exc:
            return records, (offset, exc)
    return records, None


def created_text(count: int) -> str:
    if count == 0:
        return "no object was created"
    return f"items 0 to {count - 1} were created ({count} objects)"


def create_in_chunks(
    store: Store,
    model: str,
    values: Iterable[Mapping[str, Any]],
    *,
    actor: Actor,
    chunk: int,
) -> list[Record]:
    """Every object of `values` created `chunk` at a time, by the rule above; a bad object
    raises `CreateStreamError` naming its index, with the records created before it."""
    records: list[Record] = []
    items = iter(values)
    while True:
        batch: list[Mapping[str, Any]] = []
        failed_source: Exception | None = None
        try:
            for item in items:
                batch.append(item)
                if len(batch) == chunk:
                    break
        except Exception as exc:  # noqa: BLE001 - the iterable's own error ends the stream
            failed_source = exc  # the objects read before it are created: they were good
        if batch:
            made, failure = create_prefix(store, model, batch, actor)
            records.extend(made)
            if failure is not None:
                index = len(records)
                raise CreateStreamError(
                    f"{model} stream item {index}: {failure[1]}; {created_text(len(records))}",
                    created=records,
                    index=index,
                ) from None
        if failed_source is not None:
            index = len(records)
            raise CreateStreamError(
                f"{model} stream item {index}: {type(failed_source).__name__}: {failed_source}; "
                f"{created_text(len(records))}",
                created=records,
                index=index,
            ) from failed_source
        if len(batch) < chunk:
            return records
