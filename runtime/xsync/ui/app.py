"""The status page's web server: a Starlette app over a store.

Routes: `/` (the page), `/static/*`, and the JSON API the page calls:
`/api/models` (counts per model and state), `/api/objects?model=&state=&q=&sort=&order=&offset=&limit=`
(one page of the filtered, sorted list and its total), `/api/groups` (failures by message,
held-back objects by root cause), `/api/object/{model}/{id}`, `/api/object/{model}/{id}/retry`
and `/api/groups/retry` (POST, only with `allow_retry`), `/api/graph.svg` (the service's
models and their neighbours, coloured by state), `/api/events` (server-sent events, one
`change` event per changed object).

Lists, counts and groups come from the in-memory `StatusIndex`, which follows the store's
change feed: no request scans the store, whatever its size.

Everything is read-only unless `allow_retry` is set; with `credentials` every request needs
HTTP Basic auth. Only the `hosts` names are answered, and a write needs the UI's own `Origin`
(`doors.py`). Object data leaves here as JSON and the page puts it in the DOM as text; the
Content-Security-Policy forbids inline script as a second line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..retry import retry_now
from ..planner import ModelDeps
from ..store.base import NotFound, Store, StoreError
from ..login_throttle import LoginThrottle
from .auth import BasicAuth, Credentials
from .doors import DoorGuard, allowed_hosts
from .feed import CLOSED, ChangeFeed
from .graph import GraphError, ServiceGraph
from ..backend_state import STATES
from ..planner import LinkFields
from .index import SORTS, Filters, StatusIndex
from .state import StatusReader

STATIC = Path(__file__).resolve().parent / "static"
KEEPALIVE_SECONDS = 15.0
PAGE_LIMIT = 200  # rows per /api/objects answer unless asked; at most MAX_PAGE_LIMIT
MAX_PAGE_LIMIT = 1000
READY_WAIT_SECONDS = 10.0  # a request waits this long for the first reading of the store
GROUP_IDS_SHOWN = 100  # ids listed per group; the count is the whole group's
# A header a cross-site form or image cannot send: only the page's own fetch() adds it.
WRITE_HEADER = "x-xsync-ui"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def create_app(
    store: Store,
    models: Sequence[str],
    *,
    deps: ModelDeps,
    credentials: Credentials | None = None,
    allow_retry: bool = False,
    title: str = "xsync status",
    clock: Callable[[], float] = time.time,
    poll_seconds: float = 1.0,
    hosts: frozenset[str] | None = None,
    throttle: LoginThrottle | None = None,
    service_models: Sequence[str] | None = None,
) -> Starlette:
    """The status UI for the objects of `models` in `store`.

    `deps` is the model-deps graph (`xprotogen.targets.deps.model_deps`). With `credentials`
    every request must log in; `allow_retry` enables the one write, "retry now". `title`
    heads the page (the synchronizer's name). `hosts` are the `Host` names answered
    (default: the loopback names, see `doors.allowed_hosts`). `service_models` are the
    synchronizer's own models, listed first and drawn in the graph (default: the models the
    built-in core does not define).
    """
    service = _service_models(models, service_models)
    order = [*service, *(m for m in models if m not in service)]
    index = StatusIndex(store, models, LinkFields.from_model_deps(deps), order)
    reader = StatusReader(store, models, deps, index.waited_by)
    feed = ChangeFeed(reader, index, poll_seconds=poll_seconds, clock=clock)
    graph = ServiceGraph(deps, service, shown=models)
    api = _Api(
        reader, index, feed, graph, order, service,
        allow_retry=allow_retry, title=title, clock=clock,
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(feed.start)
        try:
            yield
        finally:
            await run_in_threadpool(feed.stop)

    middleware = [
        Middleware(_SecurityHeaders),
        Middleware(DoorGuard, hosts=hosts if hosts is not None else allowed_hosts("")),
    ]
    if credentials is not None:
        middleware.append(Middleware(BasicAuth, credentials=credentials, throttle=throttle))
    app = Starlette(
        routes=[
            Route("/", api.index),
            Route("/api/models", api.models),
            Route("/api/objects", api.objects),
            Route("/api/groups", api.groups),
            Route("/api/groups/retry", api.retry_group, methods=["POST"]),
            Route("/api/object/{model}/{id:int}", api.detail),
            Route("/api/object/{model}/{id:int}/retry", api.retry, methods=["POST"]),
            Route("/api/graph.svg", api.graph),
            Route("/api/events", api.events),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.feed = feed
    app.state.index = index
    return app


def _service_models(models: Sequence[str], given: Sequence[str] | None) -> list[str]:
    if given is not None:
        return [m for m in given if m in models]
    from xprotogen.core_models import builtin_core_names

    core = builtin_core_names()
    return [m for m in models if m not in core]


class _Api:
    def __init__(
        self,
        reader: StatusReader,
        index: StatusIndex,
        feed: ChangeFeed,
        graph: ServiceGraph,
        order: Sequence[str],
        service: Sequence[str],
        *,
        allow_retry: bool,
        title: str,
        clock: Callable[[], float],
    ) -> None:
        self.title = title
        self.reader = reader
        self.status = index
        self.feed = feed
        self.picture = graph
        self.order = list(order)
        self.service = set(service)
        self.allow_retry = allow_retry
        self.clock = clock

    # Sync handlers: Starlette runs them in its thread pool, where blocking store calls belong.

    def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def models(self, request: Request) -> Response:
        if not self.status.wait_ready(READY_WAIT_SECONDS):
            return _not_ready()
        seq = self.feed.latest_seq  # read first: the page replays from here, never skips
        now = self.clock()
        self.status.refresh_due(now)
        counts = self.status.counts()
        return JSONResponse(
            {
                "models": [
                    {
                        "name": name,
                        "service": name in self.service,
                        "counts": counts[name],
                        "total": sum(counts[name].values()),
                    }
                    for name in self.order
                ],
                "states": list(STATES),
                "allow_retry": self.allow_retry,
                "title": self.title,
                "seq": seq,
                "now": now,
            }
        )

    def objects(self, request: Request) -> Response:
        """One page of the list: `offset`, `limit` (default 200), and the `total` selected."""
        if not self.status.wait_ready(READY_WAIT_SECONDS):
            return _not_ready()
        query = request.query_params
        filters = self._filters(request)
        if isinstance(filters, Response):
            return filters
        offset = _int(query.get("offset") or "0")
        if offset is None or offset < 0:
            return _error(400, f"offset must be a whole number >= 0, got {query.get('offset')!r}")
        limit = _int(query.get("limit") or str(PAGE_LIMIT))
        if limit is None or not 0 <= limit <= MAX_PAGE_LIMIT:
            return _error(400, f"limit must be 0-{MAX_PAGE_LIMIT}, got {query.get('limit')!r}")
        now = self.clock()
        self.status.refresh_due(now)
        page = self.status.page(filters, offset, limit)
        found: dict[str, Any] = {
            "objects": [s.as_json() for s in page.rows],
            "total": page.total,
            "offset": page.offset,
            "now": now,
        }
        at = query.get("find")
        if at:
            model, _, id = at.rpartition(":")
            found["found_at"] = self.status.position(filters, (model, _int(id) or 0))
        return JSONResponse(found)

    def _filters(self, request: Request) -> Filters | Response:
        query = request.query_params
        model = query.get("model") or None
        state = query.get("state") or None
        sort = query.get("sort") or "model"
        order = query.get("order") or "asc"
        if model is not None and not self.reader.has_model(model):
            return _error(404, f"no model named {model!r}")
        if state is not None and state not in STATES:
            return _error(400, f"unknown state {state!r}; expected one of {', '.join(STATES)}")
        if sort not in SORTS:
            return _error(400, f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")
        if order not in ("asc", "desc"):
            return _error(400, f"order must be asc or desc, got {order!r}")
        return Filters(model, state, query.get("q") or None, sort, order == "desc")

    def groups(self, request: Request) -> Response:
        """Failures grouped by message, held-back objects by what they wait for (`xsync status`)."""
        if not self.status.wait_ready(READY_WAIT_SECONDS):
            return _not_ready()
        self.status.refresh_due(self.clock())
        failing, held = self.status.groups()
        return JSONResponse(
            {
                "failing": [{**g.as_json(), "ids": g.ids[:GROUP_IDS_SHOWN]} for g in failing],
                "held_back": [
                    {
                        **g.as_json(),
                        "ids": [b.key[1] for b in g.held[:GROUP_IDS_SHOWN]],
                        "roots": sorted(g.roots)[:GROUP_IDS_SHOWN],
                    }
                    for g in held
                ],
                "allow_retry": self.allow_retry,
            }
        )

    def retry_group(self, request: Request) -> Response:
        """Retry now one group, as `xsync retry` does: `model` and `message` name a failure
        group (its objects are retried); `model`, `waits_for` and `state` a held-back group
        (the objects it waits for are retried: what holds it back is what has to run)."""
        refused = self._write_refused(request)
        if refused is not None:
            return refused
        if not self.status.wait_ready(READY_WAIT_SECONDS):
            return _not_ready()
        query = request.query_params
        model = query.get("model") or ""
        if not self.reader.has_model(model):
            return _error(404, f"no model named {model!r}")
        failing, held = self.status.groups()
        if query.get("waits_for") is not None:
            root, state = query.get("waits_for"), query.get("state")
            found = next(
                (
                    g for g in held
                    if g.model == model and g.root_model == root and g.root_state.value == state
                ),
                None,
            )  # fmt: skip
            if found is None:
                return _error(404, f"no {model} objects held back by {state} {root} objects")
            target, ids = found.root_model, sorted(found.roots)
        else:
            message = query.get("message")
            group = next((g for g in failing if g.model == model and g.message == message), None)
            if group is None:
                return _error(404, f"no failing {model} objects with the message {message!r}")
            target, ids = model, group.ids
        done = _guard(lambda: [retry_now(self.reader.store, target, id) for id in ids])
        if isinstance(done, Response):
            return done
        return JSONResponse({"retried": len(ids), "model": target})

    def _write_refused(self, request: Request) -> Response | None:
        if not self.allow_retry:
            return _error(403, "retry is disabled; start the UI with --allow-retry")
        if request.headers.get(WRITE_HEADER) != "1":
            return _error(403, f"a retry must come from the page (header {WRITE_HEADER})")
        return None

    def detail(self, request: Request) -> Response:
        if not self.status.wait_ready(READY_WAIT_SECONDS):
            return _not_ready()
        model, id = request.path_params["model"], request.path_params["id"]
        if not self.reader.has_model(model):
            return _error(404, f"no model named {model!r}")
        try:
            found = _guard(lambda: self.reader.detail(model, id, now=self.clock()))
        except NotFound:
            return _error(404, f"no {model} with id {id}")
        if isinstance(found, Response):
            return found
        found["allow_retry"] = self.allow_retry
        return JSONResponse(found)

    def retry(self, request: Request) -> Response:
        """Clear the object's backoffs so the next pass takes it (`retry.retry_now`)."""
        refused = self._write_refused(request)
        if refused is not None:
            return refused
        model, id = request.path_params["model"], request.path_params["id"]
        if not self.reader.has_model(model):
            return _error(404, f"no model named {model!r}")
        try:
            found = _guard(lambda: self._clear_backoff(model, id))
        except NotFound:
            return _error(404, f"no {model} with id {id}")
        if isinstance(found, Response):
            return found
        return JSONResponse({"object": found})

    def _clear_backoff(self, model: str, id: int) -> dict[str, Any] | None:
        retry_now(self.reader.store, model, id)  # the same as `xsync retry CONFIG MODEL ID`
        summary = self.reader.summary(model, id, now=self.clock())
        return summary.as_json() if summary is not None else None

    def graph(self, request: Request) -> Response:
        if not self.status.wait_ready(READY_WAIT_SECONDS):
            return _not_ready()
        self.status.refresh_due(self.clock())
        svg = _guard_graph(lambda: self.picture.render(self.status.counts()))
        if isinstance(svg, Response):
            return svg
        return Response(svg, media_type="image/svg+xml")

    async def events(self, request: Request) -> Response:
        after = _int(request.headers.get("last-event-id"))
        if after is None:
            after = _int(request.query_params.get("after")) or 0
        return StreamingResponse(
            self._stream(request, after),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def _stream(self, request: Request, after: int) -> AsyncIterator[str]:
        sub = self.feed.subscribe()
        try:
            last = after
            try:
                backlog = await run_in_threadpool(self.feed.backlog, after)
            except StoreError as exc:
                yield _sse("failure", {"error": str(exc)})
                return
            if backlog is None:
                yield _sse("resync", {})
                last = self.feed.latest_seq
            else:
                for message in backlog:
                    yield _sse("change", message, id=message["seq"])
                    last = max(last, message["seq"])
            yield _sse("ready", {"seq": last})
            while True:
                try:
                    message = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if message is CLOSED:
                    return
                if sub.overflowed:
                    sub.overflowed = False
                    while not sub.queue.empty():
                        if sub.queue.get_nowait() is CLOSED:
                            return
                    yield _sse("resync", {})
                    continue
                if message["seq"] <= last:
                    continue  # already sent from the backlog
                last = message["seq"]
                yield _sse("change", message, id=last)
        finally:
            self.feed.unsubscribe(sub)


def _sse(event: str, data: Mapping[str, Any], *, id: int | None = None) -> str:
    # json.dumps keeps the data on one line, as a `data:` field must be.
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _not_ready() -> Response:
    response = _error(503, "the UI is still reading the store's objects; the page retries")
    response.headers["retry-after"] = "2"
    return response


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _guard_graph(render: Callable[[], str]) -> str | Response:
    try:
        return render()
    except GraphError as exc:
        return _error(503, str(exc))


def _guard(read: Callable[[], Any]) -> Any:
    """Run a store read; a store that fails answers 503 naming the problem (NotFound passes)."""
    try:
        return read()
    except NotFound:
        raise
    except StoreError as exc:
        return _error(503, f"the store failed: {exc}")


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)
