"""The status page end to end in a real headless Chromium (Debian's, driven by Selenium).

Each test saves a screenshot of every state it checks under its tmp_path. Without
/usr/bin/chromium the tests skip, and fail under CI=true (`make test` installs it).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import IN_CI
from ui_support import require_dot, Hello, hello, serve  # noqa: F401 - fixture
from xsync.ui import Credentials

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
RED, GREEN = "rgb(208, 39, 29)", "rgb(46, 133, 64)"
ERROR_FILL = "rgb(246, 201, 197)"  # --fill-error, the light scheme
WAIT_SECONDS = 15


def require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        reason = f"not installed: {', '.join(missing)} (run tests/services/chromium.sh as root)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


class Page:
    """A Chromium tab on the status page, with the waits and screenshots the tests use."""

    def __init__(self, driver: Any, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def open(self, url: str) -> None:
        self.driver.get(url)

    def wait_for(self, condition: Callable[[], Any], what: str) -> Any:
        from selenium.common.exceptions import TimeoutException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def check(_: Any) -> Any:
            try:
                return condition()
            except WebDriverException:
                return False  # not there yet, or replaced by a live update meanwhile

        try:
            return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.1).until(check)
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError(f"timed out waiting for {what}") from None

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def row(self, key: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, f'#objects tr[data-key="{key}"]')

    def row_state(self, key: str) -> str | None:
        found = self.js(
            'const r = document.querySelector(`#objects tr[data-key="${arguments[0]}"]`);'
            "return r ? r.getAttribute('data-state') : null;",
            key,
        )
        return str(found) if found is not None else None

    def icon_color(self, key: str) -> str:
        return str(
            self.js(
                'const i = document.querySelector(`#objects tr[data-key="${arguments[0]}"] .icon`);'
                "return getComputedStyle(i).backgroundColor;",
                key,
            )
        )

    def text(self, selector: str) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, selector).text)

    def text_content(self, selector: str) -> str:
        return str(self.js("return document.querySelector(arguments[0]).textContent;", selector))

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[[], Page]]:
    """Opens Chromium tabs (each with a fresh profile); all are closed at the end."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Both paths are given, so Selenium Manager has nothing to look up; offline just in case.
    os.environ.setdefault("SE_OFFLINE", "true")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    drivers: list[Any] = []

    def open_page() -> Page:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}")
        driver = webdriver.Chrome(
            options=options, service=Service(executable_path=str(CHROMEDRIVER))
        )
        drivers.append(driver)
        return Page(driver, shots)

    yield open_page
    for driver in drivers:
        driver.quit()


def failing_greeting(hello: Hello, message: str, country: str = "france") -> int:
    """A greeting whose step fails with `message`, after a real engine pass."""
    world = hello.make("World", name="earth")
    france = hello.make("Country", name=country, world_id=world)
    bad = hello.make("Greeting", message=message, country_id=france, fail=True)
    hello.run_pass()
    assert hello.row("Greeting", bad)["backend_code"] == 2
    return bad


def test_failing_object_is_red_shows_its_error_and_turns_green_without_reload(
    hello: Hello, browser: Callable[[], Page]
) -> None:
    bad = failing_greeting(hello, "cannot reach the greeting service")
    key = f"Greeting:{bad}"
    server = serve(hello)
    try:
        page = browser()
        page.open(server.url)
        page.wait_for(lambda: page.row_state(key) == "error", "the failing greeting's row")
        assert page.icon_color(key) == RED
        assert "cannot reach the greeting service" in page.row(key).text
        assert "retry in" in page.row(key).text or "in " in page.text(
            f'#objects tr[data-key="{key}"] td.retry'
        )
        page.wait_for(
            lambda: page.js("return document.getElementById('live').dataset.live") == "live",
            "the live feed",
        )
        page.shot("1-error")

        page.row(key).click()
        page.wait_for(
            lambda: "cannot reach the greeting service" in page.text("#detail-status"),
            "the error message in the detail pane",
        )
        detail = page.text("#detail")
        assert "Failures\n1" in detail and "Country" in page.text("#waits-for")
        page.shot("2-error-detail")

        page.js("window.__sameDocument = 'yes';")
        hello.mark_fixed("Greeting", bad)
        page.wait_for(lambda: page.row_state(key) == "ok", "the row to turn green")
        assert page.icon_color(key) == GREEN
        assert page.js("return window.__sameDocument;") == "yes"  # no reload happened
        page.wait_for(lambda: page.text("#detail-status") == "OK", "the detail pane to follow")
        page.wait_for(
            lambda: page.text('#counts tr[data-model="Greeting"] td[data-state="error"]') == "0",
            "the counts to follow",
        )
        page.shot("3-fixed")
        assert sorted(p.name for p in page.shots.iterdir()) == [
            "1-error.png",
            "2-error-detail.png",
            "3-fixed.png",
        ]
    finally:
        server.stop()


SCRIPT_STATUS = "<script>window.__injected = 'status'</script>"
IMG_NAME = "<img src=x onerror=\"window.__injected='name'\">"
LIVE_STATUS = "<b>bold?</b><script>window.__injected = 'live'</script>"


def test_markup_in_names_and_messages_shows_as_text(
    hello: Hello, browser: Callable[[], Page]
) -> None:
    bad = failing_greeting(hello, SCRIPT_STATUS, country=IMG_NAME)
    key = f"Greeting:{bad}"
    server = serve(hello)
    try:
        page = browser()
        page.open(server.url)
        page.wait_for(lambda: page.row_state(key) == "error", "the failing greeting's row")
        assert page.text_content(f'#objects tr[data-key="{key}"] td.message') == SCRIPT_STATUS
        assert page.text_content('#objects tr[data-key="Country:2"] td.name') == IMG_NAME
        page.row(key).click()
        page.wait_for(lambda: SCRIPT_STATUS in page.text("#detail-status"), "the status as text")
        assert IMG_NAME in page.text("#waits-for")
        page.shot("1-script-as-text")

        page.js("window.__sameDocument = 'yes';")
        hello.set_status("Greeting", bad, LIVE_STATUS)
        page.wait_for(lambda: page.text("#detail-status") == LIVE_STATUS, "the live status as text")
        page.shot("2-live-markup-as-text")
        injected = page.js(
            "return document.querySelectorAll('#objects script, #objects img, #objects b,"
            " #detail script, #detail img, #detail b').length;"
        )
        assert injected == 0
        assert page.js("return window.__injected === undefined;") is True
        assert page.js("return window.__sameDocument;") == "yes"
    finally:
        server.stop()


def basic_header(user: str, password: str) -> dict[str, dict[str, str]]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"headers": {"Authorization": f"Basic {token}"}}


def test_login_refuses_wrong_credentials_and_admits_the_accessors(
    hello: Hello, browser: Callable[[], Page]
) -> None:
    bad = failing_greeting(hello, "only for logged-in eyes")
    key = f"Greeting:{bad}"
    # The server listens on loopback; the login is forced on, as it is beyond loopback.
    server = serve(hello, credentials=Credentials("admin@example.org", "s3cret"))
    try:
        host = server.url.removeprefix("http://")
        refused = browser()
        refused.open(f"http://admin%40example.org:wrong@{host}")
        # The browser is left at its login prompt (never answered headless): no page, no data.
        assert refused.js("return document.body.textContent;") == ""
        assert "only for logged-in eyes" not in refused.driver.page_source
        refused.shot("1-wrong-credentials")

        page = browser()
        # Sent on every request of the tab, the page's fetch() and EventSource included.
        page.driver.execute_cdp_cmd("Network.enable", {})
        page.driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", basic_header("admin@example.org", "s3cret")
        )
        page.open(server.url)
        page.wait_for(lambda: page.row_state(key) == "error", "the objects")
        page.wait_for(
            lambda: page.js("return document.getElementById('live').dataset.live") == "live",
            "the live feed through the login",
        )
        hello.mark_fixed("Greeting", bad)
        page.wait_for(lambda: page.row_state(key) == "ok", "the live update")
        page.shot("2-logged-in")

        page.driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", basic_header("admin@example.org", "wrong")
        )
        page.js(
            "const s = document.getElementById('filter-state'); s.value = 'ok';"
            "s.dispatchEvent(new Event('change'));"
        )
        page.wait_for(lambda: "login required" in page.text("#error"), "the refusal on the page")
        page.shot("3-wrong-credentials-on-the-page")
    finally:
        server.stop()


def test_service_graph_is_drawn_coloured_by_state_and_filters_on_a_click(
    hello: Hello, browser: Callable[[], Page]
) -> None:
    require_dot()
    failing_greeting(hello, "the graph shows me red")
    server = serve(hello)
    try:
        page = browser()
        page.open(server.url)
        page.wait_for(lambda: page.row_state("Greeting:3") == "error", "the list")
        page.js("document.getElementById('tab-graph').click();")
        node = '#graph g.node[id="model-Greeting"]'
        page.wait_for(lambda: page.js(f"return !!document.querySelector('{node}');"), "the graph")
        fill = page.js(
            f"return getComputedStyle(document.querySelector('{node} path, {node} polygon')).fill;"
        )
        assert fill == ERROR_FILL
        assert "1 error" in page.text_content(node)
        page.shot("graph")
        page.js(
            f"document.querySelector('{node}').dispatchEvent(new MouseEvent('click', {{bubbles: true}}));"
        )
        page.wait_for(
            lambda: page.js("return document.getElementById('filter-model').value;") == "Greeting",
            "the filter",
        )
        page.wait_for(lambda: page.row_state("Greeting:3") == "error", "the filtered list")
        assert page.js("return document.querySelectorAll('#objects tr[data-key]').length;") == 1
    finally:
        server.stop()
