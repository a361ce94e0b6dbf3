"""The core's change-log retention call: `Store.forget_changes` over gRPC.

The leader runner prunes the change log once a minute (`xsync.retention`); runners that
reach the store through `xsync core` ask the core to, with this call. Like the lease calls
(`leases.ForgetEnded`) it is housekeeping, not part of a schema's API: a fixed service of the
core whose messages are small JSON objects. It deletes, so it needs an account that may
write as the synchronizer.

Request: `{"age_seconds": number}`. Reply: `{"value": entries deleted}`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..store.base import InvalidArgument

SERVICE = "xsync.ChangeLog"
METHOD = "Forget"
PATH = f"/{SERVICE}/{METHOD}"


def encode_request(age_seconds: float) -> bytes:
    return json.dumps({"age_seconds": age_seconds}).encode()


def decode_request(raw: bytes) -> float:
    """The age a request carries; InvalidArgument naming what is wrong otherwise."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidArgument("change log: the request is not JSON") from None
    age = body.get("age_seconds") if isinstance(body, dict) else None
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not math.isfinite(age):
        raise InvalidArgument("change log: 'age_seconds' must be a number")
    if age < 0:
        raise InvalidArgument("change log: 'age_seconds' must be 0 or more")
    return float(age)


def encode_reply(forgotten: int) -> bytes:
    return json.dumps({"value": forgotten}).encode()


def decode_reply(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a change-log reply is a JSON object")
    return value
