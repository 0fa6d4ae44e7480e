"""The customer's tracking page on a phone (390x844) in a real browser: the place and the
estimated wait follow live while counters call other tickets (engine calls committed by the
test, pushed by the live server's Socket.IO), and when the ticket's own turn comes the page
says so loudly: the whole screen turns green, the counter is named, the phone vibrates, a
chime is played and the tab's title changes; a recall does it again; the finished visit reads
clearly. Both languages; screenshots to SCREENSHOT_DIR as mobile-<lang>-*.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from queue_app.branches.models import Branch
from queue_app.extensions import db, socketio
from queue_app.realtime import pusher
from queue_app.tickets import remote

from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import PHONE
from .floor import LiveFloor, assert_names_its_branch

pytestmark = pytest.mark.browser

GREEN = "rgb(15, 107, 47)"  # phone.css: the called screen
TEXT = {
    "id": {
        "ahead": "Orang di depan Anda",
        "next": "Tidak ada: Anda berikutnya",
        "locale": "id-ID",
    },
    "en": {
        "ahead": "People ahead of you",
        "next": "None: you are next",
        "locale": "en-US",
    },
}
# the page records every vibration it asks for (headless Chromium has no motor to ask)
VIBRATE_SPY = """
window.__vibrations = [];
Object.defineProperty(navigator, "vibrate", {
  configurable: true,
  value: function (pattern) { window.__vibrations.push(pattern); return true; },
});
"""


def daytime_zone(locale: str) -> str:
    """The locale's zone, or another one where it is not the last hours of the day now. An
    always-open branch still closes its business day at midnight, and from about an hour
    before, remote intake is closed ("the queue is full until closing time"): a test of the
    join link must not depend on the hour it runs at. Between them the three zones cover
    every hour."""
    zones = ["Asia/Jakarta", "Asia/Manila"] if locale == "id" else ["Asia/Manila", "Asia/Jakarta"]
    now = datetime.now(UTC)
    for zone in [*zones, "Asia/Almaty"]:
        if 1 <= now.astimezone(ZoneInfo(zone)).hour < 22:
            return zone
    raise AssertionError("no zone in daytime")  # the three zones cover every hour


class PhoneBranch(LiveFloor):
    """Two teller counters by default, their staff and tickets (see `LiveFloor`)."""

    def __init__(self, app, code, locale, *, now=None, counters=("Loket 1", "Loket 2")):
        super().__init__(
            app,
            code,
            locale,
            counters=[(name, ["teller"]) for name in counters],
            now=now,
            timezone=None if now is not None else daytime_zone(locale),
        )


@pytest.fixture
def phone_branches(app, monkeypatch):
    fast_passwords(monkeypatch)
    # the live server's Socket.IO server; another test may have rebound the global `socketio`
    socketio.server = pusher(app).server
    with app.app_context():
        empty_database()

    def make(locale="id", **kwargs):
        return PhoneBranch(app, "JKT01" if locale == "id" else "MNL01", locale, **kwargs)

    yield make
    with app.app_context():
        empty_database()


def shoot(page, screenshot_dir, name):
    page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)


def open_phone(open_tab, lang, path):
    tab = open_tab(PHONE, locale=TEXT[lang]["locale"])
    tab.page.add_init_script(VIBRATE_SPY)
    tab.goto(path)
    tab.page.wait_for_function(
        "() => window.queueTrack && window.queueTrack.floor.state.snapshots >= 1"
    )
    return tab


def fits_the_screen(page):
    """Nothing wider than the phone: no sideways scrolling."""
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_tracking_follows_the_queue_live_and_calls_loudly(
    lang, open_tab, phone_branches, screenshot_dir
):
    shop = phone_branches(lang)
    shop.open_counters()
    tickets = shop.issue(4)
    number, token = tickets[-1]
    tab = open_phone(open_tab, lang, f"/t/{token}")
    page = tab.page
    ahead = page.get_by_test_id("ahead")
    assert page.locator("html").get_attribute("lang") == lang
    expect(page.get_by_test_id("number")).to_have_text(number)
    expect(ahead).to_have_text("3")
    expect(page.get_by_text(TEXT[lang]["ahead"])).to_be_visible()
    expect(page.get_by_test_id("live")).to_be_visible()
    assert_names_its_branch(page, shop.code)
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"mobile-{lang}-1-waiting")

    # a tap lets the page play sound later (browsers want a gesture first)
    page.get_by_test_id("sound").click()
    page.wait_for_function("() => window.queueTrack.sound === 'on'")
    expect(page.get_by_test_id("sound")).to_be_hidden()

    # counters call the others: the place falls live, no reload
    assert shop.call("Loket 1") == tickets[0][0]
    expect(ahead).to_have_text("2")
    wait_before = page.get_by_test_id("wait").inner_text()
    assert shop.call("Loket 2") == tickets[1][0]
    expect(ahead).to_have_text("1")
    assert shop.call("Loket 1") == tickets[2][0]
    expect(ahead).to_have_text(TEXT[lang]["next"])
    assert page.get_by_test_id("wait").inner_text() != wait_before
    assert page.evaluate("() => window.queueTrack.alerts.length") == 0
    assert page.evaluate("() => window.__vibrations.length") == 0
    shoot(page, screenshot_dir, f"mobile-{lang}-2-next")

    # its own turn: loudly
    assert shop.call("Loket 2") == number
    expect(page.get_by_test_id("track")).to_have_attribute("data-status", "called")
    expect(page.get_by_test_id("counter")).to_contain_text("Loket 2")
    expect(page.get_by_test_id("leave")).to_be_hidden()
    page.wait_for_function("() => window.queueTrack.alerts.length === 1")
    alert = page.evaluate("() => window.queueTrack.alerts[0]")
    assert alert["number"] == number and alert["counter"] == "Loket 2"
    assert alert["vibrated"] is True and alert["chimed"] == "running"
    assert page.evaluate("() => window.__vibrations.length") == 1
    assert number in page.title() and "Loket 2" in page.title()
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == GREEN
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"mobile-{lang}-3-called")

    # called again: said again
    shop.recall("Loket 2")
    page.wait_for_function("() => window.queueTrack.alerts.length === 2")
    assert page.evaluate("() => window.__vibrations.length") == 2

    # served, then finished: read clearly, the page stops following
    shop.finish("Loket 2")
    expect(page.get_by_test_id("track")).to_have_attribute("data-status", "finished")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != GREEN
    assert page.title() != alert["counter"]
    page.wait_for_function("() => !window.queueTrack.floor.socket.connected")
    shoot(page, screenshot_dir, f"mobile-{lang}-4-finished")
    assert tab.problems == []


@pytest.mark.parametrize("lang", ["id", "en"])
def test_tracking_page_without_javascript_and_leaving(
    lang, browser, live_server, phone_branches, screenshot_dir
):
    shop = phone_branches(lang)
    [(first, _t1), (number, token)] = shop.issue(2)
    context = browser.new_context(
        viewport=PHONE, locale=TEXT[lang]["locale"], java_script_enabled=False
    )
    try:
        page = context.new_page()
        response = page.goto(f"{live_server}/t/{token}")
        assert response.status == 200
        expect(page.get_by_test_id("number")).to_have_text(number)
        expect(page.get_by_test_id("ahead")).to_have_text("1")
        assert page.locator('noscript meta[http-equiv="refresh"]').count() == 1
        # leave: a confirmation page, then a plain form post
        page.get_by_test_id("leave").click()
        expect(page.get_by_test_id("leave-confirm")).to_be_visible()
        shoot(page, screenshot_dir, f"mobile-{lang}-5-leave")
        page.get_by_test_id("leave-confirm-button").click()
        expect(page.get_by_test_id("track")).to_have_attribute("data-status", "cancelled")
        expect(page.get_by_test_id("leave")).to_have_count(0)
        shoot(page, screenshot_dir, f"mobile-{lang}-6-left")
        assert shop.ticket_status(number) == "cancelled"
        assert shop.ticket_status(first) == "waiting"
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["id", "en"])
def test_branch_page_on_a_phone(lang, open_tab, phone_branches, screenshot_dir):
    shop = phone_branches(lang)
    shop.open_counters()
    shop.issue(3)
    tab = open_tab(PHONE, locale=TEXT[lang]["locale"])
    tab.goto(f"/b/{shop.code}")
    page = tab.page
    expect(page.get_by_test_id("waiting-teller")).to_contain_text("3")
    expect(page.get_by_test_id("join-link")).to_be_visible()
    expect(page.get_by_test_id("book-link")).to_be_visible()
    expect(page.get_by_test_id("busy")).to_be_visible()
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"mobile-{lang}-7-branch")
    page.get_by_test_id("join-link").click()
    expect(page.get_by_test_id("join-page")).to_be_visible()
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"mobile-{lang}-8-join")
    # the entrance poster scanned by a phone that joined nothing
    with shop.app.app_context():
        key = remote.arrival_key(db.session.get(Branch, shop.branch_id))
    tab.goto(f"/b/{shop.code}/here?k={key}")
    expect(page.get_by_test_id("no-ticket")).to_be_visible()
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"mobile-{lang}-10-here-without-ticket")
    missing = page.goto(f"{tab.base_url}/t/not-a-ticket-token")
    assert missing.status == 404
    expect(page.get_by_test_id("not-found")).to_be_visible()
    shoot(page, screenshot_dir, f"mobile-{lang}-9-not-found")
    # the 404 itself (its response and the console line about it) is the only problem
    assert [p for p in tab.problems if "not-a-ticket-token" not in p and "404" not in p] == []
