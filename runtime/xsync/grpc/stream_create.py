"""`StreamCreate<Model>`: a loader's objects sent one by one on one stream, created in chunks.

Why: a unary call costs about half a millisecond here whatever it carries; on a stream an
object costs little more than its message, and a chunk of them one transaction.

What a caller sees (the client side is `RemoteStore.create_stream`):

* The server gathers objects into a chunk of `chunk` objects (the call's `chunk` metadata,
  `CHUNK` when absent, at most `MAX_CHUNK`) or `CHUNK_BYTES` bytes, creates the chunk in one
  transaction (`Store.create_many`) and sends back its records, in order, as one list
  message. When the client ends its stream, the last (short) chunk is created the same way,
  its records preceded by an empty list (the check that the client did not cancel, below).
* A stream creates a prefix of its objects. At a bad object (one that does not parse, names
  an unknown field, holds a value of the wrong type, or that the store refuses), every object
  before it is created and sent back, and it and everything after it are not. The call then
  ends with the store's status, its details naming the item's index and the field, and
  trailing metadata `xsync-item` (the index) and `xsync-created` (objects created). The rule
  is `xsync.store.chunks`'s, shared with the ORM on an embedded store.
* A stream the client cancels, or that sends nothing for `IDLE` seconds, ends with the
  objects read since the last chunk dropped: a chunk is written whole or not at all.

Memory is bounded by one chunk and gRPC's flow-control window: the server reads no further
while a chunk is being written, and flow control holds the client back meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, TypeVar

import grpc
from google.protobuf.message import Message

from ..accounts import Account
from ..store.base import Actor, InvalidArgument, Record, Store, StoreError
from ..store.chunks import create_prefix, created_text
from .convert import add_record, written_values
from .protocol import ModelApi

log = logging.getLogger("xsync.grpc.server")

STREAM_CREATE = "StreamCreate"  # the `MODEL_RPCS` prefix this module serves
CHUNK = 500  # objects per transaction when the call does not ask for fewer
MAX_CHUNK = 5000
CHUNK_BYTES = 4 << 20  # a chunk is also written once its messages hold this many bytes
IDLE = 60.0  # seconds a stream may go without sending an object
CHUNK_KEY = "chunk"  # call metadata: objects per chunk
ITEM_KEY = "xsync-item"  # trailing metadata of a failed stream: the bad item's index
CREATED_KEY = "xsync-created"  # and how many objects were created before it

T = TypeVar("T")
Run = Callable[[Callable[[], T]], Awaitable[T]]
Context = grpc.aio.ServicerContext[Any, Any]
_END = object()


class _Stop(Exception):
    """The stream ends: `error` at item `index` (None: not an item's fault)."""

    def __init__(self, error: StoreError, index: int | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.index = index


class StreamCreate:
    """The behaviour of every model's `StreamCreate` RPC.

    `run` runs a blocking store call off the event loop; `status`, `actor_of`, `may_write`
    and `refuse_reverse` are the server's own rules for a write (one owner: server.py).
    """

    def __init__(
        self,
        store: Store,
        run: Run[Any],
        status: Mapping[type[StoreError], grpc.StatusCode],
        actor_of: Callable[[Context, Account], Actor],
        may_write: Callable[[Account, Actor], None],
        refuse_reverse: Callable[[ModelApi, dict[str, Any]], None],
    ) -> None:
        self.store = store
        self.run = run
        self.status = status
        self.actor_of = actor_of
        self.may_write = may_write
        self.refuse_reverse = refuse_reverse

    async def serve(
        self,
        api: ModelApi,
        requests: AsyncIterator[Message | None],
        context: Context,
        account: Account,
    ) -> AsyncIterator[Message]:
        created = 0
        try:
            actor = self.actor_of(context, account)
            self.may_write(account, actor)
            size = chunk_size(context.invocation_metadata())
            chunk: list[dict[str, Any]] = []
            held = 0  # bytes of the chunk's messages
            items = aiter(requests)
            while True:
                message = await _next(items, api.model.name, created + len(chunk))
                ended = message is _END
                if ended and chunk:
                    # grpcio ends the requests of a call the client cancelled (or whose
                    # connection broke) as if the client had finished them. Sending on such
                    # a call fails, and ends this handler before the chunk is written: an
                    # empty list tells the two apart, whatever the timing.
                    yield api.plural()
                bad: _Stop | None = None
                if not ended:
                    try:
                        chunk.append(self._values(api, message))
                    except StoreError as exc:
                        bad = _Stop(exc, created + len(chunk))
                    else:
                        held += message.ByteSize()
                        if len(chunk) < size and held < CHUNK_BYTES:
                            continue
                if chunk:  # a full chunk, the last one, or every object before a bad one
                    reply, count, failure = await self.run(
                        partial(self._create_prefix, api, chunk, actor)
                    )
                    if count:
                        yield reply
                    if failure is not None:
                        bad = _Stop(failure[1], created + failure[0])
                    created += count
                    chunk, held = [], 0
                if bad is not None:
                    raise bad
                if ended:
                    return
        except _Stop as stop:
            await self._abort(context, api.model.name, stop.error, stop.index, created)
        except StoreError as exc:
            await self._abort(context, api.model.name, exc, None, created)
        except Exception as exc:  # noqa: BLE001 - the server must answer, not crash
            if isinstance(exc, grpc.aio.AbortError):
                raise
            log.exception("unexpected error in a %s stream", api.model.name)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"internal error: {type(exc).__name__}; {created_text(created)}",
                trailing_metadata=((CREATED_KEY, str(created)),),
            )

    def _values(self, api: ModelApi, message: Message | None) -> dict[str, Any]:
        name = api.model.name
        if message is None:
            raise InvalidArgument(f"cannot parse it as a {name}")
        values = written_values(message, name)
        if values.get("id"):
            raise InvalidArgument(f"{name}.id is assigned by the store; do not send it")
        values.pop("id", None)
        self.refuse_reverse(api, values)
        return values

    def _create_prefix(
        self, api: ModelApi, chunk: list[dict[str, Any]], actor: Actor
    ) -> tuple[Message, int, tuple[int, StoreError] | None]:
        """On the store's thread: the chunk by the prefix rule (`store.chunks`), as a reply."""
        records, failure = create_prefix(self.store, api.model.name, chunk, actor)
        return self._plural(api, records), len(records), failure

    def _plural(self, api: ModelApi, records: list[Record]) -> Message:
        reply = api.plural()
        items: Any = getattr(reply, "items")
        for record in records:
            add_record(items, api.message, api.model.name, record)
        return reply

    async def _abort(
        self,
        context: Context,
        model: str,
        error: StoreError,
        index: int | None,
        created: int,
    ) -> None:
        where = f"{model} stream item {index}" if index is not None else f"{model} stream"
        trailing: tuple[tuple[str, str], ...] = ((CREATED_KEY, str(created)),)
        if index is not None:
            trailing += ((ITEM_KEY, str(index)),)
        await context.abort(
            self.status.get(type(error), grpc.StatusCode.FAILED_PRECONDITION),
            f"{where}: {error}; {created_text(created)}",
            trailing_metadata=trailing,
        )


def chunk_size(metadata: Any) -> int:
    """Objects per chunk the call asks for (`chunk` metadata), `CHUNK` when it asks none."""
    for key, value in metadata or ():
        if key == CHUNK_KEY:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            try:
                size = int(text)
            except ValueError:
                size = 0
            if not 1 <= size <= MAX_CHUNK:
                raise InvalidArgument(
                    f"metadata 'chunk' must be a whole number from 1 to {MAX_CHUNK}, got {text!r:.40}"
                )
            return size
    return CHUNK


async def _next(items: AsyncIterator[Message | None], model: str, index: int) -> Any:
    """The next object of the stream, `_END` when it ended; an idle client is cut off."""
    try:
        async with asyncio.timeout(IDLE):
            return await anext(items, _END)
    except TimeoutError:
        raise StoreError(
            f"{model} stream: no object for {IDLE:g} s after item {index - 1}; "
            "the objects since the last chunk were dropped"
        ) from None
