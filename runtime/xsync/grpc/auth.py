"""Who is calling: credentials and the writer role, both carried in call metadata.

A call authenticates with `username` and `password` metadata, or with an
`authorization: basic <base64 user:password>` header, naming one of the core's accounts
(`xsync.accounts`). It may name the actor it writes as with `actor: synchronizer` or
`actor: policy` (XOS sent `is_sync_save`/`is_policy_save`); without one, its writes are a
user's. The account's role decides which actors it may name (the server checks it).
"""

from __future__ import annotations

import base64
import binascii
from typing import Sequence

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
