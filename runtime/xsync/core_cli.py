"""`xsync core CONFIG [--listen HOST:PORT] [--db URL]`: serve the config's models over gRPC.

The models are the config's model files; the store is `--db`, else the config's `store`.
Callers log in with one of the config's `core.accounts` (each with a role). A config without
them (the earlier form) serves one `admin` account: `--username`/`--password`, else the
config's `accessor` pair; `xsync core` says so when it starts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Sequence

from xprotogen.cliargs import ArgumentParser as _ArgumentParser
from xprotogen.cliargs import UsageError as _UsageError

from .bootstrap import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    StartupError,
    load,
    open_served_store,
    xproto_problem,
)

if TYPE_CHECKING:
    from .accounts import AccountBook

DEFAULT_LISTEN = "127.0.0.1:50051"


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="xsync core", description="Serve the models of CONFIG over gRPC.")
    parser.add_argument("config", metavar="CONFIG", help="the YAML config naming the models")
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=DEFAULT_LISTEN,
        help=f"address to serve on (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="store URL (sqlite:///path.db or postgresql://...); default: the config's store",
    )
    parser.add_argument(
        "--username", help="the username callers must present (default: the config's accessor)"
    )
    parser.add_argument(
        "--password",
        help="the password callers must present, or @FILE (default: the config's accessor)",
    )
    parser.add_argument(
        "--max-message-mb",
        type=int,
        metavar="MB",
        help="the largest request read, in MiB (default: the config's core.max_message_mb, else 16)",
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca",
        metavar="PEM",
        help="require a client certificate signed by this CA (mutual TLS; needs --tls-cert)",
    )
    parser.add_argument(
        "--migrated",
        action="store_true",
        help="accept models that break the store's data: you migrated it for them",
    )
    return parser


def run_core(argv: Sequence[str]) -> int:
    """Parse `argv`, serve until SIGINT/SIGTERM; 0 on a clean stop, 1 on a problem, 2 on bad usage."""
    try:
        args = build_parser().parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        return _serve_until_stopped(args)
    except StartupError as exc:
        print(f"xsync core: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _serve_until_stopped(args: argparse.Namespace) -> int:
    from xprotogen.diagnostics import XprotoError

    from .store import StoreError
    from .grpc.server import serve

    # The command line first: a wrong flag is reported before anything is read or said.
    flag_tls = _tls(args)
    flag_client_ca = _client_ca(args)
    config = load(args.config)
    tls, client_ca = _served_tls(flag_tls, flag_client_ca, config)
    url = args.db or config.store
    if not url:
        raise StartupError(f"{args.config}: no store: set 'store' in the config or pass --db URL")
    accounts = _accounts(args, config)
    message_limit = _message_limit(args, config)
    schema, store = open_served_store(config, url, migrated=args.migrated)
    try:
        server = serve(
            store,
            schema,
            listen=args.listen,
            accounts=accounts,
            tls=tls,
            client_ca=client_ca,
            message_limit=message_limit,
        )
    except StoreError as exc:
        store.close()
        raise StartupError(str(exc).splitlines()[0]) from None
    except XprotoError as exc:
        store.close()
        raise StartupError(xproto_problem(exc)) from None
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"xsync core: serving {len(store.model_names())} models on {server.endpoint}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop(grace=2.0)
        store.close()
    return EXIT_OK


def _accounts(args: argparse.Namespace, config: Any) -> AccountBook:
    """The config's accounts; else the single legacy credential as one admin account."""
    from .accounts import AccountBook, plain_account

    if config.core is not None and not (args.username or args.password):
        return AccountBook(config.core.accounts)
    username, password = _credentials(args, config)
    print(
        f"xsync core: one shared admin account ({username!r}) for every caller; list accounts "
        "with roles under core.accounts (see 'xsync hash-password')",
        file=sys.stderr,
        flush=True,
    )
    return AccountBook([plain_account(username, password, "admin")])


def _message_limit(args: argparse.Namespace, config: Any) -> int:
    from .config import MAX_MESSAGE_MB
    from .grpc.protocol import DEFAULT_MESSAGE_LIMIT

    if args.max_message_mb is not None:
        if not 1 <= args.max_message_mb <= MAX_MESSAGE_MB:
            raise StartupError(
                f"--max-message-mb: expected 1 to {MAX_MESSAGE_MB}, got {args.max_message_mb}"
            )
        return int(args.max_message_mb) * 1024 * 1024
    if config.core is not None and config.core.max_message_bytes is not None:
        return int(config.core.max_message_bytes)
    return DEFAULT_MESSAGE_LIMIT


def _credentials(args: argparse.Namespace, config: object) -> tuple[str, str]:
    accessor = getattr(config, "accessor", None)
    username = args.username or (accessor.username if accessor else None)
    password = args.password or (accessor.password if accessor else None)
    if not username or password is None:
        raise StartupError(
            f"{args.config}: no credentials: set 'accessor' in the config or pass --username and --password"
        )
    if password.startswith("@"):
        try:
            password = Path(password[1:]).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise StartupError(f"cannot read the password file {password[1:]}: {exc}") from None
    return username, password


def _tls(args: argparse.Namespace) -> tuple[bytes, bytes] | None:
    if not args.tls_cert and not args.tls_key:
        return None
    if not (args.tls_cert and args.tls_key):
        raise StartupError("--tls-cert and --tls-key go together")
    return _read("--tls-cert", args.tls_cert), _read("--tls-key", args.tls_key)


def _client_ca(args: argparse.Namespace) -> bytes | None:
    """The CA that signs the certificates of the callers `--tls-client-ca` lets in."""
    from .config import NOT_A_CERTIFICATE, is_pem_certificate

    if not args.tls_client_ca:
        return None
    pem = _read("--tls-client-ca", args.tls_client_ca)
    if not is_pem_certificate(pem):
        raise StartupError(
            f"--tls-client-ca: {args.tls_client_ca} is not a PEM certificate ({NOT_A_CERTIFICATE})"
        )
    return pem


def _served_tls(
    flag_tls: tuple[bytes, bytes] | None, flag_client_ca: bytes | None, config: Any
) -> tuple[tuple[bytes, bytes] | None, bytes | None]:
    """TLS and the client CA as served: each flag given wins over the config's `core.tls`."""
    configured = config.core.tls if config.core is not None else None
    tls = flag_tls or (None if configured is None else (configured.cert, configured.key))
    client_ca = flag_client_ca or (None if configured is None else configured.client_ca)
    if client_ca is not None and tls is None:
        raise StartupError(
            "--tls-client-ca needs --tls-cert and --tls-key (or core.tls in the config): "
            "client certificates are asked for only over TLS"
        )
    return tls, client_ca


def _read(flag: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StartupError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
