"""The status page's web server: a Starlette app over a store.

Routes: `/` (the page), `/static/*`, and the JSON API the page calls:
`/api/models`, `/api/objects?model=&state=&q=`, `/api/object/{model}/{id}`,
`/api/object/{model}/{id}/retry` (POST, only with `allow_retry`), `/api/graph.svg`,
`/api/events` (server-sent events, one `change` event per changed object).

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
from .graph import render_svg
from ..backend_state import STATES
from .state import StatusReader

STATIC = Path(__file__).resolve().parent / "static"
KEEPALIVE_SECONDS = 15.0
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
) -> Starlette:
    """The status UI for the objects of `models` in `store`.

    `deps` is the model-deps graph (`xprotogen.targets.deps.model_deps`). With `credentials`
    every request must log in; `allow_retry` enables the one write, "retry now". `title`
    heads the page (the synchronizer's name). `hosts` are the `Host` names answered
    (default: the loopback names, see `doors.allowed_hosts`).
    """
    reader = StatusReader(store, models, deps)
    feed = ChangeFeed(reader, poll_seconds=poll_seconds, clock=clock)
    api = _Api(reader, feed, render_svg(deps), allow_retry=allow_retry, title=title, clock=clock)

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
    return app


class _Api:
    def __init__(
        self,
        reader: StatusReader,
        feed: ChangeFeed,
        graph_svg: str,
        *,
        allow_retry: bool,
        title: str,
        clock: Callable[[], float],
    ) -> None:
        self.title = title
        self.reader = reader
        self.feed = feed
        self.graph_svg = graph_svg
        self.allow_retry = allow_retry
        self.clock = clock

    # Sync handlers: Starlette runs them in its thread pool, where blocking store calls belong.

    def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def models(self, request: Request) -> Response:
        seq = self.feed.latest_seq  # read first: the page replays from here, never skips
        now = self.clock()
        counts = _guard(lambda: self.reader.counts(now=now))
        if isinstance(counts, Response):
            return counts
        return JSONResponse(
            {
                "models": [{"name": name, "counts": tally} for name, tally in counts.items()],
                "states": list(STATES),
                "allow_retry": self.allow_retry,
                "title": self.title,
                "seq": seq,
                "now": now,
            }
        )

    def objects(self, request: Request) -> Response:
        model = request.query_params.get("model") or None
        state = request.query_params.get("state") or None
        text = request.query_params.get("q") or None
        if model is not None and not self.reader.has_model(model):
            return _error(404, f"no model named {model!r}")
        if state is not None and state not in STATES:
            return _error(400, f"unknown state {state!r}; expected one of {', '.join(STATES)}")
        now = self.clock()
        found = _guard(lambda: self.reader.summaries(now=now, model=model, state=state, text=text))
        if isinstance(found, Response):
            return found
        return JSONResponse({"objects": [s.as_json() for s in found], "now": now})

    def detail(self, request: Request) -> Response:
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
        if not self.allow_retry:
            return _error(403, "retry is disabled; start the UI with --allow-retry")
        if request.headers.get(WRITE_HEADER) != "1":
            return _error(403, f"a retry must come from the page (header {WRITE_HEADER})")
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
        return Response(self.graph_svg, media_type="image/svg+xml")

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


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


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
