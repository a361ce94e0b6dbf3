"""`serve`: every model of a schema, from a `Store`, over gRPC, with no per-model code.

The server is grpcio's asyncio server, run on an event loop in its own thread. Why asyncio:
grpcio's thread-pool server runs every response stream on one pool thread until it ends, so
open `Watch` streams starve every other call once they fill the pool (32 streams stopped the
core). Here a stream is a coroutine waiting on its queue, and one thread (`ChangeHub`) reads
the change log for all of them: 1,000 open watchers cost no thread each (figures in
docs/performance.md). The store is synchronous, so each store call runs on a bounded thread
pool (`workers`), the loop itself never blocks.

Who calls is decided before the request body is read (`_Dispatcher.service`): a call without
credentials, or with wrong ones, is refused without reading its message, so a stranger cannot
make the server hold large bodies. Handlers are generic: each RPC of the generated API maps to
one store call, and messages are converted with their descriptors (`convert.py`). Store errors
become status codes (`STATUS_OF`); anything unexpected is logged and answered with INTERNAL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, TypeVar, cast

import grpc
from google.protobuf.message import Message

from xprotogen.schema import Schema

from ..accounts import Account, AccountBook, plain_account
from . import leases as lease_rpc
from . import outcomes as outcome_rpc
from . import retention as retention_rpc
from ..login_throttle import LoginThrottle, TooManyAttempts, grpc_peer_address, login
from ..store.base import (
    Actor,
    Change,
    InvalidArgument,
    NotFound,
    PendingQuery,
    PermissionDenied,
    Store,
    StoreError,
    Unauthenticated,
    Unavailable,
)
from ..store.values import shown
from .auth import Metadata, actor_of, presented_credentials
from .convert import add_record, record_message, written_values
from .hub import ChangeHub, Subscription
from .stream_create import STREAM_CREATE, StreamCreate
from .protocol import (
    CORE_STORE_DOWN,
    DEFAULT_MESSAGE_LIMIT,
    MODEL_METHODS,
    REPLY_LIMIT,
    ModelApi,
    Protocol,
    protocol_for,
)

log = logging.getLogger("xsync.grpc.server")

STATUS_OF: dict[type[StoreError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    # The core's own store is down (its database unreachable): callers wait and retry.
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}
# Query ops (XOS's names) to the store's Django-style suffixes.
QUERY_OPS = {
    "": "",
    "EQUAL": "",
    "IN": "__in",
    "GREATER_THAN": "__gt",
    "GREATER_THAN_OR_EQUAL": "__gte",
    "LESS_THAN": "__lt",
    "LESS_THAN_OR_EQUAL": "__lte",
    "ISNULL": "__isnull",
}
DELETED_SELECTION: dict[int, bool | None] = {0: False, 1: True, 2: None}
MAX_WATCH_TIMEOUT = 3600.0  # seconds a `once` Watch may wait; it holds no thread meanwhile
MAX_FILTER_VALUE_JSON = 1 << 20  # bytes of one filter value
DEFAULT_WORKERS = 16  # threads running store calls
DEFAULT_MAX_RPCS = 4096  # open calls (streams included) past which new ones get RESOURCE_EXHAUSTED
STOP_GRACE = 2.0
PASSWORD_CHECKS = 2  # password hashes checked at once
LOG_READERS = 2  # threads reading the change log for Watch streams that catch up

Tls = tuple[bytes, bytes]  # (certificate chain PEM, private key PEM)
Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


@dataclass
class CoreServer:
    """A started server; `port` is the bound port (useful with `listen="127.0.0.1:0"`)."""

    port: int
    host: str
    _runner: _LoopRunner

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def open_watches(self) -> int:
        """Watch streams being served now (a stream whose client left is not counted)."""
        return self._runner.hub.subscribers

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls; running ones get `grace` seconds, then are cancelled."""
        self._runner.stop(STOP_GRACE if grace is None else grace)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._runner.stopped.wait(timeout)


def serve(
    store: Store,
    schema: Schema,
    *,
    listen: str,
    accounts: AccountBook | None = None,
    username: str | None = None,
    password: str | None = None,
    tls: Tls | None = None,
    client_ca: bytes | None = None,
    message_limit: int = DEFAULT_MESSAGE_LIMIT,
    workers: int = DEFAULT_WORKERS,
    max_rpcs: int = DEFAULT_MAX_RPCS,
    throttle: LoginThrottle | None = None,
) -> CoreServer:
    """Start serving `store` on `listen` ("host:port"; port 0 picks a free one).

    Callers log in with one of `accounts`; `username`/`password` instead make a single
    `admin` account (the single shared credential of earlier versions). `client_ca` (PEM)
    makes a TLS core require a client certificate signed by it (mutual TLS).
    """
    if accounts is None:
        if username is None or password is None:
            raise InvalidArgument("serve needs accounts, or a username and a password")
        accounts = AccountBook([plain_account(username, password, "admin")])
    protocol = protocol_for(schema)
    if not protocol.services:
        raise InvalidArgument("the schema has no models to serve")
    if client_ca is not None and tls is None:
        raise InvalidArgument("client certificates (client_ca) need TLS (tls)")
    runner = _LoopRunner(store, workers)
    handlers = _Handlers(store, protocol, runner)
    dispatcher = _Dispatcher(handlers, accounts, throttle or LoginThrottle(), runner)
    options = [
        ("grpc.max_receive_message_length", message_limit),
        ("grpc.max_send_message_length", REPLY_LIMIT),
        ("grpc.so_reuseport", 0),
    ]

    async def start() -> int:
        server = grpc.aio.server(
            handlers=[dispatcher], options=options, maximum_concurrent_rpcs=max_rpcs
        )
        try:
            if tls is None:
                port = server.add_insecure_port(listen)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(tls[1], tls[0])],
                    root_certificates=client_ca,
                    require_client_auth=client_ca is not None,
                )
                port = server.add_secure_port(listen, credentials)
        except RuntimeError as exc:
            raise StoreError(f"cannot listen on {listen}: {exc}") from None
        if port == 0:
            raise StoreError(f"cannot listen on {listen}")
        await server.start()
        runner.server = server
        return port

    port = runner.start(start)
    return CoreServer(port, listen.rsplit(":", 1)[0], runner)


class _LoopRunner:
    """The event loop thread, the store's thread pool and the change hub, started and stopped together."""

    def __init__(self, store: Store, workers: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xsync-store")
        self.log_pool = ThreadPoolExecutor(max_workers=LOG_READERS, thread_name_prefix="xsync-log")
        self.hub = ChangeHub(store)
        self.server: grpc.aio.Server | None = None
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xsync-core", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(_loop_exception)
        try:
            self.loop.run_forever()
        finally:
            self.stopped.set()

    def start(self, start: Callable[[], Coroutine[Any, Any, int]]) -> int:
        self._thread.start()
        try:
            port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)
        except BaseException:
            self._halt()
            raise
        self.hub.start(self.loop)
        return port

    async def run(self, call: Callable[[], T]) -> T:
        """`call` (a blocking store call) on the thread pool, awaited."""
        return await self.loop.run_in_executor(self.pool, call)

    async def read_log(self, call: Callable[[], T]) -> T:
        """A Watch's read of the change log, on its own small pool: many streams catching up
        at once queue there, not in front of ordinary calls."""
        return await self.loop.run_in_executor(self.log_pool, call)

    def stop(self, grace: float) -> None:
        if self.stopped.is_set():
            return
        server = self.server
        if server is not None:
            future = asyncio.run_coroutine_threadsafe(server.stop(grace), self.loop)
            try:
                future.result(timeout=grace + 5)
            except Exception as exc:  # noqa: BLE001 - stopping must go on whatever happened
                log.warning("the gRPC server did not stop cleanly: %s", exc)
        self._halt()

    def _halt(self) -> None:
        self.hub.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        # A store call still running finishes on its own; nobody waits for it.
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.log_pool.shutdown(wait=False, cancel_futures=True)
        self.stopped.set()


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """One line, no traceback (XPROTOGEN_TRACEBACK=1 shows it): these are calls that ended badly.

    grpcio's own call tasks end this way when a call was already failed by the transport (a
    request over the size limit, a client that reset the stream): grpcio then fails to send
    the status a second time. That is routine, not an error of the server.
    """
    exc = context.get("exception")
    if exc is not None and type(exc).__name__ == "ExecuteBatchError":
        log.debug("a call ended before its status could be sent: %s", exc)
        return
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
    log.error("call failed: %s", detail, exc_info=exc if _traceback_wanted() else None)


def _traceback_wanted() -> bool:
    return os.environ.get("XPROTOGEN_TRACEBACK") == "1"


# --- authentication: who calls, decided before the body is read --------------------------


Behaviour = Callable[[Any, Context, Account], Awaitable[Any]]
_UNPARSABLE = object()  # what a body that does not parse reads as


Login = Callable[[Context], Awaitable[Account]]


@dataclass(frozen=True, slots=True)
class _Method:
    behaviour: Any  # a Behaviour, or an async generator function when `streams`
    deserialize: Callable[[bytes], Any]
    streams: bool
    # A stream of requests: `behaviour` is an async generator taking an async iterator of
    # them (each parsed, or None when it does not parse) instead of one request.
    many: bool = False

    def handler(self, login: Login) -> grpc.RpcMethodHandler[Any, Any]:
        """The method for a caller that `login` proves (or refuses) first.

        This handler takes its request as a stream and reads it only after `login`: grpcio
        reads no body of a caller that is refused, and a request grpcio refuses (over the
        size limit) ends the call here, cleanly, instead of inside grpcio.
        """
        if self.many:
            deserialize = self.deserialize

            async def parsed(requests: AsyncIterator[bytes]) -> AsyncIterator[Any]:
                async for raw in requests:
                    try:
                        yield deserialize(raw)
                    except Exception:  # noqa: BLE001 - the behaviour names the item
                        yield None

            async def many(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
                account = await login(context)
                async for item in self.behaviour(parsed(requests), context, account):
                    yield item

            return grpc.stream_stream_rpc_method_handler(many, response_serializer=_serialize)
        if self.streams:

            async def stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
                account = await login(context)
                request = await self.read(requests, context)
                async for item in self.behaviour(request, context, account):
                    yield item

            return grpc.stream_stream_rpc_method_handler(stream, response_serializer=_serialize)

        async def unary(requests: AsyncIterator[bytes], context: Any) -> Any:
            account = await login(context)
            return await self.behaviour(await self.read(requests, context), context, account)

        return grpc.stream_unary_rpc_method_handler(unary, response_serializer=_serialize)

    def known_handler(self, login: Login) -> grpc.RpcMethodHandler[Any, Any]:
        """The method for a caller whose credentials were already proven (`verified`).

        grpcio reads the body before the handler runs: reading a request as a stream costs
        about as much again as the rest of a small call, and a caller that has proven its
        password is no stranger whose bodies must go unread. `login` still runs first (the
        throttle may still hold a peer with failures back, and a password changed since is
        refused then), and an unparsable body is still INVALID_ARGUMENT.
        """
        deserialize = self.deserialize

        def parse(raw: bytes) -> Any:
            try:
                return deserialize(raw)
            except Exception:  # noqa: BLE001 - answered below, as for the other handler
                return None if self.many else _UNPARSABLE

        if self.many:

            async def many(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
                account = await login(context)
                async for item in self.behaviour(requests, context, account):
                    yield item

            return grpc.stream_stream_rpc_method_handler(
                many, request_deserializer=parse, response_serializer=_serialize
            )
        if self.streams:

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                account = await login(context)
                if request is _UNPARSABLE:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, "cannot parse the request"
                    )
                async for item in self.behaviour(request, context, account):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=parse, response_serializer=_serialize
            )

        async def unary(request: Any, context: Any) -> Any:
            account = await login(context)
            if request is _UNPARSABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot parse the request")
            return await self.behaviour(request, context, account)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=parse, response_serializer=_serialize
        )

    async def read(self, requests: AsyncIterator[bytes], context: Context) -> Any:
        """The call's one request message."""
        async for raw in requests:
            try:
                return self.deserialize(raw)
            except Exception:  # noqa: BLE001 - a malformed message is the caller's problem
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot parse the request")
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call carries no request")


class _Dispatcher(grpc.GenericRpcHandler):
    """Picks each call's handler from its method, before its body is read.

    Every call logs in first (`login_throttle.login`: a proven password at once, any other
    after its turn, checked off the loop); a call refused is answered UNAUTHENTICATED
    without its body being read.
    """

    def __init__(
        self,
        handlers: _Handlers,
        accounts: AccountBook,
        throttle: LoginThrottle,
        runner: _LoopRunner,
    ) -> None:
        self.methods = handlers.methods()
        self.accounts = accounts
        self.throttle = throttle
        self.runner = runner
        # scrypt takes 16 MiB and ~40 ms a check: a few at a time bound both under a spray.
        self._checking = asyncio.Semaphore(PASSWORD_CHECKS)

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = self.methods.get(details.method)
        if method is None:
            return None
        presented = presented_credentials(details.invocation_metadata)
        if presented is None:
            return method.handler(_refuse)
        proven = self.accounts.verified(*presented)
        if proven is not None:
            return method.known_handler(partial(self._login, presented, proven))
        return method.handler(partial(self._login, presented, None))

    async def _login(
        self, presented: tuple[str, str], proven: Account | None, context: Context
    ) -> Account:
        """`proven`: the account `service` found these credentials already proven for (one
        HMAC a call, not two); None has `login` look again, as a check may have run since."""
        known = (
            (lambda: proven) if proven is not None else partial(self.accounts.verified, *presented)
        )
        try:
            account = await login(
                self.throttle,
                peer=grpc_peer_address(context.peer()),
                username=presented[0],
                known=known,
                check=partial(self._check, presented),
            )
        except TooManyAttempts as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if account is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong username or password")
        return account

    async def _check(self, presented: tuple[str, str]) -> Account | None:
        async with self._checking:
            # Many calls of a client that has just started arrive together: one check serves all.
            return self.accounts.verified(*presented) or await self.runner.run(
                partial(self.accounts.verify, *presented)
            )


async def _refuse(context: Context) -> Account:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing credentials")
    raise AssertionError("abort raises")


# --- the behaviours ----------------------------------------------------------------------


def _guarded(behaviour: Behaviour) -> Behaviour:
    """Store errors as status codes; anything else logged and answered with INTERNAL."""

    async def call(request: Any, context: Context, account: Account) -> Any:
        try:
            return await behaviour(request, context, account)
        except StoreError as exc:
            await context.abort(*_status(exc))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - the server must answer, not crash
            log.exception("unexpected error in %s", getattr(behaviour, "__name__", "rpc"))
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")

    call.__name__ = getattr(behaviour, "__name__", "rpc")
    return call


class _Handlers:
    def __init__(self, store: Store, protocol: Protocol, runner: _LoopRunner) -> None:
        self.store = store
        self.protocol = protocol
        self.runner = runner
        self.change_class = protocol.common("Change")
        self._sent: dict[int, tuple[Change, bytes]] = {}
        self.version_class = protocol.common("Version")
        self.latest_class = protocol.common("LatestChange")
        self.empty_class = protocol.message_class("google.protobuf.Empty")
        self.stream_create = StreamCreate(
            store, runner.run, STATUS_OF, _actor, _may_write, _refuse_reverse
        )

    def methods(self) -> dict[str, _Method]:
        """Every method path served, with its behaviour."""
        out: dict[str, _Method] = {}
        for api in self.protocol.models.values():
            for prefix, (request, _response) in MODEL_METHODS.items():
                if prefix == STREAM_CREATE:
                    continue
                work = getattr(self, f"_{prefix.lower()}")(api)
                out[api.path(prefix)] = _Method(
                    _guarded(self._on_pool(work)),
                    self.protocol.type_of(api, request).FromString,
                    streams=False,
                )
        for api in self.protocol.models.values():
            # Replaces the generic entry above: a stream of requests, not one.
            out[api.path(STREAM_CREATE)] = _Method(
                partial(self.stream_create.serve, api),
                api.message.FromString,
                streams=True,
                many=True,
            )
        for service in self.protocol.services:
            out[f"/{service}/Watch"] = _Method(
                self._watch, self.protocol.common("WatchRequest").FromString, streams=True
            )
            out[f"/{service}/GetVersion"] = _Method(
                _guarded(self._on_pool(self._version)), self.empty_class.FromString, streams=False
            )
            out[f"/{service}/LatestChange"] = _Method(
                _guarded(self._on_pool(self._latest_change)),
                self.empty_class.FromString,
                streams=False,
            )
        out[outcome_rpc.PATH] = _Method(
            _guarded(self._on_pool(self._outcomes)),
            bytes,  # decoded in `_outcomes`, so a bad value is refused naming its field
            streams=False,
        )
        out[retention_rpc.PATH] = _Method(
            _guarded(self._on_pool(self._forget_changes)),
            bytes,  # decoded in `_forget_changes`, so a bad value is refused naming it
            streams=False,
        )
        for method, writes in lease_rpc.METHODS.items():
            out[lease_rpc.path(method)] = _Method(
                _guarded(self._on_pool(self._lease(method, writes))),
                lease_rpc.decode,
                streams=False,
            )
        return out

    def _lease(self, method: str, writes: bool) -> Callable[[Any, Account, Actor], bytes]:
        def lease_call(request: Any, account: Account, actor: Actor) -> bytes:
            if writes:
                _may_write(account, "synchronizer")
            leases = getattr(self.store, "leases", None)
            return lease_rpc.encode_reply(lease_rpc.serve_call(leases, method, request))

        lease_call.__name__ = f"lease_{method.lower()}"
        return lease_call

    def _forget_changes(self, request: bytes, account: Account, actor: Actor) -> bytes:
        # Deletes, as the lease housekeeping does: only accounts that may sync may ask.
        _may_write(account, "synchronizer")
        age = retention_rpc.decode_request(request)
        return retention_rpc.encode_reply(self.store.forget_changes(age))

    def _outcomes(self, request: bytes, account: Account, actor: Actor) -> bytes:
        _may_write(account, actor)
        writes = outcome_rpc.decode_request(request)
        results: list[StoreError | None] = [None] * len(writes)
        passed: list[int] = []
        for index, w in enumerate(writes):
            api = self.protocol.models.get(w.model)
            try:
                if api is not None:
                    _refuse_reverse(api, dict(w.values))
            except StoreError as exc:
                results[index] = exc
            else:
                passed.append(index)
        saved = self.store.write_outcomes([writes[i] for i in passed], actor=actor)
        for index, result in zip(passed, saved, strict=True):
            results[index] = result
        return outcome_rpc.encode_reply(results, STATUS_OF)

    def _on_pool(self, work: Callable[[Any, Account, Actor], Message | bytes]) -> Behaviour:
        async def behaviour(request: Any, context: Context, account: Account) -> Any:
            actor = _actor(context, account)
            return await self.runner.run(partial(work, request, account, actor))

        behaviour.__name__ = getattr(work, "__name__", "rpc")
        return behaviour

    # --- per-model work: each runs on the store's thread pool ----------------------------

    def _reply(self, api: ModelApi, record: dict[str, Any]) -> Message:
        reply: Message = record_message(api.message, api.model.name, record)
        return reply

    def _plural(self, api: ModelApi, records: list[dict[str, Any]]) -> Message:
        reply = api.plural()
        items: Any = getattr(reply, "items")
        for record in records:
            add_record(items, api.message, api.model.name, record)
        return reply

    def _list(self, api: ModelApi) -> Callable[..., Message]:
        def list_(request: Message, account: Account, actor: Actor) -> Message:
            return self._plural(api, self.store.query(api.model.name))

        return list_

    def _filter(self, api: ModelApi) -> Callable[..., Message]:
        def filter_(request: Any, account: Account, actor: Actor) -> Message:
            name = api.model.name
            if request.deleted not in DELETED_SELECTION:
                raise InvalidArgument(
                    f"{name} query: deleted must be 0 (live), 1 (deleted) or 2 (all), got {request.deleted}"
                )
            records = self.store.query(
                name,
                filters=_conditions(name, "filters", request.filters),
                excludes=_conditions(name, "excludes", request.excludes),
                deleted=DELETED_SELECTION[request.deleted],
                order_by=tuple(request.order_by) or ("id",),
                limit=request.limit if request.HasField("limit") else None,
            )
            return self._plural(api, records)

        return filter_

    def _get(self, api: ModelApi) -> Callable[..., Message]:
        def get(request: Any, account: Account, actor: Actor) -> Message:
            return self._reply(
                api,
                self.store.get(api.model.name, request.id, include_deleted=request.include_deleted),
            )

        return get

    def _create(self, api: ModelApi) -> Callable[..., Message]:
        def create(request: Message, account: Account, actor: Actor) -> Message:
            _may_write(account, actor)
            values = written_values(request, api.model.name)
            _refuse_reverse(api, values)
            return self._reply(api, self.store.create(api.model.name, values, actor=actor))

        return create

    def _bulkcreate(self, api: ModelApi) -> Callable[..., Message]:
        def bulk_create(request: Any, account: Account, actor: Actor) -> Message:
            _may_write(account, actor)
            name = api.model.name
            values_list = [written_values(item, name) for item in request.items]
            for values in values_list:
                _refuse_reverse(api, values)
            return self._plural(api, self.store.create_many(name, values_list, actor=actor))

        return bulk_create

    def _update(self, api: ModelApi) -> Callable[..., Message]:
        def update(request: Any, account: Account, actor: Actor) -> Message:
            _may_write(account, actor)
            name = api.model.name
            values = written_values(request.item, name, list(request.fields))
            _refuse_reverse(api, values)
            if not request.item.id:
                raise InvalidArgument(f"{name}.id is required to update")
            record = self.store.update(
                name,
                request.item.id,
                values,
                actor=actor,
                update_fields=list(request.update_fields) or None,
                always_update_timestamp=request.always_update_timestamp,
            )
            return self._reply(api, record)

        return update

    def _delete(self, api: ModelApi) -> Callable[..., Message]:
        def delete(request: Any, account: Account, actor: Actor) -> Message:
            _may_write(account, actor)
            self.store.delete(api.model.name, request.id, actor=actor)
            return self.empty_class()

        return delete

    def _purge(self, api: ModelApi) -> Callable[..., Message]:
        def purge(request: Any, account: Account, actor: Actor) -> Message:
            if not account.may_purge:
                raise PermissionDenied(
                    f"account {account.username!r} (role {account.role}) may not purge objects"
                )
            self.store.purge(api.model.name, request.id)
            return self.empty_class()

        return purge

    def _pending(self, api: ModelApi) -> Callable[..., Message]:
        def pending(request: Any, account: Account, actor: Actor) -> Message:
            try:
                kind = PendingQuery(request.kind)
            except ValueError:
                raise InvalidArgument(f"unknown pending query kind {request.kind}") from None
            columns = list(request.columns) or None
            return self._plural(api, self.store.pending(api.model.name, kind, columns=columns))

        return pending

    # --- shared by every service ----------------------------------------------------------

    def _version(self, request: Message, account: Account, actor: Actor) -> Message:
        reply: Message = self.version_class(
            version=self.store.core_version(), models=self.store.model_names()
        )
        return reply

    def _latest_change(self, request: Message, account: Account, actor: Actor) -> Message:
        # A read, like GetVersion and Watch: any account that logged in may ask.
        reply: Message = self.latest_class(seq=self.store.latest_change())
        return reply

    async def _watch(
        self, request: Any, context: Context, account: Account
    ) -> AsyncIterator[bytes]:
        """Changes after `request.after`: all of them, then each as it commits (or, with
        `once`, the first batch, waited for up to `timeout`). No thread waits meanwhile."""
        try:
            timeout = _watch_timeout(request)
            sub = self.runner.hub.subscribe(request.after)
        except StoreError as exc:
            await context.abort(
                STATUS_OF.get(type(exc), grpc.StatusCode.FAILED_PRECONDITION), str(exc)
            )
        try:
            backlog = self.runner.hub.recent(request.after)
            if backlog is None:
                backlog = await self.runner.read_log(partial(self.store.changes, request.after))
            batch: list[Change] | None = sub.take_newer(backlog)
            if request.once:
                if not batch and timeout:
                    batch = await self._first_batch(sub, timeout)
                for change in batch or ():
                    yield self._change(change)
                return
            while batch is not None:
                for change in batch:
                    yield self._change(change)
                batch = await self._next_batch(sub, None)
        except StoreError as exc:
            await context.abort(*_status(exc))
        finally:
            self.runner.hub.unsubscribe(sub)

    async def _first_batch(self, sub: Subscription, timeout: float) -> list[Any]:
        """The first new changes within `timeout` seconds, or []."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            batch = await self._next_batch(sub, left)
            if batch:
                return batch
            if batch is None:
                break
        return []

    async def _next_batch(self, sub: Subscription, timeout: float | None) -> list[Any] | None:
        """The next changes for `sub`; [] when `timeout` passed, None when the hub closed."""
        if not await sub.wait(timeout):
            return []
        if sub.closed:
            return None
        if sub.overflowed:
            # Too far behind to be fed from memory: read on from the change log.
            sub.clear()
            return sub.take_newer(
                await self.runner.read_log(partial(self.store.changes, sub.after))
            )
        return sub.take_newer(sub.drain())

    def _change(self, change: Change) -> bytes:
        """The wire form of `change`, made once however many streams send it."""
        found = self._sent.get(change.seq)
        if found is None or found[0] != change:
            message = self.change_class(
                seq=change.seq, kind=change.kind, model=change.model, id=change.id
            )
            found = (change, message.SerializeToString())
            if len(self._sent) >= 4096:
                self._sent.clear()
            self._sent[change.seq] = found
        return found[1]


def _status(exc: StoreError) -> tuple[grpc.StatusCode, str]:
    """The status code and details a store error is answered with."""
    code = STATUS_OF.get(type(exc), grpc.StatusCode.FAILED_PRECONDITION)
    if code is grpc.StatusCode.UNAVAILABLE:
        return code, f"{CORE_STORE_DOWN}: {exc}"
    return code, str(exc)


def _serialize(message: Message | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def _watch_timeout(request: Any) -> float | None:
    if not request.HasField("timeout"):
        return None
    timeout = request.timeout
    if not math.isfinite(timeout) or not 0 <= timeout <= MAX_WATCH_TIMEOUT:
        raise InvalidArgument(
            f"Watch timeout must be a number of seconds from 0 to {MAX_WATCH_TIMEOUT:g}, got {timeout!r}"
        )
    return float(timeout)


def _actor(context: Context, account: Account) -> Actor:
    """The actor a write is made as: one the call names, within what its account's role allows."""
    actor = actor_of(cast(Metadata, context.invocation_metadata()))
    if actor is None:
        raise InvalidArgument("metadata 'actor' must be one of: user, synchronizer, policy")
    return actor


def _may_write(account: Account, actor: Actor) -> None:
    if not account.may_write_as(actor):
        if account.role == "read-only":
            raise PermissionDenied(f"account {account.username!r} is read-only")
        raise PermissionDenied(
            f"account {account.username!r} (role {account.role}) may not write as {actor}"
        )


def _refuse_reverse(api: ModelApi, values: dict[str, Any]) -> None:
    # Reverse lists are views of the other side's links; they are written there.
    for f in api.model.reverse_fields:
        if f.name in values:
            raise InvalidArgument(
                f"{api.model.name}.{f.name} is a reverse link; write the link on the other model"
            )


def _conditions(model: str, part: str, elements: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, element in enumerate(elements):
        where = f"{model} query {part}[{index}] ({shown(element.field)})"
        suffix = QUERY_OPS.get(element.op.upper())
        if suffix is None:
            raise InvalidArgument(f"{where}: unknown op {shown(element.op)}")
        out[element.field + suffix] = _filter_value(where, element.value_json)
    return out


def _filter_value(where: str, text: str) -> Any:
    """A filter's JSON value: a scalar or a flat list of scalars, nothing deeper."""
    if not text:
        return None
    if len(text) > MAX_FILTER_VALUE_JSON:
        raise InvalidArgument(f"{where}: value longer than {MAX_FILTER_VALUE_JSON} bytes")
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidArgument(f"{where}: value nested too deep") from None
    except ValueError:
        raise InvalidArgument(f"{where}: value is not JSON: {shown(text)}") from None
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, (list, dict)) for item in items) or isinstance(value, dict):
        raise InvalidArgument(f"{where}: value must be a scalar or a flat list of scalars")
    return value
