"""The UI's doors: which `Host` it answers, and which `Origin` may write.

A page served under any host name is open to DNS rebinding: a site the user visits points
its own name at 127.0.0.1 and reads the UI as same-origin. So the UI answers only the names
it is meant to be reached by (its listen address, `localhost`, and names the user adds with
`--allow-host`), and every write must carry an `Origin` that is the UI itself (a browser
sends one with every POST; a cross-site form or fetch cannot forge it).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import scope_header, send_json

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def allowed_hosts(listen_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names (lower case, no port, IPv6 without brackets) the UI answers."""
    names = {*LOOPBACK_HOSTS, *(_bare(h) for h in extra)}
    host = _bare(listen_host)
    if host not in ("", "0.0.0.0", "::"):  # a wildcard is not a name anyone sends
        names.add(host)
    return frozenset(names)


def host_of(header: str) -> str:
    """The host of a `Host` header or an origin's netloc: 'Name:80' -> 'name', '[::1]:8' -> '::1'."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def _bare(host: str) -> str:
    name = host.strip().strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


class DoorGuard:
    """Refuses a request whose `Host` is not allowed (400), and a write whose `Origin` is not
    the UI's own (403)."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = scope_header(scope, b"host")
        if host is None or _bare(host_of(host)) not in self.hosts:
            await send_json(send, 400, "this UI does not answer to that Host name")
            return
        if scope["method"] not in SAFE_METHODS and not _same_origin(
            scope_header(scope, b"origin"), host
        ):
            await send_json(send, 403, "a write must come from the UI's own page (Origin)")
            return
        await self.app(scope, receive, send)


def _same_origin(origin: str | None, host: str) -> bool:
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()
