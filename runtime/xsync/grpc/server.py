"""`serve`: every model of a schema, from a `Store`, over gRPC, with no per-model code.

The handlers are generic: each RPC of the generated API maps to one store call, and
messages are converted with their descriptors (`convert.py`). Store errors become status
codes (`STATUS_OF`); anything unexpected is logged and answered with INTERNAL, so a bad
request never takes the server down.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import grpc
from google.protobuf.message import Message

from xprotogen.schema import Schema

from ..store.base import (
    Actor,
    InvalidArgument,
    NotFound,
    PendingQuery,
    PermissionDenied,
    Store,
    StoreError,
    Unauthenticated,
)
from .auth import AuthInterceptor, actor_of
from .convert import add_record, record_message, written_values
from .protocol import MODEL_METHODS, ModelApi, Protocol, protocol_for

log = logging.getLogger("xsync.grpc.server")

STATUS_OF: dict[type[StoreError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
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
WATCH_POLL_SECONDS = 0.5  # how often an idle Watch checks that its client is still there
MESSAGE_LIMIT = 256 * 1024 * 1024  # a List of every object must fit in one reply
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MESSAGE_LIMIT),
    ("grpc.max_receive_message_length", MESSAGE_LIMIT),
]

Tls = tuple[bytes, bytes]  # (certificate chain PEM, private key PEM)


@dataclass
class CoreServer:
    """A started server; `port` is the bound port (useful with `listen="127.0.0.1:0"`)."""

    server: grpc.Server
    port: int
    host: str

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls; running ones get `grace` seconds, Watch streams are cancelled."""
        self.server.stop(grace).wait()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return bool(self.server.wait_for_termination(timeout))


def serve(
    store: Store,
    schema: Schema,
    *,
    listen: str,
    username: str,
    password: str,
    tls: Tls | None = None,
    max_workers: int = 32,
) -> CoreServer:
    """Start serving `store` on `listen` ("host:port"; port 0 picks a free one)."""
    protocol = protocol_for(schema)
    if not protocol.services:
        raise InvalidArgument("the schema has no models to serve")
    handlers = _Handlers(store, protocol)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="xsync-grpc"),
        handlers=[
            grpc.method_handlers_generic_handler(service, methods)
            for service, methods in handlers.by_service().items()
        ],
        interceptors=[AuthInterceptor(username, password)],
        options=[*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, grpc.ssl_server_credentials([(tls[1], tls[0])]))
    except RuntimeError as exc:
        raise StoreError(f"cannot listen on {listen}: {exc}") from None
    if port == 0:
        raise StoreError(f"cannot listen on {listen}")
    server.start()
    return CoreServer(server, port, listen.rsplit(":", 1)[0])


Unary = Callable[[Any, grpc.ServicerContext], Any]


def _guarded(behaviour: Unary) -> Unary:
    """Store errors as status codes; anything else logged and answered with INTERNAL."""

    def call(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behaviour(request, context)
        except StoreError as exc:
            context.abort(STATUS_OF.get(type(exc), grpc.StatusCode.FAILED_PRECONDITION), str(exc))
        except Exception as exc:  # noqa: BLE001 - the server must answer, not crash
            log.exception("unexpected error in %s", getattr(behaviour, "__name__", "rpc"))
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    return call


class _Handlers:
    def __init__(self, store: Store, protocol: Protocol) -> None:
        self.store = store
        self.protocol = protocol
        self.query_class = protocol.common("Query")
        self.change_class = protocol.common("Change")
        self.version_class = protocol.common("Version")
        self.empty_class = protocol.message_class("google.protobuf.Empty")

    def by_service(self) -> dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]]:
        services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {
            s: {} for s in self.protocol.services
        }
        for api in self.protocol.models.values():
            for prefix, (request, response) in MODEL_METHODS.items():
                behaviour = getattr(self, f"_{prefix.lower()}")(api)
                services[api.service][f"{prefix}{api.model.name}"] = (
                    grpc.unary_unary_rpc_method_handler(
                        _guarded(behaviour),
                        request_deserializer=self.protocol.type_of(api, request).FromString,
                        response_serializer=_serialize,
                    )
                )
        for methods in services.values():
            methods["Watch"] = grpc.unary_stream_rpc_method_handler(
                self._watch,
                request_deserializer=self.protocol.common("WatchRequest").FromString,
                response_serializer=_serialize,
            )
            methods["GetVersion"] = grpc.unary_unary_rpc_method_handler(
                _guarded(self._version),
                request_deserializer=self.empty_class.FromString,
                response_serializer=_serialize,
            )
        return services

    # --- per-model behaviours: each returns the handler for one model --------------------

    def _reply(self, api: ModelApi, record: dict[str, Any]) -> Message:
        reply: Message = record_message(api.message, api.model.name, record)
        return reply

    def _plural(self, api: ModelApi, records: list[dict[str, Any]]) -> Message:
        reply = api.plural()
        items: Any = getattr(reply, "items")
        for record in records:
            add_record(items, api.message, api.model.name, record)
        return reply

    def _list(self, api: ModelApi) -> Unary:
        def list_(request: Message, context: grpc.ServicerContext) -> Message:
            return self._plural(api, self.store.query(api.model.name))

        return list_

    def _filter(self, api: ModelApi) -> Unary:
        def filter_(request: Any, context: grpc.ServicerContext) -> Message:
            name = api.model.name
            records = self.store.query(
                name,
                filters=_conditions(name, request.filters),
                excludes=_conditions(name, request.excludes),
                deleted={0: False, 1: True}.get(request.deleted),
                order_by=tuple(request.order_by) or ("id",),
                limit=request.limit if request.HasField("limit") else None,
            )
            return self._plural(api, records)

        return filter_

    def _get(self, api: ModelApi) -> Unary:
        def get(request: Any, context: grpc.ServicerContext) -> Message:
            return self._reply(
                api,
                self.store.get(api.model.name, request.id, include_deleted=request.include_deleted),
            )

        return get

    def _create(self, api: ModelApi) -> Unary:
        def create(request: Message, context: grpc.ServicerContext) -> Message:
            values = written_values(request, api.model.name)
            _refuse_reverse(api, values)
            return self._reply(
                api, self.store.create(api.model.name, values, actor=_actor(context))
            )

        return create

    def _bulkcreate(self, api: ModelApi) -> Unary:
        def bulk_create(request: Any, context: grpc.ServicerContext) -> Message:
            name = api.model.name
            values_list = [written_values(item, name) for item in request.items]
            for values in values_list:
                _refuse_reverse(api, values)
            return self._plural(
                api, self.store.create_many(name, values_list, actor=_actor(context))
            )

        return bulk_create

    def _update(self, api: ModelApi) -> Unary:
        def update(request: Any, context: grpc.ServicerContext) -> Message:
            name = api.model.name
            values = written_values(request.item, name, list(request.fields))
            _refuse_reverse(api, values)
            if not request.item.id:
                raise InvalidArgument(f"{name}.id is required to update")
            record = self.store.update(
                name,
                request.item.id,
                values,
                actor=_actor(context),
                update_fields=list(request.update_fields) or None,
                always_update_timestamp=request.always_update_timestamp,
            )
            return self._reply(api, record)

        return update

    def _delete(self, api: ModelApi) -> Unary:
        def delete(request: Any, context: grpc.ServicerContext) -> Message:
            self.store.delete(api.model.name, request.id, actor=_actor(context))
            return self.empty_class()

        return delete

    def _purge(self, api: ModelApi) -> Unary:
        def purge(request: Any, context: grpc.ServicerContext) -> Message:
            self.store.purge(api.model.name, request.id)
            return self.empty_class()

        return purge

    def _pending(self, api: ModelApi) -> Unary:
        def pending(request: Any, context: grpc.ServicerContext) -> Message:
            try:
                kind = PendingQuery(request.kind)
            except ValueError:
                raise InvalidArgument(f"unknown pending query kind {request.kind}") from None
            return self._plural(api, self.store.pending(api.model.name, kind))

        return pending

    # --- shared by every service ----------------------------------------------------------

    def _version(self, request: Message, context: grpc.ServicerContext) -> Message:
        reply: Message = self.version_class(
            version=self.store.core_version(), models=self.store.model_names()
        )
        return reply

    def _watch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Message]:
        after = request.after
        try:
            if request.once:
                timeout = request.timeout if request.HasField("timeout") else None
                for change in self.store.changes(after, timeout=timeout):
                    yield self._change(change)
                return
            while context.is_active():
                for change in self.store.changes(after, timeout=WATCH_POLL_SECONDS):
                    yield self._change(change)
                    after = change.seq
        except StoreError as exc:
            context.abort(STATUS_OF.get(type(exc), grpc.StatusCode.FAILED_PRECONDITION), str(exc))

    def _change(self, change: Any) -> Message:
        return self.change_class(seq=change.seq, kind=change.kind, model=change.model, id=change.id)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _actor(context: grpc.ServicerContext) -> Actor:
    actor = actor_of(context.invocation_metadata())
    if actor is None:
        raise InvalidArgument("metadata 'actor' must be one of: user, synchronizer, policy")
    return actor


def _refuse_reverse(api: ModelApi, values: dict[str, Any]) -> None:
    # Reverse lists are views of the other side's links; they are written there.
    for f in api.model.reverse_fields:
        if f.name in values:
            raise InvalidArgument(
                f"{api.model.name}.{f.name} is a reverse link; write the link on the other model"
            )


def _conditions(model: str, elements: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for element in elements:
        suffix = QUERY_OPS.get(element.op.upper())
        if suffix is None:
            raise InvalidArgument(f"{model} filter on {element.field!r}: unknown op {element.op!r}")
        try:
            value = json.loads(element.value_json) if element.value_json else None
        except ValueError:
            raise InvalidArgument(
                f"{model} filter on {element.field!r}: value is not JSON: {element.value_json!r:.60}"
            ) from None
        out[element.field + suffix] = value
    return out
