"""Who may look: anyone on loopback, and beyond it only who knows the accessor's credentials.

`login_required(host)` is the rule, a function of the listen address alone so that it can
be tested without binding anything. `BasicAuth` is the ASGI middleware that enforces it;
failed logins are slowed per peer and per username (`xsync.login_throttle`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from ..login_throttle import LoginThrottle, TooManyAttempts, login

LOOPBACK_NAMES = frozenset(("localhost", "localhost.", "ip6-localhost", "ip6-loopback"))
REALM = "xsync"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def accepts(self, header: str | None) -> bool:
        """True when an `Authorization: Basic ...` header carries these credentials."""
        given = parse_basic(header)
        if given is None:
            return False
        # Compare both halves whatever the first gives, in constant time.
        user_ok = hmac.compare_digest(given[0].encode(), self.username.encode())
        password_ok = hmac.compare_digest(given[1].encode(), self.password.encode())
        return user_ok and password_ok


def login_required(host: str) -> bool:
    """Whether a server listening on `host` must ask for a login.

    Only a loopback address (127.0.0.0/8, ::1) or the name localhost is exempt. The
    wildcard addresses (0.0.0.0, ::) and every other name listen beyond loopback.
    """
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return False
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return True  # a host name may resolve to anything, now or later
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return not address.ipv4_mapped.is_loopback
    return not address.is_loopback


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) from a Basic `Authorization` header, or None if it is not one."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class BasicAuth:
    """Refuses every HTTP request that lacks the right credentials with a 401 (429 when the
    peer or the username has failed too often to be checked now)."""

    def __init__(
        self, app: ASGIApp, *, credentials: Credentials, throttle: LoginThrottle | None = None
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = scope_header(scope, b"authorization")
        given = parse_basic(header)
        if given is None:
            await send_refusal(scope, send)
            return

        def accepted() -> bool | None:
            return True if self.credentials.accepts(header) else None

        async def check() -> bool | None:
            return accepted()

        client = scope.get("client")
        try:
            ok = await login(
                self.throttle,
                peer=str(client[0]) if client else "unknown",
                username=given[0],
                known=accepted,
                check=check,
            )
        except TooManyAttempts as exc:
            await send_json(send, 429, str(exc))
            return
        if ok:
            await self.app(scope, receive, send)
        else:
            await send_refusal(scope, send)


REFUSAL = "login required: use the accessor credentials of the synchronizer's config"


async def send_refusal(scope: Scope, send: Send) -> None:
    """A 401. Only a navigation gets the Basic challenge that makes a browser ask for a login.

    A challenge on the page's own fetch() or EventSource would hang it behind a second prompt
    (a headless browser never answers one), where a plain 401 lets the page say what is wrong.
    """
    if scope_header(scope, b"sec-fetch-mode") in (None, "navigate"):
        body = (REFUSAL + "\n").encode()
        headers = [
            (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
        ]
    else:
        body = json.dumps({"error": REFUSAL}).encode()
        headers = [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def scope_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
