"""A core with accounts on loopback, in-process or as an `xsync core` process, and raw calls."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import grpc
import pytest

from store_support import SHOP, schema_from_text
from xprotogen.schema import Schema
from xsync.accounts import Account, AccountBook, PasswordHash, Role, hash_password
from xsync.grpc.client import RemoteStore
from xsync.grpc.protocol import Protocol, protocol_for
from xsync.grpc.server import CoreServer, serve
from xsync.login_throttle import LoginThrottle
from xsync.store import SqlStore, open_store

# username -> (password, role): one account of each role.
ACCOUNTS: dict[str, tuple[str, Role]] = {
    "root": ("root-pw", "admin"),
    "hello-sync": ("sync-pw", "synchronizer"),
    "alice": ("alice-pw", "user"),
    "viewer": ("viewer-pw", "read-only"),
}
_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    """One hash per password per test run (scrypt is deliberately slow)."""
    found = _HASHES.get(password)
    if found is None:
        found = _HASHES[password] = hash_password(password)
    return found


def account_book(accounts: Mapping[str, tuple[str, Role]] = ACCOUNTS) -> AccountBook:
    return AccountBook(
        [
            Account(name, role, PasswordHash.parse(password_hash(password)))
            for name, (password, role) in accounts.items()
        ]
    )


def credentials(username: str) -> tuple[tuple[str, str], ...]:
    return (("username", username), ("password", ACCOUNTS[username][0]))


class LiveCore:
    """A SQLite store and the core serving it in this process."""

    def __init__(self, tmp_path: Path, *, listen: str = "127.0.0.1:0", **options: Any) -> None:
        self.schema: Schema = schema_from_text(tmp_path, SHOP)
        self.protocol: Protocol = protocol_for(self.schema)
        self.store: SqlStore = open_store(f"sqlite:///{tmp_path / 'core.db'}", self.schema)
        options.setdefault("throttle", LoginThrottle(base=0.01, cap=0.05))
        self.server: CoreServer = serve(
            self.store, self.schema, listen=listen, accounts=account_book(), **options
        )
        self.channel = self.connect(self.server.endpoint)
        self._clients: list[RemoteStore] = []

    def connect(self, endpoint: str) -> grpc.Channel:
        return grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", -1)])

    def client(self, username: str, *, password: str | None = None, **options: Any) -> RemoteStore:
        remote = RemoteStore(
            self.server.endpoint,
            self.schema,
            username=username,
            password=ACCOUNTS[username][0] if password is None else password,
            **options,
        )
        self._clients.append(remote)
        return remote

    def unary(self, method: str, reply: type | None = None) -> Any:
        return self.channel.unary_unary(
            method,
            request_serializer=_serialize,
            response_deserializer=reply.FromString if reply is not None else None,
        )

    def watch_call(self) -> Any:
        return self.channel.unary_stream(
            self.protocol.watch_path(),
            request_serializer=_serialize,
            response_deserializer=self.protocol.common("Change").FromString,
        )

    def version(
        self, metadata: Any = None, timeout: float = 10, channel: grpc.Channel | None = None
    ) -> Any:
        call = (channel or self.channel).unary_unary(
            self.protocol.version_path(),
            request_serializer=_serialize,
            response_deserializer=self.protocol.common("Version").FromString,
        )
        return call(
            self.protocol.empty(),
            metadata=credentials("viewer") if metadata is None else metadata,
            timeout=timeout,
        )

    def close(self) -> None:
        for remote in self._clients:
            remote.close()
        self.channel.close()
        self.server.stop(0)
        self.store.close()


@pytest.fixture(scope="module")
def live_core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCore]:
    """The core's gRPC server (`xsync core`'s `serve`) on loopback, over a SQLite store, for
    the tests of one module (import it into the module to use it)."""
    live = LiveCore(tmp_path_factory.mktemp("core"))
    try:
        yield live
    finally:
        live.close()


def _serialize(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def wait_until(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# --- `xsync core` as a process ----------------------------------------------------------------


def write_core_config(tmp_path: Path, *, extra: str = "") -> Path:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "shop.xproto").write_text(SHOP)
    lines = ["name: shopcore", "models_dir: models", "store: sqlite:///core.db", "core:"]
    lines.append("  accounts:")
    for name, (password, role) in ACCOUNTS.items():
        lines.append(
            f'    - {{username: {name}, password_hash: "{password_hash(password)}", role: {role}}}'
        )
    config = tmp_path / "core.yaml"
    config.write_text("\n".join(lines) + "\n" + extra)
    return config


class CoreProcess:
    """`xsync core CONFIG --listen 127.0.0.1:0`, its endpoint, and its peak memory."""

    def __init__(self, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xsync.cli",
                "core",
                str(config),
                "--listen",
                "127.0.0.1:0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "serving" not in line:
            self.process.kill()
            raise AssertionError(f"xsync core did not start: {line}{self.process.stderr.read()}")  # type: ignore[union-attr]
        self.endpoint = line.rsplit(" ", 1)[1].strip()

    def status(self, field: str) -> int:
        """A kB figure of /proc/PID/status: VmRSS now, VmHWM the peak."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc status")

    def terminate(self, timeout: float) -> tuple[int, float, str]:
        """SIGTERM; (exit code, seconds it took, stderr)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        err = self.process.stderr.read() if self.process.stderr else ""
        return code, time.monotonic() - started, err

    def __enter__(self) -> CoreProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def iterate_quietly(stream: Any) -> Iterator[Any]:
    try:
        yield from stream
    except grpc.RpcError:
        return
