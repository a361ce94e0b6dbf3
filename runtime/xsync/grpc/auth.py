"""Who is calling: credentials and the writer role, both carried in call metadata.

A call authenticates with `username` and `password` metadata, or with an
`authorization: basic <base64 user:password>` header. It may name its role with
`actor: synchronizer` or `actor: policy` (XOS sent `is_sync_save`/`is_policy_save`);
without one, its writes are a user's.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any, Callable, Sequence

import grpc

from ..store.base import Actor

ACTOR_KEY = "actor"
_ACTORS: dict[str, Actor] = {"user": "user", "synchronizer": "synchronizer", "policy": "policy"}

Metadata = Sequence[tuple[str, str | bytes]]


def credentials_metadata(username: str, password: str) -> tuple[tuple[str, str | bytes], ...]:
    """The metadata a client sends on every call."""
    return (("username", username), ("password", password))


def _metadata_dict(metadata: Metadata | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in metadata or ():
        out[key.lower()] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return out


def presented_credentials(metadata: Metadata | None) -> tuple[str, str] | None:
    """(username, password) from the metadata, or None when the call carries none."""
    found = _metadata_dict(metadata)
    if "username" in found or "password" in found:
        return found.get("username", ""), found.get("password", "")
    header = found.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        user, sep, password = (
            base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def actor_of(metadata: Metadata | None) -> Actor | None:
    """The writer role the call names ("user" when it names none); None for an unknown role."""
    name = _metadata_dict(metadata).get(ACTOR_KEY, "user").strip().lower()
    return _ACTORS.get(name)


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses, with UNAUTHENTICATED, every call whose credentials are not the configured ones."""

    def __init__(self, username: str, password: str) -> None:
        self._expected = (username.encode(), password.encode())

    def _accepts(self, metadata: Metadata | None) -> bool:
        presented = presented_credentials(metadata)
        if presented is None:
            return False
        # Compare both parts, always, in constant time: no early exit to time.
        user_ok = hmac.compare_digest(presented[0].encode(), self._expected[0])
        password_ok = hmac.compare_digest(presented[1].encode(), self._expected[1])
        return user_ok and password_ok

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or self._accepts(handler_call_details.invocation_metadata):
            return handler
        why = (
            "missing credentials"
            if presented_credentials(handler_call_details.invocation_metadata) is None
            else "wrong username or password"
        )
        return _refusal(handler, why)


def _refusal(handler: grpc.RpcMethodHandler[Any, Any], why: str) -> grpc.RpcMethodHandler[Any, Any]:
    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

    # The refusal must have the same shape (unary or streaming reply) as the real method.
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(refuse, **options)
    return grpc.unary_unary_rpc_method_handler(refuse, **options)
