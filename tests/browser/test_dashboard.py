"""The live dashboard in a real browser (Debian's Chromium).

- "The dashboard shows a new alert live when a wait crosses its threshold" (issue 6): the
  branch manager watches her branch's dashboard; a longest-wait rule (raise at 60 s) exists;
  a ticket issued five minutes ago crosses it when the rules are evaluated and committed in
  the server's database: the alert appears on the page without a reload (the page heard the
  `alert.changed` hint over Socket.IO and refetched its state), and she acknowledges it there.
- The overview and the branch view at 1920x1080, 1366x768 and 390x844 in both languages, with
  a busy morning behind them: no horizontal scrolling, no console error; screenshots
  dashboard_<lang>_<page>_<size>.png in the conftest's folder (`SCREENSHOT_DIR`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from queue_app.accounts.models import Role, User
from queue_app.alerts import services as alerts
from queue_app.alerts.models import Alert, AlertStatus
from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.realtime import pusher
from queue_app.tickets import services as engine

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from ..feedbackrows import respond
from .conftest import ALWAYS_OPEN, COUNTER_PC, PHONE

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"
TV = {"width": 1920, "height": 1080}
SIZES = {"1920": TV, "1366": COUNTER_PC, "390": PHONE}


@pytest.fixture
def branch_floor(app, monkeypatch):
    """JKT01 (always open) with a teller counter open and its manager; MNL01 for the network."""
    fast_passwords(monkeypatch)
    now = datetime.now(UTC)
    with app.app_context():
        jkt = factories.branch(
            "JKT01",
            counters=[
                ("Teller 1", ["teller"]),
                ("Teller 2", ["teller"]),
                ("CS 1", ["cs", "loans"]),
            ],
        )
        jkt.name = "KCU Jakarta Sudirman"
        jkt.opening_hours = ALWAYS_OPEN
        mnl = factories.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
        mnl.name = "Makati Ayala Branch"
        mnl.opening_hours = ALWAYS_OPEN
        factories.user("dewi", role=Role.BRANCH_MANAGER, branches=[jkt], password=PASSWORD)
        factories.user("rudi", role=Role.EXECUTIVE, password=PASSWORD)
        budi = factories.user("budi", branches=[jkt], password=PASSWORD)
        engine.open_counter(next(c for c in jkt.counters if c.name == "Teller 1"), budi, now=now)
        db.session.commit()
        ids = {"jkt": jkt.id, "mnl": mnl.id, "budi": budi.id}
    yield ids
    with app.app_context():
        empty_database()


def sign_in(tab, path, username, lang):
    tab.goto(f"{path}?lang={lang}")  # not signed in: the sign-in page, then back
    page = tab.page
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(re.compile(re.escape(path) + r"(\?.*)?$"))


def assert_fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
    # nothing sticks out of a figure's tile (a long status in Indonesian wraps)
    spilled = page.evaluate(
        "Array.from(document.querySelectorAll('.dash-tile'))"
        ".filter(t => t.scrollWidth > t.clientWidth + 1).map(t => t.innerText)"
    )
    assert spilled == [], f"tiles whose content sticks out: {spilled}"


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_dashboard_shows_a_new_alert_live_when_a_wait_crosses_its_threshold(
    app, branch_floor, open_tab, lang, screenshot_dir
):
    tab = open_tab(COUNTER_PC, locale="id-ID" if lang == "id" else "en-US")
    page = tab.page
    sign_in(tab, "/dashboard/JKT01", "dewi", lang)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "online")
    expect(page.get_by_test_id("no-alerts")).to_be_visible()
    expect(page.get_by_test_id("alert")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # a rule, then a ticket whose wait crosses it, evaluated and committed in the server's DB
    now = datetime.now(UTC)
    with app.app_context():
        branch = db.session.get(Branch, branch_floor["jkt"])
        alerts.create_rule(
            db.session, branch, metric="longest_wait_s", raise_at=60, clear_at=30, now=now
        )
        factories.ticket(branch, "teller", now=now - timedelta(minutes=5))
        db.session.commit()
        raised = alerts.evaluate_branch(db.session, branch, datetime.now(UTC))
        db.session.commit()
        assert len(raised) == 1
        alert_id = raised[0].id
        pusher(app).drain()

    alert = page.locator(f'[data-testid=alert][data-alert="{alert_id}"]')
    expect(alert).to_be_visible()  # live, without a reload
    expect(alert).to_have_class(re.compile("is-raised"))
    expect(page.get_by_test_id("alert-count")).to_have_text("1")
    expect(page.get_by_test_id("branch-status")).to_have_attribute("data-status", "red")
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("window.queueDashboard.hints") >= 1
    page.screenshot(path=str(screenshot_dir / f"dashboard_{lang}_alert_1366.png"), full_page=True)

    # acknowledged from the page
    alert.locator("input[name=note]").fill("Teller 2 dibuka sekarang")
    alert.get_by_test_id("acknowledge").click()
    page.wait_for_url(re.compile(r"/dashboard/JKT01$"))
    acknowledged = page.locator(f'[data-testid=alert][data-alert="{alert_id}"]')
    expect(acknowledged).to_have_class(re.compile("is-acknowledged"))
    expect(acknowledged.get_by_test_id("acknowledge")).to_have_count(0)
    expect(page.locator(".flash-success")).to_be_visible()
    with app.app_context():
        stored = db.session.get(Alert, alert_id)
        assert stored.status == AlertStatus.ACKNOWLEDGED
        assert stored.steps[-1].note == "Teller 2 dibuka sekarang"
    assert_fits(page)
    assert tab.problems == []  # (the refetch the acknowledge form's post aborts: `aborted`)


@pytest.fixture
def busy_morning(app, branch_floor):
    """Tickets served, in service and waiting at JKT01; feedback at both branches."""
    now = datetime.now(UTC)
    with app.app_context():
        jkt = db.session.get(Branch, branch_floor["jkt"])
        mnl = db.session.get(Branch, branch_floor["mnl"])
        budi = db.session.get(User, branch_floor["budi"])
        teller = next(c for c in jkt.counters if c.name == "Teller 1")
        start = now - timedelta(minutes=50)
        for i in range(4):
            t = factories.ticket(jkt, "teller", now=start + timedelta(minutes=3 * i))
        for i in range(4):
            called = engine.call_next(teller, budi, now=start + timedelta(minutes=10 + 8 * i))
            engine.start(called, budi, now=start + timedelta(minutes=11 + 8 * i))
            if i < 3:
                engine.finish(called, budi, now=start + timedelta(minutes=17 + 8 * i))
        for minutes in (20, 12, 6, 2):
            t = factories.ticket(jkt, "teller", now=now - timedelta(minutes=minutes))
        factories.ticket(jkt, "cs", now=now - timedelta(minutes=4))
        factories.ticket(jkt, "loans", now=now - timedelta(minutes=1))
        for score in (10, 9, 9, 7, 4):
            respond(jkt, moment=now - timedelta(minutes=30), nps=score, wait_s=420)
        for score in (10, 6):
            respond(mnl, moment=now - timedelta(minutes=30), nps=score, wait_s=200)
        alerts.create_rule(
            db.session, jkt, metric="longest_wait_s", raise_at=600, clear_at=300, now=now
        )
        alerts.evaluate_branch(db.session, jkt, now)
        db.session.commit()
        assert t is not None


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_screens(app, busy_morning, open_tab, lang, screenshot_dir):
    for size, viewport in SIZES.items():
        tab = open_tab(viewport, locale="id-ID" if lang == "id" else "en-US")
        page = tab.page
        sign_in(tab, "/dashboard/", "rudi", lang)
        expect(page.locator("[data-branch]")).to_have_count(2)
        expect(page.locator('[data-branch="JKT01"]')).to_have_attribute("data-status", "red")
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "online")
        assert_fits(page)
        page.screenshot(
            path=str(screenshot_dir / f"dashboard_{lang}_overview_{size}.png"), full_page=True
        )
        page.locator('[data-branch="JKT01"] a').click()
        page.wait_for_url(re.compile(r"/dashboard/JKT01$"))
        expect(page.get_by_test_id("waiting-chart")).to_be_visible()
        expect(page.locator('[data-counter="Teller 1"]')).to_have_attribute("data-state", "serving")
        page.locator("details summary").first.click()
        assert_fits(page)
        page.screenshot(
            path=str(screenshot_dir / f"dashboard_{lang}_branch_{size}.png"), full_page=True
        )
        assert tab.problems == [], size
