"""The UI's doors, served for real on loopback: Host names, Origin on writes, bad ids as 404,
and slowed password guessing."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator

import httpx
import pytest

from ui_support import MODELS, Hello, hello  # noqa: F401 - fixture
from xsync.login_throttle import LoginThrottle
from xsync.ui import Credentials
from xsync.ui.app import create_app
from xsync.ui.doors import allowed_hosts, host_of
from xsync.ui.serve_cli import UiServer, bind

CREDS = Credentials("admin@example.org", "letmein")


@contextmanager
def ui(hello: Hello, **options: Any) -> Iterator[tuple[UiServer, httpx.Client]]:  # noqa: F811
    options.setdefault("allow_retry", True)
    app = create_app(hello.store, MODELS, deps=hello.deps, poll_seconds=0.2, **options)
    server = UiServer(app, bind("127.0.0.1", 0))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield server, http
    finally:
        server.stop()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_allowed_hosts_are_the_listen_address_localhost_and_added_names() -> None:
    assert allowed_hosts("0.0.0.0") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts("[::1]", ["Sync.Example."]) == {
        "localhost",
        "127.0.0.1",
        "::1",
        "sync.example",
    }
    assert "10.1.2.3" in allowed_hosts("10.1.2.3")
    assert [host_of(h) for h in ("Name:80", "[::1]:8080", "[::1]", "name")] == [
        "name",
        "::1",
        "::1",
        "name",
    ]


def test_only_allowed_host_names_are_answered(hello: Hello) -> None:  # noqa: F811
    hosts = allowed_hosts("127.0.0.1", ["sync.example"])
    with ui(hello, hosts=hosts) as (server, http):
        port = server.sock.getsockname()[1]
        for host in [f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", f"sync.example:{port}"]:
            assert http.get("/api/models", headers={"Host": host}).status_code == 200, host
        for host in ["evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", ""]:
            refused = http.get("/api/models", headers={"Host": host})
            assert refused.status_code == 400, host
            assert "Host" in refused.json()["error"]
            assert refused.headers["x-content-type-options"] == "nosniff"


def test_a_write_needs_the_ui_own_origin(hello: Hello) -> None:  # noqa: F811
    earth = hello.make("World", name="earth")
    before = hello.row("World", earth)
    with ui(hello) as (server, http):
        own = str(http.base_url).rstrip("/")
        path = f"/api/object/World/{earth}/retry"
        for origin in [None, "null", "http://evil.example", own.replace("127.0.0.1", "localhost")]:
            headers = {"X-XSync-UI": "1"} | ({"Origin": origin} if origin else {})
            refused = http.post(path, headers=headers)
            assert refused.status_code == 403, origin
            assert "Origin" in refused.json()["error"]
        assert hello.row("World", earth) == before
        assert http.post(path, headers={"X-XSync-UI": "1", "Origin": own}).status_code == 200


def test_every_bad_id_is_a_404(hello: Hello) -> None:  # noqa: F811
    earth = hello.make("World", name="earth")
    with ui(hello) as (server, http):
        own = {"X-XSync-UI": "1", "Origin": str(http.base_url).rstrip("/")}
        for path in [
            f"/api/object/World/{10**23}",
            f"/api/object/World/{2**31}",
            "/api/object/World/0",
            "/api/object/World/-1",
            "/api/object/World/abc",
            "/api/object/World/1e3",
            f"/api/object/Nowhere/{earth}",
        ]:
            response = http.get(path)
            assert response.status_code == 404, path
            assert "Traceback" not in response.text
        for path in [f"/api/object/World/{10**23}/retry", f"/api/object/Nowhere/{earth}/retry"]:
            assert http.post(path, headers=own).status_code == 404, path
        assert http.get(f"/api/object/World/{earth}").status_code == 200


def test_failed_logins_are_slowed_per_peer_and_a_success_resets(hello: Hello) -> None:  # noqa: F811
    base = 0.05
    throttle = LoginThrottle(base=base, cap=1.0, max_wait=1.5)
    with ui(hello, credentials=CREDS, throttle=throttle) as (server, http):
        wrong = {"Authorization": basic(CREDS.username, "guess")}
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert http.get("/api/models", headers=wrong).status_code == 401
            times.append(time.perf_counter() - started)
        for k in range(1, 5):
            assert times[k] >= 0.8 * base * 2 ** (k - 1), (k, times)
        # Another peer, logging in right, is not slowed by this one's guessing.
        other = httpx.Client(
            base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2")
        )
        with other:
            started = time.perf_counter()
            right = {"Authorization": basic(CREDS.username, CREDS.password)}
            assert other.get("/api/models", headers=right).status_code == 200
            assert time.perf_counter() - started < 0.8  # a throttled login would wait 0.8 s (the account's turn)
        # Guesses at once wait one turn each; those booked past max_wait get 429 at once.
        with ThreadPoolExecutor(6) as pool:
            codes = list(
                pool.map(lambda _: http.get("/api/models", headers=wrong).status_code, range(6))
            )
        assert sorted(codes)[0] == 401 and codes.count(429) >= 3, codes
        # The right password, after its turn, resets the count.
        time.sleep(1.5)
        assert http.get("/api/models", headers=right).status_code == 200
        started = time.perf_counter()
        assert http.get("/api/models", headers=wrong).status_code == 401
        assert time.perf_counter() - started < 0.8  # not the 1 s (cap) of a throttled key


@pytest.mark.parametrize("password", ["", "x" * 10_000, "pässwörd", "a:b:c"])
def test_odd_passwords_are_plain_401s(hello: Hello, password: str) -> None:  # noqa: F811
    throttle = LoginThrottle(base=0.001, cap=0.01)
    with ui(hello, credentials=CREDS, throttle=throttle) as (server, http):
        response = http.get("/api/models", headers={"Authorization": basic("admin", password)})
        assert response.status_code == 401
        assert password not in response.text or not password
