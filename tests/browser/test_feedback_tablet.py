"""The feedback tablet at a counter, in a real browser at a tablet's size (1280x800
landscape): idle with the branch and the counter; a member of staff finishes a served visit
(engine calls committed by the test, pushed by the live server's Socket.IO) and the survey is
on the tablet within a second; big buttons, tap 9 and 4 (and, where the survey offers them,
a reason), thanks, and idle again by itself. An untouched survey goes back to idle and does
not come back. Both languages, and the language button; screenshots to SCREENSHOT_DIR as
feedback-tablet-<lang>-*.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.branches.models import Branch
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db, socketio
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse, SurveyConfig
from queue_app.realtime import pusher
from queue_app.tickets import services as engine

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .floor import LiveFloor

pytestmark = pytest.mark.browser

TABLET = {"width": 1280, "height": 800}
LOCALES = {"id": "id-ID", "en": "en-US"}
THANKS_S = 3  # FEEDBACK_TABLET_THANKS_S for these tests (8 s in service)


class TabletCounter(LiveFloor):
    """Two counters and their staff, and a feedback tablet paired with the first counter."""

    def __init__(self, app, locale, *, reasons=True):
        self.reasons = reasons
        code = "JKT01" if locale == "id" else "MNL01"
        counters = [("Loket 1", ["teller"]), ("Loket 2", ["teller"])]
        super().__init__(app, code, locale, counters=counters)

    def set_up(self, branch):
        if not self.reasons:  # the touchpoint asks NPS and CSAT only
            db.session.add(
                SurveyConfig(
                    branch_id=branch.id,
                    service_id=None,
                    ask_nps=True,
                    ask_csat=True,
                    ask_ces=False,
                    ask_comment=False,
                    reasons=[],
                )
            )
        now = datetime.now(UTC)
        device, self.token = register_device(DeviceKind.FEEDBACK, now=now)
        device.branch = branch
        device.counter = factories.counter(branch, "Loket 1")
        device.paired_at = now
        device.pairing_code = None
        device.name = "Tablet Loket 1"

    def serve_and_finish(self, name="Loket 1"):
        """A customer takes a ticket; the counter calls, serves and finishes it (one commit,
        as the counter page's last request would leave it). Returns the ticket's number."""

        def go(now):
            branch = db.session.get(Branch, self.branch_id)
            counter, who = self._counter_staff(name)
            factories.ticket(branch, "teller", now=now - timedelta(minutes=6))
            if counter.status.value != "open":
                engine.open_counter(counter, who, now=now - timedelta(minutes=6))
            ticket = engine.call_next(counter, who, now=now - timedelta(minutes=5))
            engine.start(ticket, who, now=now - timedelta(minutes=5))
            return engine.finish(ticket, who, now=now, outcome="served").number

        return self._do(go)

    def responses(self):
        with self.app.app_context():
            return [
                (r.nps, r.csat, r.ces, list(r.reasons), r.channel, r.counter_id)
                for r in db.session.scalars(select(FeedbackResponse).order_by(FeedbackResponse.id))
            ]


@pytest.fixture
def tablet_counter(app, monkeypatch):
    fast_passwords(monkeypatch)
    monkeypatch.setitem(app.config, "FEEDBACK_TABLET_THANKS_S", THANKS_S)
    # the live server's Socket.IO server; another test may have rebound the global `socketio`
    socketio.server = pusher(app).server
    with app.app_context():
        empty_database()
    yield lambda locale, **kw: TabletCounter(app, locale, **kw)
    with app.app_context():
        empty_database()


def texts(app, lang, *messages):
    with app.test_request_context(), force_locale(lang):
        return [gettext(m) for m in messages]


def open_tablet(open_tab, lang, token):
    tab = open_tab(TABLET, locale=LOCALES[lang])
    tab.goto(f"/feedback/tablet/?device_token={token}")
    page = tab.page
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "online")
    page.wait_for_function(
        "() => window.queueTablet && window.queueTablet.floor.state.snapshots >= 1"
    )
    return tab


def fits(page):
    """Nothing wider or taller than the tablet's screen: no scrolling at all."""
    width, height = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert width <= TABLET["width"] and height <= TABLET["height"], (width, height)


def shoot(page, screenshot_dir, name):
    page.screenshot(path=str(screenshot_dir / f"{name}.png"))


def big(locator, min_px=90):
    box = locator.bounding_box()
    assert box and box["height"] >= min_px and box["width"] >= min_px, box


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_tablet_shows_the_survey_when_the_counter_finishes(
    app, lang, open_tab, tablet_counter, screenshot_dir
):
    shop = tablet_counter(lang, reasons=(lang == "id"))
    tab = open_tablet(open_tab, lang, shop.token)
    page = tab.page
    welcome, nps_q, csat_q, thanks = texts(
        app,
        lang,
        "Thank you for visiting",
        "How likely are you to recommend us to a friend or colleague?",
        "How satisfied are you with the service you received today?",
        "Thank you for your feedback!",
    )
    other = "en" if lang == "id" else "id"
    (nps_other,) = texts(app, other, "How likely are you to recommend us to a friend or colleague?")

    # idle: the branch, the counter, a welcome
    assert page.locator("html").get_attribute("lang") == lang
    expect(page.get_by_test_id("idle")).to_be_visible()
    expect(page.get_by_test_id("idle").locator("h1")).to_have_text(welcome)
    expect(page.get_by_test_id("counter")).to_have_text("Loket 1")
    expect(page.get_by_test_id("survey")).to_be_hidden()
    fits(page)
    shoot(page, screenshot_dir, f"feedback-tablet-{lang}-1-idle")

    # another counter finishing shows nothing here
    shop.serve_and_finish("Loket 2")
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("idle")).to_be_visible()

    # the counter finishes a served visit: the survey is here within a second (the push)
    number = shop.serve_and_finish("Loket 1")
    expect(page.get_by_test_id("survey")).to_be_visible(timeout=1000)
    assert page.evaluate("() => window.queueTablet.floor.state.changes") >= 1
    expect(page.get_by_test_id("question")).to_have_text(nps_q)
    expect(page.get_by_test_id("visit")).to_contain_text(number)
    scores = page.get_by_test_id("answers").locator(".t-score")
    expect(scores).to_have_count(11)
    rows = page.get_by_test_id("answers").locator(".t-row")
    expect(rows).to_have_count(2)  # 0-10 in two rows
    for value in ("0", "5", "10"):
        big(page.locator(f'.t-score[data-score="{value}"]'))
    fits(page)
    shoot(page, screenshot_dir, f"feedback-tablet-{lang}-2-nps")

    # the language button: the other language, and back
    page.locator(f'.t-lang[data-lang="{other}"]').click()
    expect(page.get_by_test_id("question")).to_have_text(nps_other)
    assert page.locator("html").get_attribute("lang") == other
    page.locator(f'.t-lang[data-lang="{lang}"]').click()
    expect(page.get_by_test_id("question")).to_have_text(nps_q)

    # tap 9 (twice: a double tap), then 4 on the 1-5 scale with words at its ends
    nine = page.locator('.t-score[data-score="9"]')
    nine.click()
    nine.click(force=True)
    expect(page.get_by_test_id("question")).to_have_text(csat_q)
    expect(scores).to_have_count(5)
    big(page.locator('.t-score[data-score="4"]'))
    expect(page.locator(".t-ends")).to_be_visible()
    fits(page)
    shoot(page, screenshot_dir, f"feedback-tablet-{lang}-3-csat")
    page.locator('.t-score[data-score="4"]').click()

    if lang == "id":  # the default survey: reasons are the optional third step
        expect(page.locator(".t-reason")).to_have_count(6)
        page.locator('.t-reason[data-reason="waiting_time"]').click()
        expect(page.locator('.t-reason[data-reason="waiting_time"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        fits(page)
        shoot(page, screenshot_dir, f"feedback-tablet-{lang}-4-reasons")
        page.get_by_test_id("send").click()

    # thanks, then idle again by itself
    expect(page.get_by_test_id("thanks")).to_be_visible()
    expect(page.get_by_test_id("thanks").locator("h1")).to_have_text(thanks)
    fits(page)
    shoot(page, screenshot_dir, f"feedback-tablet-{lang}-5-thanks")
    expect(page.get_by_test_id("idle")).to_be_visible(timeout=(THANKS_S + 3) * 1000)
    expect(page.get_by_test_id("survey")).to_be_hidden()

    reasons = ["waiting_time"] if lang == "id" else []
    counter_id = shop.counter_ids["Loket 1"]
    assert shop.responses() == [(9, 4, None, reasons, FeedbackChannel.TABLET, counter_id)]
    assert page.evaluate("() => window.queueTablet.sent.length") == 1
    # the state poll does not bring a rated survey back
    page.wait_for_timeout(3500)
    expect(page.get_by_test_id("idle")).to_be_visible()
    assert tab.problems == []


def test_an_unanswered_survey_resets_itself_and_stays_gone(
    app, open_tab, tablet_counter, screenshot_dir, monkeypatch
):
    monkeypatch.setitem(app.config, "FEEDBACK_TABLET_IDLE_S", 3)
    shop = tablet_counter("id")
    tab = open_tablet(open_tab, "id", shop.token)
    page = tab.page
    shop.serve_and_finish("Loket 1")
    expect(page.get_by_test_id("survey")).to_be_visible(timeout=1000)
    # nobody answers: idle again after FEEDBACK_TABLET_IDLE_S, and the poll (every 3 s, the
    # survey still open on the server) does not show it again
    expect(page.get_by_test_id("idle")).to_be_visible(timeout=6000)
    page.wait_for_timeout(4000)
    expect(page.get_by_test_id("idle")).to_be_visible()
    assert page.evaluate("() => window.queueTablet.shown.length") == 1
    # the next customer's visit shows its own survey
    number = shop.serve_and_finish("Loket 1")
    expect(page.get_by_test_id("survey")).to_be_visible(timeout=1000)
    expect(page.get_by_test_id("visit")).to_contain_text(number)
    assert shop.responses() == []
    assert tab.problems == []
