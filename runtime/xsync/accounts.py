"""Who may call the core: accounts, their roles, and the password hashes that prove them.

The core's config lists accounts (`core.accounts`), each a username, a password hash made by
`xsync hash-password`, and a role. The role bounds what the account may write and as whom:

| role           | reads | writes as                      | purge |
|----------------|-------|--------------------------------|-------|
| `admin`        | yes   | user, policy, synchronizer     | yes   |
| `synchronizer` | yes   | user, policy, synchronizer     | yes   |
| `user`         | yes   | user                           | no    |
| `read-only`    | yes   | nothing                        | no    |

A call may name a lesser actor (a synchronizer's policies write as `policy`), never one its
role does not allow. Hashes are scrypt from the standard library (`hashlib.scrypt`), in the
text form `scrypt$N$r$p$salt$hash` (salt and hash in unpadded base64).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Literal, Mapping

from .store.base import Actor

Role = Literal["admin", "synchronizer", "user", "read-only"]
ROLES: tuple[Role, ...] = ("admin", "synchronizer", "user", "read-only")
ROLE_ACTORS: Mapping[Role, frozenset[Actor]] = {
    "admin": frozenset({"user", "policy", "synchronizer"}),
    "synchronizer": frozenset({"user", "policy", "synchronizer"}),
    "user": frozenset({"user"}),
    "read-only": frozenset(),
}
PURGERS: frozenset[Role] = frozenset({"admin", "synchronizer"})

# scrypt's cost: about 40 ms and 16 MiB per check here. Only a login that is not in the
# verified cache pays it, so a busy client is not slowed and a guesser is.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SCHEME = "scrypt"
_MAX_N = 2**20  # refuse hashes that would take seconds and a GiB to check


class HashFormatError(ValueError):
    """A password hash that is not one `hash_password` makes; the message says why."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The text to put in an account's `password_hash` for `password`."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        (_SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest))
    )


@dataclass(frozen=True, slots=True)
class PasswordHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Parse `scrypt$N$r$p$salt$hash`; `HashFormatError` names what is wrong (never the text)."""
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != _SCHEME:
            raise HashFormatError(
                "expected a hash made by 'xsync hash-password' (scrypt$N$r$p$salt$hash)"
            )
        try:
            n, r, p = (int(x) for x in parts[1:4])
            salt, digest = _unb64(parts[4]), _unb64(parts[5])
        except (ValueError, binascii.Error):
            raise HashFormatError("the scrypt parameters or the salt/hash are malformed") from None
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise HashFormatError(f"scrypt parameters out of range (N a power of 2 up to {_MAX_N})")
        if len(salt) < 8 or len(digest) < 16:
            raise HashFormatError("the salt or the hash is too short")
        return cls(n, r, p, salt, digest)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(
            _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest)), self.digest
        )


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    password_hash: PasswordHash

    def may_write_as(self, actor: Actor) -> bool:
        return actor in ROLE_ACTORS[self.role]

    @property
    def may_purge(self) -> bool:
        return self.role in PURGERS


def plain_account(username: str, password: str, role: Role = "admin") -> Account:
    """An account from a plain password (the legacy single credential, and tests)."""
    return Account(username, role, PasswordHash.parse(hash_password(password)))


class AccountBook:
    """The accounts of a core, and the check of a presented (username, password).

    `verified` is the fast path: a password that was proven once is remembered as a keyed
    HMAC (never the text), so later calls of a logged-in client cost microseconds.
    `verify` is the slow path (scrypt); callers run it off the event loop and throttled.
    """

    def __init__(self, accounts: list[Account] | tuple[Account, ...]) -> None:
        self._accounts = {a.username: a for a in accounts}
        self._key = secrets.token_bytes(32)
        self._proven: dict[str, bytes] = {}
        self._lock = threading.Lock()
        # Unknown usernames are checked against this, so they take as long as known ones.
        self._decoy = PasswordHash.parse(hash_password(secrets.token_hex(8)))

    def __len__(self) -> int:
        return len(self._accounts)

    def _mac(self, username: str, password: str) -> bytes:
        return hmac.digest(
            self._key, f"{username}\0{password}".encode("utf-8", "replace"), "sha256"
        )

    def verified(self, username: str, password: str) -> Account | None:
        """The account when this password was already proven for it, else None (cheap)."""
        account = self._accounts.get(username)
        proven = self._proven.get(username)
        if account is None or proven is None:
            return None
        return account if hmac.compare_digest(proven, self._mac(username, password)) else None

    def verify(self, username: str, password: str) -> Account | None:
        """The account when the password is right, else None (slow: scrypt)."""
        account = self._accounts.get(username)
        if account is None:
            self._decoy.matches(password)
            return None
        if not account.password_hash.matches(password):
            return None
        with self._lock:
            self._proven[username] = self._mac(username, password)
        return account


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int = 32) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "replace"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * r * (n + p + 2),
        dklen=length,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
