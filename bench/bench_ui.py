"""The status page over many objects: what a request costs, and what the browser sees.

Run: `.venv/bin/python bench/bench_ui.py [--objects N] [--repeat R] [--no-browser]`.
A SQLite file gets N objects of the hello models (`ui_support.build_scale_store`: most in
sync, two groups of failures, a failing country and the greetings it holds back), written
with `create_many`. The UI is served on loopback as `xsync ui` serves it.

The reference, in the same run, is what the page cost before it was paged: every object
read from the store and classified on each request (`store.query` + `summarize` for every
shown model). Then each API call the page makes is timed (median of R), and its ratio to
the reference (how many times faster) printed. With Chromium installed (tests/services/chromium.sh), the first paint
(navigation to the first rows drawn) and a search (typing to the list redrawn, 200 ms of
typing pause included) are timed in headless Chromium at 1280 x 900.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ui_support import FULL_MESSAGE, HELLO, Hello, build_scale_store  # noqa: E402

from xprotogen.loader import load_schema  # noqa: E402
from xsync.store import open_store  # noqa: E402
from xsync.ui import UiServer, create_app  # noqa: E402
from xsync.ui.serve_cli import bind  # noqa: E402
from xsync.ui.state import summarize  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def median_ms(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        schema = load_schema([HELLO], core="auto")
        store = open_store(f"sqlite:///{Path(tmp) / 'ui.db'}", schema)
        started = time.perf_counter()
        world = build_scale_store(store, args.objects)
        print(f"store: {args.objects:,} objects written in {time.perf_counter() - started:.1f} s")
        shown = set(store.model_names())
        models = [m.name for m in schema.models if m.name in shown]
        app = create_app(store, models, deps=Hello(store, schema).deps, title="bench")
        server = UiServer(app, bind("127.0.0.1", 0))
        started = time.perf_counter()
        server.start(timeout=60)
        app.state.index.wait_ready(600)
        print(
            f"UI: every object read and classified at start-up in {time.perf_counter() - started:.1f} s"
        )
        try:
            reference = median_ms(lambda: read_everything(store, models), max(1, args.repeat // 2))
            print(f"reference: every object read and classified per request: {reference:.0f} ms")
            print(f"{'call':<44} {'median ms':>10} {'reference / call':>17}")
            with httpx.Client(base_url=server.url, timeout=60) as http:
                closed = world.closed_country
                calls = {
                    "GET /api/models (counts)": "/api/models",
                    "GET /api/objects (first page)": "/api/objects?limit=100",
                    "GET /api/objects (page at row 90,000)": "/api/objects?offset=90000&limit=100",
                    "GET /api/objects?q=<message> (search)": f"/api/objects?q={FULL_MESSAGE}&limit=100",
                    "GET /api/objects?state=error&sort=name": "/api/objects?state=error&sort=name&limit=100",
                    "GET /api/groups": "/api/groups",
                    "GET /api/graph.svg": "/api/graph.svg",
                    f"GET /api/object/Country/{closed} (detail)": f"/api/object/Country/{closed}",
                }
                for name, url in calls.items():
                    http.get(url).raise_for_status()  # the first answer of a view fills its cache
                    ms = median_ms(lambda: http.get(url).raise_for_status(), args.repeat)
                    print(f"{name:<44} {ms:>10.1f} {reference / ms:>16.0f}x")
                # A search never seen: no cached view.
                fresh = iter(range(10**6))
                ms = median_ms(
                    lambda: http.get(f"/api/objects?q=greeting 0{next(fresh):04}&limit=100"),
                    args.repeat,
                )
                print(
                    f"{'GET /api/objects?q=<new text> (uncached)':<44} {ms:>10.1f} {reference / ms:>16.0f}x"
                )
            if not args.no_browser and CHROMIUM.exists() and CHROMEDRIVER.exists():
                browser(server.url, tmp, args.repeat, world.full)
        finally:
            server.stop()
            store.close()
    return 0


def read_everything(store: Any, models: list[str]) -> int:
    now = time.time()
    return sum(
        len([summarize(m, r, now=now) for r in store.query(m, deleted=None)]) for m in models
    )


def browser(url: str, tmp: str, repeat: int, matching: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", f"--user-data-dir={tmp}/profile"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_window_size(1280, 900)
    wait = WebDriverWait(driver, 60, poll_frequency=0.01)
    rows = "return document.querySelectorAll('#objects tr[data-key]').length"
    try:
        paints, searches = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            driver.get(url)
            wait.until(lambda d: d.execute_script(rows) > 0)
            paints.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            driver.execute_script(
                "const q = document.getElementById('filter-q'); q.value = arguments[0];"
                "q.dispatchEvent(new Event('input'));",
                FULL_MESSAGE,
            )
            wait.until(
                lambda d: d.execute_script(
                    "return document.getElementById('list-summary').textContent"
                ).startswith(f"{matching} objects match")
            )
            searches.append((time.perf_counter() - started) * 1000)
        print(f"browser first paint (navigation to rows drawn): {statistics.median(paints):.0f} ms")
        print(
            f"browser search (typing to rows redrawn, 200 ms pause included): {statistics.median(searches):.0f} ms"
        )
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
