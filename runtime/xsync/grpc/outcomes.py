"""The core's outcome service: `Store.write_outcomes` over gRPC, one call per batch.

A fixed service of the core beside the schema's generated API (as `leases` is): a batch mixes
models, which no per-model protobuf message carries, so its body is a small JSON object. JSON
carries every value an outcome holds exactly: None, bools, integers of any size, floats
(written with `repr`, so they read back bit for bit), strings, and the id lists of `<x>_ids`
fields. Anything else is refused, naming the item and the field.

Request: `{"writes": [[model, id, {field: value}], ...]}`; the actor travels in the call's
metadata as for every write. Reply: `{"value": [null | [status name, message], ...]}`, one
result per item: a per-item error comes back as the same error class it is in the core.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..store.base import InvalidArgument, OutcomeWrite, StoreError

SERVICE = "xsync.Outcomes"
METHOD = "Write"
PATH = f"/{SERVICE}/{METHOD}"
MAX_ITEMS = 10_000  # items in one call: a batch is a few hundred; clients chunk above this
_SCALARS = (type(None), bool, int, float, str)


def encode_request(writes: Sequence[OutcomeWrite]) -> bytes:
    return json.dumps({"writes": [[w.model, w.id, dict(w.values)] for w in writes]}).encode()


def item_size(w: OutcomeWrite) -> int:
    """Bytes the item takes in a request (for chunking below the message limit)."""
    return len(json.dumps([w.model, w.id, dict(w.values)])) + 1


def portable(w: OutcomeWrite) -> OutcomeWrite:
    """`w` with id collections as lists, or InvalidArgument naming the field JSON cannot carry."""
    if not isinstance(w.values, Mapping):
        raise InvalidArgument(f"{w.model} values must be a mapping, got {w.values!r:.60}")
    values: dict[str, Any] = {}
    for key, value in w.values.items():
        if not isinstance(key, str):
            raise InvalidArgument(f"{w.model} has no field {key!r:.60}")
        if key.endswith("_ids") and isinstance(value, (tuple, set, frozenset)):
            value = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
        _check_value(f"{w.model}.{key}", key, value)
        values[key] = value
    return OutcomeWrite(w.model, w.id, values)


def decode_request(raw: bytes) -> list[OutcomeWrite]:
    """The batch a request carries; InvalidArgument naming the item and field otherwise."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidArgument("outcomes: the request is not JSON") from None
    items = body.get("writes") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise InvalidArgument("outcomes: the request must be an object with a 'writes' list")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(f"outcomes: at most {MAX_ITEMS} items in one call, got {len(items)}")
    out: list[OutcomeWrite] = []
    for index, item in enumerate(items):
        where = f"outcomes item {index}"
        if not (isinstance(item, list) and len(item) == 3):
            raise InvalidArgument(f"{where} must be [model, id, values]")
        model, id, values = item
        if not isinstance(model, str) or isinstance(id, bool) or not isinstance(id, int):
            raise InvalidArgument(f"{where}: model must be a string and id an integer")
        if not isinstance(values, dict):
            raise InvalidArgument(f"{where}: values must be an object")
        for key, value in values.items():
            _check_value(f"{where} ({model}.{key})", key, value)
        out.append(OutcomeWrite(model, id, values))
    return out


def _check_value(where: str, key: str, value: Any) -> None:
    if isinstance(value, _SCALARS):
        return
    if key.endswith("_ids") and isinstance(value, list):
        if all(isinstance(i, int) and not isinstance(i, bool) for i in value):
            return
    raise InvalidArgument(
        f"{where}: {type(value).__name__} is not an outcome value (None, a bool, a number, "
        "a string, or a list of ids in an '<x>_ids' field)"
    )


def encode_reply(results: Sequence[StoreError | None], status_of: dict[type, Any]) -> bytes:
    """The per-item results; an error as its gRPC status name (`status_of`) and message."""
    return json.dumps(
        {
            "value": [
                None if r is None else [status_of.get(type(r), _FALLBACK).name, str(r)]
                for r in results
            ]
        }
    ).encode()


class _Fallback:
    name = "FAILED_PRECONDITION"


_FALLBACK = _Fallback()


def decode_reply(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("an outcomes reply is a JSON object")
    return value
