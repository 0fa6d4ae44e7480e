"""Real-browser fixtures: the app served on a free local port, Debian's Chromium driven by
Playwright (sync API), and a folder for screenshots.

The server runs in a background thread of the test process against the same test database
as the `app` fixture (SQLite by default, PostgreSQL when `DATABASE_URL` says so). Playwright's
own browser download is not used: the tests need `/usr/bin/chromium` (`apt-get install
chromium`) and fail, not skip, without it.

Notifications: the `smtp` and `gateway` fixtures (tests/outboxes.py, available everywhere)
point the `app` config at a real local SMTP server / HTTP gateway, and the live server serves
that same `app`, so what it sends arrives there. The scheduler does not run in tests:
`run_outbox()` runs the outbox job once; `smtp.wait_for(n)` / `gateway.wait_for(n)` await
messages sent from another thread.

Clock: the pages' scenes are built on the real clock ("a ticket issued five minutes ago") and
the live server reads the same process clock; near a local midnight of the test branches the
whole module runs on a ticking clock moved back clear of it (`steady_day`, tests/clock.py).
"""

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

from queue_app.branches.models import WEEKDAYS
from queue_app.extensions import db
from queue_app.i18n import ensure_compiled

from .. import factories
from ..clock import steady_clock
from ..conftest import empty_database
from ..outboxes import deliver_outbox

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
COUNTER_PC = {"width": 1366, "height": 768}
SIZES = {"phone": PHONE, "pc": COUNTER_PC}

ALWAYS_OPEN = {day: [["00:00", "23:59:59.999999"]] for day in WEEKDAYS}
NEVER_OPEN: dict = {}


@pytest.fixture(scope="module", autouse=True)
def steady_day():
    """The module's scenes and the live server in one business day (tests/clock.py)."""
    with steady_clock() as now:
        yield now


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # the test output stays readable
        pass


@pytest.fixture(scope="session")
def live_server(app):
    """Base URL of the app served by werkzeug in a background thread."""
    ensure_compiled(app)  # what `make translations` does, in case it was not run
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@dataclass
class Network:
    """What the seeded start page must show, branch by branch."""

    open: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def network(app):
    """Three active branches in three time zones and one inactive, committed so the server
    thread sees them. Opening hours are all day or never, so the open/closed state does not
    depend on when the tests run."""
    with app.app_context():
        empty_database()
        seeded = Network()

        def add(code, name, *, open_, **kwargs):
            b = factories.branch(code, **kwargs)
            b.name = name
            b.opening_hours = ALWAYS_OPEN if open_ else NEVER_OPEN
            seeded.names[code] = name
            (seeded.open if open_ else seeded.closed).append(code)
            return b

        add(
            "JKT01",
            "KCU Jakarta Sudirman",
            open_=True,
            address="Jl. Jend. Sudirman Kav. 1, Jakarta 10220",
        )
        # a long name and address: must wrap inside the card on a phone
        add(
            "MKS01",
            "KCP Makassar Panakkukang Boulevard Ruko Jasper Blok II No. 18",
            open_=False,
            timezone="Asia/Makassar",
            address="Jl. Boulevard Raya Ruko Jasper II No. 18, Panakkukang, Makassar 90231",
            services=[("teller", "A", 240)],
        )
        add(
            "MNL01",
            "Makati Ayala Branch",
            open_=True,
            timezone="Asia/Manila",
            country="PH",
            locale="en",
            address="6750 Ayala Avenue, Makati City 1226",
        )
        old = factories.branch("OLD01", active=False)
        seeded.inactive.append(old.code)
        db.session.commit()
    yield seeded
    with app.app_context():
        empty_database()


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests drive Debian's Chromium "
            "(apt-get install -y chromium, or `make browser`); Playwright's download is not used",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where the browser tests save their screenshots: `SCREENSHOT_DIR` if set, else
    `artifacts/screenshots/` in the repository (git-ignored), kept after the run to look at."""
    configured = os.environ.get("SCREENSHOT_DIR")
    path = Path(configured) if configured else ARTIFACTS / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Tab:
    """A page in its own browser context, recording everything that went wrong in it:
    console errors, uncaught exceptions, failed requests and 4xx/5xx responses (requests the
    browser cancelled itself go to `aborted`)."""

    def __init__(self, context, base_url):
        self.context = context
        self.base_url = base_url
        self.page = context.new_page()
        self.problems: list[str] = []
        page = self.page
        page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        # a request the browser itself cancelled (net::ERR_ABORTED: the page navigated on or
        # closed before it finished, e.g. a stylesheet of a page a redirect left) is kept
        # apart: no server failed; a server that fails answers >= 400 or drops the connection
        self.aborted: list[str] = []
        page.on("requestfailed", self._request_failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )

    def _request_failed(self, request):
        line = f"request failed: {request.url} {request.failure}"
        (self.aborted if request.failure == "net::ERR_ABORTED" else self.problems).append(line)

    def goto(self, path="/"):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.status == 200, path
        return response


@pytest.fixture
def open_tab(browser, live_server):
    """open_tab(viewport, locale="id-ID") -> Tab; contexts are closed after the test."""
    contexts = []

    def open_(viewport, locale="id-ID"):
        context = browser.new_context(viewport=viewport, locale=locale)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Tab(context, live_server)

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def run_outbox(app):
    """run_outbox(now=None) -> counts: the `deliver_outbox` job once, as the scheduler would
    run it for the live server (with the `smtp` / `gateway` fixtures to receive the mail)."""

    def run(now=None):
        return deliver_outbox(app, now)

    return run
