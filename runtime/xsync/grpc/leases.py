"""The core's lease service: the store's leases (`xsync.store.leases`) over gRPC.

Runners that reach the store through `xsync core` share a synchronizer's work through these
calls, exactly as runners on PostgreSQL do through the tables. They are a fixed service of
the core, not part of a schema's API, so their messages are small JSON objects rather than
protobuf types generated per schema.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from ..store.base import InvalidArgument, StoreError

SERVICE = "xsync.Leases"
# Method -> (whether it changes leases, so needs an account that may write as the synchronizer).
METHODS: dict[str, bool] = {
    "Clock": False,
    "Claim": True,
    "Renew": True,
    "ReleaseAll": True,
    "Holders": False,
    "Lead": True,
    "Leader": False,
    "Resign": True,
    "ForgetEnded": True,
}
MAX_IDS = 100_000  # ids in one Claim: far above any batch a runner sends


def path(method: str) -> str:
    return f"/{SERVICE}/{method}"


def decode(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a lease request is a JSON object")
    return value


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def encode_reply(value: Any) -> bytes:
    # Wrapped: grpcio takes a deserializer's None for a failure, and some replies are null.
    return encode({"value": value})


def decode_reply(raw: bytes) -> dict[str, Any]:
    return decode(raw)  # the caller unwraps "value": the deserializer must not return None


def serve_call(leases: Any, method: str, request: dict[str, Any]) -> Any:
    """Run one lease call on the core's store; the JSON-able result."""
    if leases is None:
        raise StoreError("this core's store keeps no leases")
    if method == "Clock":
        return leases.clock()
    owner = _text(request, "owner")
    holder = _text(request, "holder", required=method not in ("Holders", "Leader", "ForgetEnded"))
    if method == "Claim":
        return leases.claim(
            owner,
            holder,
            _ids(request, "ids"),
            seen_at=_number(request, "seen_at"),
            lease_seconds=_seconds(request),
            release=_ids(request, "release"),
        )
    if method == "Renew":
        return leases.renew(owner, holder, _seconds(request))
    if method == "ReleaseAll":
        return leases.release_all(owner, holder)
    if method == "Holders":
        return leases.holders(owner)
    if method == "Lead":
        return leases.lead(owner, holder, _seconds(request))
    if method == "Leader":
        return leases.leader(owner)
    if method == "Resign":
        leases.resign(owner, holder)
        return None
    if method == "ForgetEnded":
        return leases.forget_ended(owner, _number(request, "age_seconds"))
    raise InvalidArgument(f"unknown lease call {method!r}")


def _text(request: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = request.get(key, "")
    if not isinstance(value, str) or (required and not value) or len(value) > 1024:
        raise InvalidArgument(f"lease call: {key!r} must be a non-empty string")
    return value


def _number(request: dict[str, Any], key: str) -> float:
    value = request.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidArgument(f"lease call: {key!r} must be a number")
    return float(value)


def _seconds(request: dict[str, Any]) -> float:
    value = _number(request, "lease_seconds")
    if not 0 < value <= 86400:
        raise InvalidArgument("lease call: 'lease_seconds' must be from 0 to 86400")
    return value


def _ids(request: dict[str, Any], key: str) -> list[int]:
    value = request.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise InvalidArgument(f"lease call: {key!r} must be a list of ids")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**31:
            raise InvalidArgument(f"lease call: {key!r} must hold positive 32-bit ids")
    return value


class RemoteLeases:
    """The `claims.Leases` of a core: each method one unary call with a JSON body."""

    def __init__(self, call: Callable[[str, dict[str, Any], bool], Any]) -> None:
        # call(method, request, writes) -> the decoded reply; raises the store's errors.
        self._call = call

    def clock(self) -> float:
        return float(self._call("Clock", {}, False))

    def claim(
        self,
        owner: str,
        holder: str,
        ids: Sequence[int],
        *,
        seen_at: float,
        lease_seconds: float,
        release: Sequence[int] = (),
    ) -> list[int]:
        request = {
            "owner": owner,
            "holder": holder,
            "ids": list(ids),
            "seen_at": seen_at,
            "lease_seconds": lease_seconds,
            "release": list(release),
        }
        return [int(i) for i in self._call("Claim", request, True)]

    def renew(self, owner: str, holder: str, lease_seconds: float) -> int:
        request = {"owner": owner, "holder": holder, "lease_seconds": lease_seconds}
        return int(self._call("Renew", request, True))

    def release_all(self, owner: str, holder: str) -> int:
        return int(self._call("ReleaseAll", {"owner": owner, "holder": holder}, True))

    def holders(self, owner: str) -> dict[str, int]:
        found = self._call("Holders", {"owner": owner}, False)
        return {str(k): int(v) for k, v in found.items()}

    def lead(self, owner: str, holder: str, lease_seconds: float) -> bool:
        request = {"owner": owner, "holder": holder, "lease_seconds": lease_seconds}
        return bool(self._call("Lead", request, True))

    def leader(self, owner: str) -> str | None:
        found = self._call("Leader", {"owner": owner}, False)
        return None if found is None else str(found)

    def resign(self, owner: str, holder: str) -> None:
        self._call("Resign", {"owner": owner, "holder": holder}, True)

    def forget_ended(self, owner: str, age_seconds: float) -> int:
        request = {"owner": owner, "age_seconds": age_seconds}
        return int(self._call("ForgetEnded", request, True))
