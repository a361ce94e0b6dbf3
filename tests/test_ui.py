"""The status UI at the server level: state rules, the login rule, the graph picture, the JSON
API over a real SQLite store synced by the real engine, live events over a real uvicorn
server on loopback, and the `xsync ui` command.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from ui_support import (
    require_dot,
    HELLO,
    MODELS,
    RETRY_SECONDS,
    Hello,
    hello,
    serve,
)  # noqa: F401 - fixture
from xsync import backend_state as bs
from xsync.backend_state import sync_register
from xsync.backoff import RetryBook
from xsync.executor import Outcome
from xsync.planner import LinkFields
from xsync.status import collect_status
from xsync.ui import Credentials, login_required
from xsync.ui.auth import parse_basic
from xsync.ui.graph import ServiceGraph
from xsync.ui.serve_cli import parse_listen, run_ui

SVG = "{http://www.w3.org/2000/svg}"


# --- who must log in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "required"),
    [
        ("127.0.0.1", False),
        ("127.10.20.30", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", True),
        ("::", True),
        ("", True),
        ("10.1.2.3", True),
        ("192.168.0.7", True),
        ("fe80::1", True),
        ("ui.example.org", True),
        ("::ffff:10.0.0.1", True),
    ],
)
def test_login_is_required_beyond_loopback(host: str, required: bool) -> None:
    assert login_required(host) is required


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_are_read_and_compared_exactly() -> None:
    creds = Credentials("admin@example.org", "pa:ss")
    assert parse_basic(basic("admin@example.org", "pa:ss")) == ("admin@example.org", "pa:ss")
    assert creds.accepts(basic("admin@example.org", "pa:ss"))
    for wrong in [
        basic("admin@example.org", "pa:s"),
        basic("admin@example.org", "pa:ss "),
        basic("Admin@example.org", "pa:ss"),
        "Bearer abc",
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "",
        None,
    ]:
        assert not creds.accepts(wrong), wrong


# --- the dependency graph picture -------------------------------------------------------------


def graph_nodes(svg: str) -> dict[str, tuple[str, list[str]]]:
    """Per model drawn: its classes and its label lines, read from Graphviz's SVG."""
    root = ET.fromstring(svg)
    return {
        (g.get("id") or "").removeprefix("model-"): (
            g.get("class") or "",
            [t.text or "" for t in g.iter(f"{SVG}text")],
        )
        for g in root.iter(f"{SVG}g")
        if (g.get("id") or "").startswith("model-")
    }


def graph_edge_labels(svg: str) -> set[str]:
    root = ET.fromstring(svg)
    return {
        t.text or ""
        for g in root.iter(f"{SVG}g")
        if "edge" in (g.get("class") or "").split()
        for t in g.iter(f"{SVG}text")
    }


def test_graph_shows_the_service_and_its_neighbours_coloured_by_worst_state() -> None:
    require_dot()
    deps = {
        "Slice": [["Site", "site", "slices"]],
        "Site": [],
        "Image": [],
        "Svc": [["Slice", "owner", "svcs"]],
        "SvcInstance": [["Svc", "service", "instances"]],
    }
    graph = ServiceGraph(deps, ["Svc", "SvcInstance"], shown=list(deps))
    counts = {
        "Svc": {"ok": 2, "pending": 0, "deferred": 0, "held": 1, "backing_off": 0, "error": 0},
        "SvcInstance": {
            "ok": 5,
            "pending": 0,
            "deferred": 0,
            "held": 0,
            "backing_off": 0,
            "error": 3,
        },
        "Slice": {"ok": 1, "pending": 0, "deferred": 0, "held": 0, "backing_off": 0, "error": 0},
    }
    svg = graph.render(counts)
    nodes = graph_nodes(svg)
    # Its own models and their direct neighbours; Site (two links away) and Image are collapsed.
    assert set(nodes) == {"Svc", "SvcInstance", "Slice"}
    assert "state-error" in nodes["SvcInstance"][0].split()
    assert "state-held" in nodes["Svc"][0].split()
    assert "state-ok" in nodes["Slice"][0].split()
    assert nodes["SvcInstance"][1] == ["SvcInstance", "3 error, 5 ok"]
    assert graph_edge_labels(svg) == {"owner", "service"}
    assert "2 more models" in svg
    assert graph.render(counts) is svg  # unchanged counts: no second run of dot


def test_graph_escapes_names_from_a_dependency_file() -> None:
    require_dot()
    deps = {'<b onclick="x()">': [["A&B", "<script>f</script>", "r"]], "A&B": []}
    text = ServiceGraph(deps, ['<b onclick="x()">'], shown=list(deps)).render({})
    root = ET.fromstring(text)  # well-formed: nothing broke out of its element or attribute
    assert "<script>" not in text and "<b " not in text
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>f</script>" in labels and "A&B" in labels


def test_graph_survives_cycles_and_self_links() -> None:
    require_dot()
    deps = {"A": [["B", "b", "as"], ["A", "parent", "children"]], "B": [["A", "a", "bs"]]}
    svg = ServiceGraph(deps, ["A"], shown=["A", "B"]).render({})
    assert graph_edge_labels(svg) == {"a", "b", "parent"}
    assert {c for c, _ in graph_nodes(svg).values()} == {
        "node model own state-none", "node model neighbour state-none"
    }  # fmt: skip


# --- the JSON API ---------------------------------------------------------------------------------


@pytest.fixture
def world(hello: Hello) -> dict[str, int]:
    """One greeting that fails, one country deferred, the rest in sync, after a real pass."""
    earth = hello.make("World", name="earth")
    france = hello.make("Country", name="france", world_id=earth)
    later = hello.make("Country", name="later-land", world_id=earth)
    bad = hello.make("Greeting", message="bonjour", country_id=france, fail=True)
    good = hello.make("Greeting", message="salut", country_id=france)
    hello.run_pass()
    return {"earth": earth, "france": france, "later": later, "bad": bad, "good": good}


@contextmanager
def client(hello: Hello, **options: Any) -> Iterator[httpx.Client]:
    """An HTTP client for the UI of `hello`, served for real on a loopback port."""
    server = serve(hello, **options)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield http
    finally:
        server.stop()


def page_headers(ui: httpx.Client) -> dict[str, str]:
    """What the page's own fetch() sends with a write: its origin and the page header."""
    return {"Origin": str(ui.base_url).rstrip("/"), "X-XSync-UI": "1"}


def test_models_count_objects_per_state(hello: Hello, world: dict[str, int]) -> None:
    with client(hello) as ui:
        data = ui.get("/api/models").json()
    counts = {m["name"]: m["counts"] for m in data["models"]}
    assert counts["World"] == {
        "ok": 1, "pending": 0, "deferred": 0, "held": 0, "backing_off": 0, "error": 0
    }  # fmt: skip
    assert counts["Country"]["ok"] == 1 and counts["Country"]["deferred"] == 1
    assert counts["Greeting"]["ok"] == 1 and counts["Greeting"]["error"] == 1
    assert data["allow_retry"] is False
    assert data["seq"] > 0


def test_objects_filter_by_model_state_and_name(hello: Hello, world: dict[str, int]) -> None:
    def keys(**params: str) -> list[tuple[str, int]]:
        with client(hello) as ui:
            response = ui.get("/api/objects", params=params)
        assert response.status_code == 200, response.text
        return [(o["model"], o["id"]) for o in response.json()["objects"]]

    assert keys(model="Country") == [("Country", world["france"]), ("Country", world["later"])]
    assert keys(state="error") == [("Greeting", world["bad"])]
    assert keys(state="deferred") == [("Country", world["later"])]
    assert keys(q="FRAN") == [("Country", world["france"])]
    assert keys(q="bonjour") == [("Greeting", world["bad"])]  # no name field: the first text
    assert keys(q=str(world["earth"]), model="World") == [("World", world["earth"])]
    assert keys(model="World", state="error") == []


def test_failing_object_shows_error_with_message_and_backoff(
    hello: Hello, world: dict[str, int]
) -> None:
    with client(hello) as ui:
        listed = ui.get("/api/objects", params={"model": "Greeting", "state": "error"}).json()
        detail = ui.get(f"/api/object/Greeting/{world['bad']}").json()
    [summary] = listed["objects"]
    assert summary["message"] == "bonjour"
    assert summary["next_retry"] == pytest.approx(detail["backoff"]["last_failure"] + RETRY_SECONDS)
    assert detail["object"]["state"] == "error"
    assert detail["backend_status"] == "Provisioning in progress // bonjour"
    assert detail["backend_code"] == 2
    assert detail["backoff"]["failures"] == 1
    assert detail["backoff"]["next_run"] == summary["next_retry"]
    assert detail["policy"] == {
        "status": "Policy in process",
        "code": 0,
        "policed": None,
        "pending": True,
    }
    assert [(o["model"], o["id"], o["state"]) for o in detail["waits_for"]] == [
        ("Country", world["france"], "ok")
    ]
    assert ["fail", "true"] in detail["fields"]


def test_detail_lists_what_waits_for_an_object(hello: Hello, world: dict[str, int]) -> None:
    with client(hello) as ui:
        detail = ui.get(f"/api/object/Country/{world['france']}").json()
    assert [(o["model"], o["id"]) for o in detail["waits_for"]] == [("World", world["earth"])]
    assert sorted((o["model"], o["id"], o["state"]) for o in detail["waited_by"]) == [
        ("Greeting", world["bad"], "error"),
        ("Greeting", world["good"], "ok"),
    ]
    assert detail["waited_by_total"] == 2


def test_detail_lists_at_most_a_hundred_waiting_objects_and_counts_them_all(hello: Hello) -> None:
    earth = hello.make("World", name="earth")
    france = hello.make("Country", name="france", world_id=earth)
    for i in range(105):
        hello.make("Greeting", message=f"g{i}", country_id=france)
    with client(hello) as ui:
        detail = ui.get(f"/api/object/Country/{france}").json()
    assert len(detail["waited_by"]) == 100 and detail["waited_by_total"] == 105
    assert {o["state"] for o in detail["waited_by"]} == {"pending"}


def test_bad_requests_name_the_problem(hello: Hello, world: dict[str, int]) -> None:
    with client(hello) as ui:
        assert ui.get("/api/objects", params={"state": "green"}).status_code == 400
        missing_model = ui.get("/api/objects", params={"model": "Planet"})
        missing_object = ui.get("/api/object/Greeting/999")
        assert ui.get("/api/object/Greeting/abc").status_code == 404
    assert missing_model.status_code == 404 and "Planet" in missing_model.json()["error"]
    assert missing_object.status_code == 404
    assert missing_object.json()["error"] == "no Greeting with id 999"


def test_retry_is_refused_unless_enabled(hello: Hello, world: dict[str, int]) -> None:
    before = hello.row("Greeting", world["bad"])
    with client(hello) as ui:
        response = ui.post(f"/api/object/Greeting/{world['bad']}/retry", headers=page_headers(ui))
        assert ui.get(f"/api/object/Greeting/{world['bad']}/retry").status_code == 405
    assert response.status_code == 403 and "--allow-retry" in response.json()["error"]
    assert hello.row("Greeting", world["bad"]) == before


def test_retry_needs_the_page_header_against_cross_site_posts(
    hello: Hello, world: dict[str, int]
) -> None:
    before = hello.row("Greeting", world["bad"])
    with client(hello, allow_retry=True) as ui:
        response = ui.post(
            f"/api/object/Greeting/{world['bad']}/retry",
            headers={"Origin": page_headers(ui)["Origin"]},
        )
    assert response.status_code == 403
    assert hello.row("Greeting", world["bad"]) == before


def test_retry_now_clears_the_backoff_so_the_next_pass_takes_the_object(
    hello: Hello, world: dict[str, int]
) -> None:
    bad = world["bad"]
    assert hello.run_pass().outcomes[("Greeting", bad)] is Outcome.SKIPPED  # backing off
    before = hello.row("Greeting", bad)
    with client(hello, allow_retry=True) as ui:
        response = ui.post(f"/api/object/Greeting/{bad}/retry", headers=page_headers(ui))
    assert response.status_code == 200, response.text
    assert response.json()["object"]["next_retry"] is None
    after = hello.row("Greeting", bad)
    register = sync_register(after["backend_register"])
    assert register.next_run == 0 and register.failures == 1  # only the wait is cleared
    assert after["updated"] == before["updated"]  # a synchronizer write: not a user change
    assert hello.run_pass().outcomes[("Greeting", bad)] is Outcome.FAILED  # tried again
    assert sync_register(hello.row("Greeting", bad)["backend_register"]).failures == 2


def test_login_required_refuses_missing_and_wrong_credentials(
    hello: Hello, world: dict[str, int]
) -> None:
    creds = Credentials("admin@example.org", "letmein")
    with client(hello, credentials=creds) as ui:
        for path in ["/", "/api/models", "/api/objects", "/static/app.js", "/api/events"]:
            refused = ui.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
            assert (
                ui.get(
                    path, headers={"Authorization": basic("admin@example.org", "nope")}
                ).status_code
                == 401
            )
        allowed = ui.get(
            "/api/models", headers={"Authorization": basic("admin@example.org", "letmein")}
        )
    assert allowed.status_code == 200
    assert "bonjour" not in refused.text


def test_every_response_forbids_inline_script(hello: Hello) -> None:
    with client(hello) as ui:
        for path in ["/", "/api/models", "/api/graph.svg", "/static/app.js"]:
            response = ui.get(path)
            assert response.status_code == 200, path
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy
            assert response.headers["x-content-type-options"] == "nosniff"
        assert ui.get("/api/graph.svg").headers["content-type"].startswith("image/svg+xml")


def test_page_script_writes_data_as_text_only() -> None:
    # The escaping rule of the page, checked where it lives: no HTML parsing of strings.
    script = (Path(__file__).parent.parent / "runtime/xsync/ui/static/app.js").read_text()
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]:
        assert sink not in script, sink


# --- paging, sorting and groups ---------------------------------------------------------------


def test_objects_come_a_page_at_a_time_with_the_total(hello: Hello) -> None:
    earth = hello.make("World", name="earth")
    france = hello.make("Country", name="france", world_id=earth)
    ids = [
        int(r["id"])
        for r in hello.store.create_many(
            "Greeting", [{"message": f"hi {i:02}", "country_id": france} for i in range(25)]
        )
    ]
    with client(hello) as ui:

        def page(**params: Any) -> dict[str, Any]:
            response = ui.get("/api/objects", params=params)
            assert response.status_code == 200, response.text
            return dict(response.json())

        first = page(model="Greeting", limit=10)
        rest = page(model="Greeting", limit=10, offset=10)
        last = page(model="Greeting", limit=10, offset=20)
        assert first["total"] == rest["total"] == last["total"] == 25
        assert [o["id"] for o in first["objects"] + rest["objects"] + last["objects"]] == ids
        assert len(last["objects"]) == 5 and last["offset"] == 20
        newest = page(model="Greeting", sort="id", order="desc", limit=3)
        assert [o["id"] for o in newest["objects"]] == ids[::-1][:3]
        by_name = page(model="Greeting", sort="name", order="desc", limit=2)
        assert [o["name"] for o in by_name["objects"]] == ["hi 24", "hi 23"]
        # All models: the service's own in schema order, then by id.
        assert [o["model"] for o in page(limit=3)["objects"]] == ["World", "Country", "Greeting"]
        assert page(q="hi 1", model="Greeting")["total"] == 10
        assert page(find=f"Greeting:{ids[7]}", model="Greeting", limit=0)["found_at"] == 7
        for bad in ({"limit": "5000"}, {"offset": "-1"}, {"sort": "colour"}, {"order": "up"}):
            response = ui.get("/api/objects", params=bad)
            assert response.status_code == 400, bad
            assert list(response.json()) == ["error"]


def test_groups_are_the_ones_xsync_status_prints(hello: Hello) -> None:
    earth = hello.make("World", name="earth")
    france = hello.make("Country", name="france", world_id=earth)
    later = hello.make("Country", name="later-land", world_id=earth)
    for i in range(4):
        hello.make("Greeting", message="cluster is full", country_id=france, fail=True)
    hello.make("Greeting", message="disk on fire", country_id=france, fail=True)
    for i in range(3):
        hello.make("Greeting", message=f"waiting {i}", country_id=later)
    hello.run_pass()
    hello.set_status("Country", later, "border closed")  # failing: its greetings wait for it
    report = collect_status(
        hello.store, MODELS, LinkFields.from_model_deps(hello.deps), now=time.time()
    )
    with client(hello) as ui:
        groups = ui.get("/api/groups").json()
    failing = [(g["model"], g["message"], g["count"]) for g in groups["failing"]]
    assert failing == [
        ("Greeting", "cluster is full", 4),
        ("Country", "border closed", 1),
        ("Greeting", "disk on fire", 1),
    ]
    assert failing == [(g.model, g.message, len(g.ids)) for g in report.failing]
    assert groups["failing"][0]["ids"] == report.failing[0].ids
    held = [
        (g["model"], g["count"], g["waits_for_model"], g["waits_for_state"], g["roots"])
        for g in groups["held_back"]
    ]
    assert held == [("Greeting", 3, "Country", "error", [later])]
    assert held == [
        (g.model, len(g.held), g.root_model, g.root_state.value, sorted(g.roots))
        for g in report.held_back
    ]


def test_retry_a_group_clears_the_backoff_of_each_of_its_objects(hello: Hello) -> None:
    earth = hello.make("World", name="earth")
    france = hello.make("Country", name="france", world_id=earth)
    full = [hello.make("Greeting", message="full", country_id=france, fail=True) for _ in range(3)]
    other = hello.make("Greeting", message="other", country_id=france, fail=True)
    hello.run_pass()
    with client(hello) as ui:
        where = {"model": "Greeting", "message": "full"}
        assert (
            ui.post("/api/groups/retry", params=where, headers=page_headers(ui)).status_code == 403
        )
    with client(hello, allow_retry=True) as ui:
        refused = ui.post(
            "/api/groups/retry", params=where, headers={"Origin": page_headers(ui)["Origin"]}
        )
        assert refused.status_code == 403
        response = ui.post("/api/groups/retry", params=where, headers=page_headers(ui))
        assert response.status_code == 200, response.text
        assert response.json()["retried"] == 3
        missing = ui.post(
            "/api/groups/retry",
            params={"model": "Greeting", "message": "nope"},
            headers=page_headers(ui),
        )
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
    for id in full:
        assert sync_register(hello.row("Greeting", id)["backend_register"]).next_run == 0
    assert sync_register(hello.row("Greeting", other)["backend_register"]).next_run > 0


def test_retry_a_held_back_group_retries_what_it_waits_for(hello: Hello) -> None:
    earth = hello.make("World", name="earth")
    closed = hello.make("Country", name="closed", world_id=earth)
    for n in range(3):
        hello.make("Greeting", message=f"waiting {n}", country_id=closed)
    failure = bs.failed(
        status="", register="{}", message="border closed", retries=RetryBook(), now=time.time()
    )
    hello.store.update("Country", closed, failure, actor="synchronizer")
    assert sync_register(hello.row("Country", closed)["backend_register"]).next_run > 0
    with client(hello, allow_retry=True) as ui:
        [group] = ui.get("/api/groups").json()["held_back"]
        assert (group["model"], group["count"], group["roots"]) == ("Greeting", 3, [closed])
        where = {"model": "Greeting", "waits_for": "Country", "state": "error"}
        response = ui.post("/api/groups/retry", params=where, headers=page_headers(ui))
        assert response.status_code == 200, response.text
        assert response.json() == {"retried": 1, "model": "Country"}
        wrong = ui.post(
            "/api/groups/retry", params={**where, "state": "deferred"}, headers=page_headers(ui)
        )
        assert wrong.status_code == 404 and "deferred Country" in wrong.json()["error"]
    assert sync_register(hello.row("Country", closed)["backend_register"]).next_run == 0


# --- live events over a real server ---------------------------------------------------------


@pytest.fixture
def live(hello: Hello, world: dict[str, int]) -> Iterator[str]:
    server = serve(hello)
    yield server.url
    server.stop()


class Events:
    """Reads server-sent events from a streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> tuple[str, dict[str, Any], str | None]:
        event, data, id = "message", "", None
        for line in self.lines:
            if not line:
                if data:
                    return event, json.loads(data), id
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data += value
            elif name == "id":
                id = value
        raise AssertionError("the event stream ended")

    def until(self, event: str) -> dict[str, Any]:
        while True:
            name, data, _ = self.next()
            if name == event:
                return data


def test_events_push_each_change_with_the_objects_new_state(
    hello: Hello, world: dict[str, int], live: str
) -> None:
    seq = httpx.get(live + "api/models").json()["seq"]
    with httpx.stream("GET", live + "api/events", params={"after": seq}, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        assert events.until("ready") == {"seq": seq}
        hello.mark_fixed("Greeting", world["bad"])
        change = events.until("change")
    assert (change["model"], change["id"], change["kind"]) == ("Greeting", world["bad"], "update")
    assert change["object"]["state"] == "ok"
    assert change["seq"] > seq


def test_events_replay_what_a_page_missed_and_report_removals(
    hello: Hello, world: dict[str, int], live: str
) -> None:
    seq = httpx.get(live + "api/models").json()["seq"]
    hello.set_status("Country", world["later"], "first // second")  # while no page listens
    hello.store.purge("Greeting", world["good"])
    with httpx.stream("GET", live + "api/events", params={"after": seq}, timeout=10) as response:
        events = Events(response)
        seen = {}
        while True:
            name, data, id = events.next()
            if name == "ready":
                break
            seen[(data["model"], data["id"])] = (data["object"], id)
    later, _ = seen[("Country", world["later"])]
    assert later["state"] == "error" and later["message"] == "second"
    gone, id = seen[("Greeting", world["good"])]
    assert gone is None and id is not None and int(id) > seq
    # On reconnection the browser sends Last-Event-ID; nothing before it comes again.
    latest = max(int(i) for _, i in seen.values() if i is not None)
    headers = {"Last-Event-ID": str(latest)}
    with httpx.stream("GET", live + "api/events", headers=headers, timeout=10) as response:
        assert Events(response).next()[0] == "ready"


def test_stopping_the_server_ends_open_event_streams(hello: Hello) -> None:
    server = serve(hello)
    with httpx.stream("GET", server.url + "api/events", timeout=10) as response:
        events = Events(response)
        events.until("ready")
        started = time.monotonic()
        server.stop()
        with pytest.raises((AssertionError, httpx.HTTPError)):
            events.next()
    assert time.monotonic() - started < 5


# --- the command ------------------------------------------------------------------------------


def write_config(tmp_path: Path, **extra: Any) -> Path:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "hello.xproto").write_text(HELLO.read_text())
    config = {"name": "hello", "models_dir": "models", "store": "sqlite:///hello.db", **extra}
    path = tmp_path / "sync.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:9", ("::1", 9)), (":80", ("0.0.0.0", 80))],
)
def test_listen_addresses(text: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(text) == parsed


def test_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ui([str(tmp_path / "missing.yaml")]) == 1
    assert capsys.readouterr().err.strip() == f"xsync ui: {tmp_path / 'missing.yaml'}: no such file"
    config = write_config(tmp_path)
    assert run_ui([str(config), "--listen", "0.0.0.0:0"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "beyond loopback" in err and "requires a login" in err and "accessor" in err
    assert run_ui([str(config), "--listen", "nonsense"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert run_ui([str(config), "--listen", "127.0.0.1:99999"]) == 2


def test_command_reports_an_address_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hello: Hello
) -> None:
    server = serve(hello)
    try:
        port = server.sock.getsockname()[1]
        assert run_ui([str(write_config(tmp_path)), "--listen", f"127.0.0.1:{port}"]) == 1
    finally:
        server.stop()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xsync ui: --listen: cannot listen on 127.0.0.1:{port}")


def test_xsync_ui_serves_the_config_until_interrupted(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "xsync.cli", "ui", str(config), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("xsync ui: serving http://127.0.0.1:"), line
        url = line.split()[3]
        assert "(read-only)" in line
        data = httpx.get(url + "api/models", timeout=10).json()
        assert data["title"] == "xsync status: hello"
        # hello's own models first, then the built-in core models read for hello.xproto.
        assert [m["name"] for m in data["models"]][: len(MODELS)] == MODELS
        assert [m["service"] for m in data["models"]][: len(MODELS) + 1] == [
            True, True, True, False
        ]  # fmt: skip
        with httpx.stream("GET", url + "api/events", timeout=10) as response:
            Events(response).until("ready")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        rest = process.stderr.read()
        assert "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
