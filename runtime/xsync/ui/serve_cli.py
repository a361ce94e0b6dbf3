"""`xsync ui CONFIG [--listen HOST:PORT] [--allow-host NAME] [--allow-retry]`: serve the status page.

`run_ui(argv)` is what `xsync ui` calls with the arguments after `ui`. Every expected problem
(a bad config, an address in use, a public address without credentials) is one line on
stderr and a non-zero exit; `UiServer` is the same server for tests, in a thread.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any, Sequence

import uvicorn
from starlette.applications import Starlette

from xprotogen.cliargs import ArgumentParser as _ArgumentParser
from xprotogen.cliargs import UsageError as _UsageError

from ..bootstrap import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    StartupError,
    load,
    load_deps,
    open_models,
    store_problem,
)
from ..connect import ModelAccessor
from ..store.base import StoreError
from .app import create_app
from .auth import Credentials, login_required
from .doors import allowed_hosts
from .feed import ChangeFeed

DEFAULT_LISTEN = "127.0.0.1:8080"
BACKLOG = 128


# A problem worded for the user: the UI cannot start (the one start-up error of every command).
UiError = StartupError


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="xsync ui",
        description="Serve a page showing every object's sync state, error and backoff.",
    )
    parser.add_argument("config", metavar="CONFIG", help="the synchronizer's YAML config")
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        type=parse_listen,
        help=f"address to serve on (default {DEFAULT_LISTEN}); beyond loopback a login is required",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name (repeatable); the listen address and "
        "localhost are always answered",
    )
    parser.add_argument(
        "--allow-retry",
        action="store_true",
        help='enable the one write action, "retry now", which clears an object\'s backoff',
    )
    return parser


def parse_listen(text: str) -> tuple[str, int]:
    """ "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise argparse.ArgumentTypeError(f"write an IPv6 address in brackets: [{host}]:{port_text}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {port_text!r}")
    return host or "0.0.0.0", int(port_text)


def run_ui(argv: Sequence[str]) -> int:
    """Parse `argv` (the arguments after `xsync ui`), then serve until interrupted."""
    try:
        args = build_parser().parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    host, port = args.listen
    accessor: ModelAccessor | None = None
    try:
        accessor, app = _app_from_config(
            args.config, host, allow_retry=args.allow_retry, allow_hosts=args.allow_host
        )
        server = UiServer(app, bind(host, port))
        mode = "retry enabled" if args.allow_retry else "read-only"
        login = ", login required" if login_required(host) else ""
        print(f"xsync ui: serving {server.url} ({mode}{login})", file=sys.stderr, flush=True)
        server.serve()
    except UiError as exc:
        print(f"xsync ui: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        if accessor is not None:
            accessor.close()
    return EXIT_OK


def _app_from_config(
    config_path: str, host: str, *, allow_retry: bool, allow_hosts: Sequence[str] = ()
) -> tuple[ModelAccessor, Starlette]:
    """The accessor (close it when done) and the app for the config at `config_path`."""
    config = load(config_path)
    credentials = None
    if login_required(host):
        if config.accessor is None:
            raise UiError(
                f"{config.path}: listening on {host} (beyond loopback) requires a login, and the "
                "config has no accessor credentials (accessor.username, accessor.password); "
                "listen on 127.0.0.1 or add them"
            )
        credentials = Credentials(config.accessor.username, config.accessor.password)
    accessor = open_models(config, actor="synchronizer")
    try:
        # A remote core may serve fewer models than the files hold: only those are shown.
        shown = set(accessor.store.model_names())
        deps = load_deps(config, accessor.schema)
        models = [m.name for m in accessor.schema.models if m.name in shown]
        app = create_app(
            accessor.store,
            models,
            deps=deps,
            credentials=credentials,
            allow_retry=allow_retry,
            title=f"xsync status: {config.name}",
            hosts=allowed_hosts(host, [*allow_hosts, *_wildcard_names(host)]),
        )
    except StoreError as exc:
        accessor.close()
        raise UiError(store_problem(config, exc)) from None
    except BaseException:
        accessor.close()
        raise
    return accessor, app


def _wildcard_names(host: str) -> list[str]:
    """On a wildcard address, the machine's own name (what `UiServer.url` shows) is answered."""
    return [socket.gethostname()] if host in ("0.0.0.0", "::", "") else []


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); `UiError` if the address cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UiError(f"--listen: cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now: a client that connects before uvicorn is up waits instead of failing.
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise UiError(f"--listen: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class UiServer:
    """The app served by uvicorn on `sock`: in the foreground (`serve`) or a thread (`start`)."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
        self._server = _Server(config, app.state.feed)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def serve(self) -> None:
        self._server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self.serve, name="xsync-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise UiError("the UI server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self.sock.close()


class _Server(uvicorn.Server):
    """uvicorn's server, ending the open event streams first so that it can stop at once."""

    def __init__(self, config: uvicorn.Config, feed: ChangeFeed) -> None:
        super().__init__(config)
        self.feed = feed

    def request_exit(self) -> None:
        self.feed.close()
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.feed.close()
        super().handle_exit(sig, frame)
