"""`RemoteStore`: the `Store` contract over a core's gRPC API, so the ORM and the engine
run unchanged against a remote core. Status codes come back as the store's exceptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import grpc
from google.protobuf.message import Message

from xprotogen.schema import Schema

from ..store.base import (
    STORE_DOWN,
    Actor,
    Change,
    InvalidArgument,
    NotFound,
    OutcomeWrite,
    PendingQuery,
    PermissionDenied,
    Record,
    StoreError,
    Unauthenticated,
    Unavailable,
)
from ..store.chunks import CreateStreamError, created_text
from .auth import ACTOR_KEY, credentials_metadata
from .convert import fill_message, read_record
from .leases import RemoteLeases
from .outcomes import MAX_ITEMS as OUTCOME_MAX_ITEMS
from .outcomes import PATH as OUTCOMES_PATH
from .outcomes import decode_reply as decode_outcomes_reply
from .outcomes import encode_request as encode_outcomes
from .outcomes import item_size as outcome_item_size
from .outcomes import portable
from .leases import decode_reply as decode_lease_reply
from .leases import encode as encode_lease
from .leases import path as lease_path
from .retention import PATH as RETENTION_PATH
from .retention import decode_reply as decode_retention_reply
from .retention import encode_request as encode_retention
from .protocol import CORE_STORE_DOWN, DEFAULT_MESSAGE_LIMIT, REPLY_LIMIT, ModelApi, protocol_for
from .stream_create import CHUNK_KEY, CREATED_KEY, ITEM_KEY, MAX_CHUNK, STREAM_CREATE

ERROR_OF: dict[grpc.StatusCode, type[StoreError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}
DEFAULT_TIMEOUT = 60.0  # seconds per unary call: a dead core must not hang a worker forever
# Objects per BulkCreate call: large enough that the per-call cost (about 0.5 ms here) is
# small next to the objects' own, small enough that one call stays well under a second.
BULK_BATCH = 1000
STREAM_CHUNK = 1000  # objects per transaction of `create_stream`
STREAM_TIMEOUT = 3600.0  # seconds a whole `create_stream` may take
_ENVELOPE = 64  # bytes a plural message may add per item (tag and length) and overall


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How to verify a TLS core: PEM roots to trust (None: the system's), an optional client
    certificate chain and key, and the name to verify when it is not the endpoint's host."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None


class RemoteStore:
    """A `Store` whose objects live in the core at `endpoint` ("host:port").

    `tls` says how to verify a TLS core (PEM bytes: the roots to trust); None means plaintext.
    """

    def __init__(
        self,
        endpoint: str,
        schema: Schema,
        *,
        username: str,
        password: str,
        tls: bytes | TlsOptions | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        message_limit: int = DEFAULT_MESSAGE_LIMIT,
    ) -> None:
        self.endpoint = endpoint
        self.username = username
        self._protocol = protocol_for(schema)
        self._credentials = credentials_metadata(username, password)
        self._timeout = timeout
        self._message_limit = message_limit
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", message_limit),
            ("grpc.max_receive_message_length", REPLY_LIMIT),
        ]
        self.tls = TlsOptions(ca=tls) if isinstance(tls, bytes) else tls
        if self.tls is None:
            self._channel = grpc.insecure_channel(endpoint, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=self.tls.ca,
                private_key=self.tls.key,
                certificate_chain=self.tls.cert,
            )
            if self.tls.server_name:
                options.append(("grpc.ssl_target_name_override", self.tls.server_name))
            self._channel = grpc.secure_channel(endpoint, credentials, options=options)
        self._calls: dict[str, grpc.UnaryUnaryMultiCallable[Any, Any]] = {}
        self._reverse: dict[str, tuple[str, ...]] = {}
        # Runners sharing a synchronizer through this core take their leases here.
        self.leases = RemoteLeases(self._lease_call)

    @property
    def shared_by_runners(self) -> bool:
        """A core serves any number of runners: they share work through its leases."""
        return True

    def _lease_call(self, method: str, request: dict[str, Any], writes: bool) -> Any:
        call = self._unary(lease_path(method), encode_lease, decode_lease_reply)
        metadata = (
            (*self._credentials, (ACTOR_KEY, "synchronizer")) if writes else self._credentials
        )
        try:
            return call(request, metadata=metadata, timeout=self._timeout)["value"]
        except grpc.RpcError as exc:
            raise _store_error(exc, self) from None

    # --- plumbing ---------------------------------------------------------------------------

    def _api(self, model: str) -> ModelApi:
        found = self._protocol.models.get(model) if isinstance(model, str) else None
        if found is None:
            raise InvalidArgument(f"unknown model {model!r}")
        return found

    def _unary(
        self, path: str, serialize: Callable[[Any], bytes], deserialize: Callable[[bytes], Any]
    ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
        """The channel's callable for `path`, made on first use and kept."""
        call = self._calls.get(path)
        if call is None:
            call = self._calls[path] = self._channel.unary_unary(
                path, request_serializer=serialize, response_deserializer=deserialize
            )
        return call

    def _call(
        self, path: str, request: Message, reply: type[Message], actor: Actor | None = None
    ) -> Any:
        call = self._unary(path, _serialize, reply.FromString)
        metadata = self._credentials if actor is None else (*self._credentials, (ACTOR_KEY, actor))
        try:
            return call(request, metadata=metadata, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise _store_error(exc, self) from None

    def _model_call(
        self,
        api: ModelApi,
        prefix: str,
        request: Message,
        reply: type[Message],
        actor: Actor | None = None,
    ) -> Any:
        return self._call(api.path(prefix), request, reply, actor)

    def _record(self, api: ModelApi, message: Message) -> Record:
        return read_record(message, skip=self._skip(api))

    def _skip(self, api: ModelApi) -> tuple[str, ...]:
        """The reverse-link fields of `api`'s message: views, not part of a record."""
        found = self._reverse.get(api.model.name)
        if found is None:
            found = self._reverse[api.model.name] = tuple(f.name for f in api.model.reverse_fields)
        return found

    def _records(self, api: ModelApi, plural: Any) -> list[Record]:
        return [self._record(api, item) for item in plural.items]

    def _id(self, model: str, id: int, include_deleted: bool = False) -> Message:
        if isinstance(id, bool) or not isinstance(id, int):
            raise InvalidArgument(f"{model} id must be an integer, got {id!r:.60}")
        try:
            return self._protocol.common("ID")(id=id, include_deleted=include_deleted)
        except ValueError:
            raise NotFound(f"{model} {id} does not exist") from None

    # --- the contract -------------------------------------------------------------------------

    def core_version(self) -> str:
        return str(self._version().version)

    def model_names(self) -> list[str]:
        return list(self._version().models)

    def _version(self) -> Any:
        return self._call(
            self._protocol.version_path(), self._protocol.empty(), self._protocol.common("Version")
        )

    def create(self, model: str, values: Mapping[str, Any], *, actor: Actor = "user") -> Record:
        api = self._api(model)
        request = fill_message(api.message(), model, values, skip_unknown=False)
        return self._record(api, self._model_call(api, "Create", request, api.message, actor))

    def create_many(
        self,
        model: str,
        values_list: Sequence[Mapping[str, Any]],
        *,
        actor: Actor = "user",
        batch: int = BULK_BATCH,
    ) -> list[Record]:
        """Create the objects in batches of at most `batch` objects and of at most the message
        limit in bytes, one `BulkCreate` call (and transaction) each.

        All or none holds per batch: when a batch fails, the batches before it stay created.
        """
        api = self._api(model)
        if isinstance(values_list, (str, bytes, Mapping)) or not isinstance(
            values_list, (list, tuple)
        ):
            raise InvalidArgument(f"create_many takes a list of {model} values")
        records: list[Record] = []
        for request in self._bulk_requests(api, model, values_list, max(1, batch)):
            reply = self._model_call(api, "BulkCreate", request, api.plural, actor)
            records.extend(self._records(api, reply))
        return records

    def _bulk_requests(
        self, api: ModelApi, model: str, values_list: Sequence[Mapping[str, Any]], batch: int
    ) -> Iterator[Any]:
        """Plural messages, each within `batch` objects and the message limit."""
        request: Any = api.plural()
        size = _ENVELOPE
        for values in values_list:
            if not isinstance(values, Mapping):
                raise InvalidArgument(f"{model} values must be a mapping, got {values!r:.60}")
            item = fill_message(request.items.add(), model, values, skip_unknown=False)
            item_size = item.ByteSize() + _ENVELOPE
            if item_size > self._message_limit:
                raise InvalidArgument(
                    f"one {model} is {item_size} bytes, over the message limit of "
                    f"{self._message_limit} bytes"
                )
            if len(request.items) > batch or size + item_size > self._message_limit:
                # The item does not fit: it starts the next request (only it is copied).
                del request.items[-1]
                yield request
                request = api.plural()
                request.items.add().CopyFrom(item)
                size = _ENVELOPE
            size += item_size
        if request.items:
            yield request

    def create_stream(
        self,
        model: str,
        values: Iterable[Mapping[str, Any]],
        *,
        actor: Actor = "user",
        chunk: int = STREAM_CHUNK,
        timeout: float = STREAM_TIMEOUT,
    ) -> list[Record]:
        """Create the objects of `values` (any iterable, read lazily) on one stream, the core
        committing every `chunk` of them in one transaction; their records, in order.

        A stream creates a prefix of its objects: at a bad object (the core refuses it, this
        side cannot send it, or `values` raises) every object before it is created, it and
        the ones after are not, and `CreateStreamError` says which item and why and holds the
        records created. Cancelled (an interrupt, the `timeout` in seconds for the whole
        stream), the core drops the objects of the chunk it was reading: whole chunks only.
        """
        api = self._api(model)
        if isinstance(values, (str, bytes, Mapping)):
            raise InvalidArgument(f"create_stream takes an iterable of {model} values")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
            raise InvalidArgument(
                f"create_stream chunk must be from 1 to {MAX_CHUNK}, got {chunk!r}"
            )
        stopped: list[tuple[int, BaseException]] = []  # what ended the requests on this side
        path = api.path(STREAM_CREATE)
        call: Any = self._channel.stream_stream(
            path, request_serializer=_serialize, response_deserializer=api.plural.FromString
        )
        metadata = (*self._credentials, (ACTOR_KEY, actor), (CHUNK_KEY, str(chunk)))
        replies = call(
            self._stream_requests(api, model, values, stopped), metadata=metadata, timeout=timeout
        )
        records: list[Record] = []
        try:
            for reply in replies:
                records.extend(self._records(api, reply))
        except grpc.RpcError as exc:
            raise _stream_error(exc, self, model, records) from None
        finally:
            replies.cancel()  # a no-op once the stream has ended; stops it when interrupted
        if stopped:
            index, cause = stopped[0]
            detail = (
                str(cause) if isinstance(cause, StoreError) else f"{type(cause).__name__}: {cause}"
            )
            raise CreateStreamError(
                f"{model} stream item {index}: {detail}; {created_text(len(records))}",
                created=records,
                index=index,
            ) from (None if isinstance(cause, StoreError) else cause)
        return records

    def _stream_requests(
        self,
        api: ModelApi,
        model: str,
        values: Iterable[Mapping[str, Any]],
        stopped: list[tuple[int, BaseException]],
    ) -> Iterator[Message]:
        """The messages of `values`; at one that cannot be sent, or an error of `values`
        itself, the stream ends there (noted in `stopped`), so the core creates those before."""
        index = 0  # of the item being read: an error of `values` is one of the next item
        try:
            for item in values:
                if not isinstance(item, Mapping):
                    raise InvalidArgument(f"{model} values must be a mapping, got {item!r:.60}")
                message = fill_message(api.message(), model, item, skip_unknown=False)
                if message.ByteSize() + _ENVELOPE > self._message_limit:
                    raise InvalidArgument(
                        f"one {model} is {message.ByteSize()} bytes, over the message limit of "
                        f"{self._message_limit} bytes"
                    )
                yield message
                index += 1
        except Exception as exc:  # noqa: BLE001 - reported by create_stream, in its thread
            stopped.append((index, exc))

    def get(self, model: str, id: int, *, include_deleted: bool = False) -> Record:
        api = self._api(model)
        return self._record(
            api, self._model_call(api, "Get", self._id(model, id, include_deleted), api.message)
        )

    def get_many(self, model: str, ids: Sequence[int], *, deleted: bool = False) -> list[Record]:
        return self.query(model, filters={"id__in": list(ids)}, deleted=deleted)

    def query(
        self,
        model: str,
        *,
        filters: Mapping[str, Any] | None = None,
        excludes: Mapping[str, Any] | None = None,
        deleted: bool | None = False,
        order_by: Sequence[str] = ("id",),
        limit: int | None = None,
    ) -> list[Record]:
        api = self._api(model)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**31
        ):
            raise InvalidArgument(f"query limit must be a non-negative integer, got {limit!r}")
        request: Any = self._protocol.common("Query")(
            deleted={False: 0, True: 1, None: 2}[deleted],
            order_by=[order_by] if isinstance(order_by, str) else list(order_by),
        )
        if limit is not None:
            request.limit = limit
        _add_conditions(model, request.filters, filters)
        _add_conditions(model, request.excludes, excludes)
        return self._records(api, self._model_call(api, "Filter", request, api.plural))

    def update(
        self,
        model: str,
        id: int,
        values: Mapping[str, Any],
        *,
        actor: Actor = "user",
        update_fields: Sequence[str] | None = None,
        always_update_timestamp: bool = False,
    ) -> Record:
        api = self._api(model)
        request: Any = api.update_request(always_update_timestamp=always_update_timestamp)
        fill_message(request.item, model, {**values, "id": None}, skip_unknown=False)
        request.item.id = self._id(model, id).id  # type: ignore[attr-defined]
        request.fields.extend(k for k in values if k != "id")
        if update_fields is not None:
            names = (
                update_fields.split(",") if isinstance(update_fields, str) else list(update_fields)
            )
            request.update_fields.extend(n.strip() for n in names)
        return self._record(api, self._model_call(api, "Update", request, api.message, actor))

    def write_outcomes(
        self, writes: Sequence[OutcomeWrite], *, actor: Actor = "synchronizer"
    ) -> list[StoreError | None]:
        """One call per batch (a batch past the core's limits is sent in a few)."""
        results: list[StoreError | None] = [None] * len(writes)
        sendable: list[tuple[int, OutcomeWrite]] = []
        for index, w in enumerate(writes):
            try:
                sendable.append((index, portable(w)))
            except StoreError as exc:
                results[index] = exc
        for chunk in self._outcome_chunks(sendable):
            replies = self._outcome_call([w for _, w in chunk], actor)
            for (index, _), reply in zip(chunk, replies, strict=True):
                results[index] = reply
        return results

    def _outcome_chunks(
        self, items: list[tuple[int, OutcomeWrite]]
    ) -> Iterator[list[tuple[int, OutcomeWrite]]]:
        budget = self._message_limit - _ENVELOPE
        chunk: list[tuple[int, OutcomeWrite]] = []
        size = 0
        for item in items:
            grows = outcome_item_size(item[1])
            if chunk and (len(chunk) >= OUTCOME_MAX_ITEMS or size + grows > budget):
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += grows
        if chunk:
            yield chunk

    def _outcome_call(self, writes: list[OutcomeWrite], actor: Actor) -> list[StoreError | None]:
        call = self._unary(OUTCOMES_PATH, encode_outcomes, decode_outcomes_reply)
        try:
            reply = call(
                writes, metadata=(*self._credentials, (ACTOR_KEY, actor)), timeout=self._timeout
            )
        except grpc.RpcError as exc:
            raise _store_error(exc, self) from None
        found = reply.get("value")
        if not isinstance(found, list) or len(found) != len(writes):
            raise StoreError(f"core at {self.endpoint} answered outcomes with a malformed reply")
        return [None if r is None else _outcome_error(r) for r in found]

    def delete(self, model: str, id: int, *, actor: Actor = "user") -> None:
        api = self._api(model)
        self._model_call(
            api,
            "Delete",
            self._id(model, id),
            self._protocol.message_class("google.protobuf.Empty"),
            actor,
        )

    def purge(self, model: str, id: int) -> None:
        api = self._api(model)
        self._model_call(
            api, "Purge", self._id(model, id), self._protocol.message_class("google.protobuf.Empty")
        )

    def pending(
        self, model: str, query: PendingQuery, *, columns: Sequence[str] | None = None
    ) -> list[Record]:
        api = self._api(model)
        if not isinstance(query, PendingQuery):
            raise InvalidArgument(f"unknown pending query {query!r}")
        request: Any = self._protocol.common("PendingRequest")(kind=query.value)
        if columns is None:
            return self._records(api, self._model_call(api, "Pending", request, api.plural))
        request.columns.extend(columns)
        found = self._records(api, self._model_call(api, "Pending", request, api.plural))
        # The reply's messages hold every field, the ones not sent at their defaults.
        kept = {"id", *columns}
        return [{k: v for k, v in record.items() if k in kept} for record in found]

    def changes(self, after: int = 0, *, timeout: float | None = None) -> list[Change]:
        request: Any = self._protocol.common("WatchRequest")(after=after, once=True)
        if timeout is not None:
            request.timeout = timeout
        deadline = self._timeout + (timeout or 0.0)
        return list(self._stream(request, deadline))

    def latest_change(self) -> int:
        reply = self._call(
            self._protocol.latest_change_path(),
            self._protocol.empty(),
            self._protocol.common("LatestChange"),
        )
        return int(reply.seq)

    def forget_changes(self, age_seconds: float) -> int:
        """Ask the core to prune its change log (an account that may sync; see `retention`)."""
        call = self._unary(RETENTION_PATH, encode_retention, decode_retention_reply)
        metadata = (*self._credentials, (ACTOR_KEY, "synchronizer"))
        try:
            return int(call(age_seconds, metadata=metadata, timeout=self._timeout)["value"])
        except grpc.RpcError as exc:
            raise _store_error(exc, self) from None

    def watch(self, after: int = 0) -> Iterator[Change]:
        """Every change after `after`, as it commits, until the iterator is closed."""
        request = self._protocol.common("WatchRequest")(after=after)
        return self._stream(request, None)

    def _stream(self, request: Message, deadline: float | None) -> Iterator[Change]:
        call: Any = self._channel.unary_stream(
            self._protocol.watch_path(),
            request_serializer=_serialize,
            response_deserializer=self._protocol.common("Change").FromString,
        )
        stream = call(request, metadata=self._credentials, timeout=deadline)
        try:
            for c in stream:  # each a Change message
                yield Change(c.seq, c.kind, c.model, c.id)
        except grpc.RpcError as exc:
            raise _store_error(exc, self) from None
        finally:
            stream.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _add_conditions(model: str, target: Any, conditions: Mapping[str, Any] | None) -> None:
    for key, value in (conditions or {}).items():
        try:
            encoded = json.dumps(sorted(value) if isinstance(value, (set, frozenset)) else value)
        except (TypeError, ValueError):
            raise InvalidArgument(f"{model} filter {key!r}: {value!r:.60} cannot be sent") from None
        target.add(field=key, op="", value_json=encoded)


def _stream_error(
    exc: grpc.RpcError, remote: RemoteStore, model: str, records: list[Record]
) -> StoreError:
    """The error of a stream the core ended: with what was created, when it tells."""
    error = _store_error(exc, remote)
    trailing: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    told = {key: value for key, value in trailing or ()}
    if CREATED_KEY not in told:
        # Not the stream's own verdict (unreachable, refused credentials, a timeout): what
        # came back is still what was created.
        if not records:
            return error
        return CreateStreamError(
            f"{error}; {model} stream: {created_text(len(records))} before it stopped",
            created=records,
            index=None,
        )
    index = int(told[ITEM_KEY]) if ITEM_KEY in told else None
    return CreateStreamError(str(error), created=records, index=index)


class CoreUnreachable(Unavailable):
    """The core at `endpoint` did not answer; `reason` says why, in words a person can act on."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"cannot reach the core at {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class TlsRefused(CoreUnreachable):
    """The TLS handshake with the core failed: one side's certificate, CA or name is wrong.

    Still `Unavailable` (a pass under way waits as for any lost core), but a runner that meets
    it at start does not wait for it: no outage ends it, only a changed setting.
    """


def _store_error(exc: grpc.RpcError, remote: RemoteStore) -> StoreError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(
            f"the core at {remote.endpoint} refused the credentials of {remote.username!r}: "
            f"{details or 'unauthenticated'}"
        )
    error = ERROR_OF.get(code) if code is not None else None
    if error is not None:
        return error(details or code.name)  # type: ignore[union-attr]
    if code is grpc.StatusCode.UNAVAILABLE and (details or "").startswith(CORE_STORE_DOWN):
        return Unavailable(f"core at {remote.endpoint}: {details}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return _unreachable(code, details or "", remote)
    name = code.name if code is not None else "ERROR"
    return StoreError(f"core at {remote.endpoint}: {name}: {details}")


def _unreachable(code: grpc.StatusCode, details: str, remote: RemoteStore) -> CoreUnreachable:
    """gRPC's details as a reason a person can act on; a failed handshake is `TlsRefused`."""
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return CoreUnreachable(remote.endpoint, f"no answer within {remote._timeout:g} s")
    refused = _tls_refusal(details, remote)
    if refused is not None:
        return TlsRefused(remote.endpoint, refused)
    last = details.rsplit(": ", 1)[-1] if details else "unavailable"
    if "Connection refused" in details:
        last = "connection refused (is `xsync core` running there?)"
    return CoreUnreachable(remote.endpoint, last)


def _tls_refusal(details: str, remote: RemoteStore) -> str | None:
    """Why the TLS handshake failed, or None when the connection failed some other way."""
    tls = remote.tls
    if "Hostname Verification" in details and tls is not None:
        name = tls.server_name or remote.endpoint.rsplit(":", 1)[0]
        return (
            f"the core's certificate is not for {name!r} "
            "(set accessor.tls.server_name to a name it has)"
        )
    if "WRONG_VERSION_NUMBER" in details and tls is not None:
        return "the TLS handshake failed: the core does not serve TLS (remove accessor.tls?)"
    if "handshake" in details.lower() or "ssl" in details.lower():
        hint = (
            "is accessor.tls.ca the CA that signed the core's certificate?"
            if tls is not None
            else "does the core serve TLS? then set accessor.tls"
        )
        return f"the TLS handshake failed ({hint})"
    # The peer closed a connection being set up. Over TLS 1.3 that is how a core refuses a
    # client certificate (missing, or not signed by its --tls-client-ca): the client finished
    # its side of the handshake, and the core's alert is lost with the connection.
    if "Socket closed" not in details or "failed to connect" not in details:
        return None
    if tls is None:
        return "the core closed the connection (does the core serve TLS? then set accessor.tls)"
    if tls.cert is None:
        return (
            "the core refused the TLS handshake: it requires a client certificate "
            "(set accessor.tls.cert and accessor.tls.key)"
        )
    return (
        "the core refused the TLS handshake: it does not accept accessor.tls.cert "
        "(is it signed by the CA of the core's --tls-client-ca?)"
    )


def _outcome_error(reply: Any) -> StoreError:
    """One item's error as the core raised it (its gRPC status name and message)."""
    name, message = reply
    try:
        code = grpc.StatusCode[name]
    except KeyError:
        return StoreError(str(message))
    return ERROR_OF.get(code, StoreError)(str(message))
