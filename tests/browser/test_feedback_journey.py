"""One unhappy visit end to end, in three real browser tabs (Debian's Chromium):

1. the counter PC (1366x768): Budi signs in, opens Teller 1, calls the waiting ticket, starts
   and finishes it as served, all with the page's own buttons and keys;
2. the feedback tablet paired with Teller 1 (1280x800): the survey arrives by itself; the
   customer taps 3 (NPS), 2 (CSAT) and the reason "waiting time", and sends;
3. the CX pages (1366x768): Dewi, the branch manager who owns level 1, finds the case the
   rating opened, with the customer's scores, logs a call (reached by phone) and resolves it
   with a 5P root cause, a reason and the action taken.

Nothing is put in the database behind the pages' backs after the set-up: the ticket, the
response and the case are what the three pages made. Both languages; screenshots to
SCREENSHOT_DIR as feedback-journey-<lang>-*.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.cases.models import Case, CaseStatus
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db, socketio
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse
from queue_app.realtime import pusher
from queue_app.tickets import services as engine

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, COUNTER_PC

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"
TABLET = {"width": 1280, "height": 800}
LOCALES = {"id": "id-ID", "en": "en-US"}


@pytest.fixture
def floor(app, monkeypatch):
    """JKT01 with two teller counters, Budi at the counter, Dewi managing the branch, a
    feedback tablet paired with Teller 1 and one customer waiting."""
    fast_passwords(monkeypatch)
    socketio.server = pusher(app).server  # the live server's, whoever bound it last
    with app.app_context():
        empty_database()
        branch = factories.branch(
            "JKT01", counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"])]
        )
        branch.name = "KCU Jakarta Sudirman"
        branch.opening_hours = ALWAYS_OPEN
        budi = factories.user("budi", branches=[branch], password=PASSWORD)
        budi.display_name = "Budi Santoso"
        dewi = factories.user(
            "dewi", role=Role.BRANCH_MANAGER, branches=[branch], password=PASSWORD
        )
        dewi.display_name, dewi.email = "Dewi Kartika", "dewi@bank.co.id"
        now = datetime.now(UTC)
        device, token = register_device(DeviceKind.FEEDBACK, now=now)
        device.branch = branch
        device.counter = factories.counter(branch, "Teller 1")
        device.paired_at, device.pairing_code, device.name = now, None, "Tablet Teller 1"
        ticket = engine.issue_ticket(branch, factories.service(branch, "teller"), now=now)
        db.session.commit()
        yield {
            "token": token,
            "number": ticket.number,
            "counter_id": device.counter_id,
            "budi_id": budi.id,
            "dewi_id": dewi.id,
        }
        empty_database()


def sign_in(tab, username, lang, then):
    tab.goto(f"/auth/login?lang={lang}")
    page = tab.page
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(re.compile(then))


def fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


@pytest.mark.parametrize("lang", ["id", "en"])
def test_a_detractor_is_called_back(app, floor, open_tab, lang, screenshot_dir):
    shot = lambda page, name: page.screenshot(  # noqa: E731
        path=str(screenshot_dir / f"feedback-journey-{lang}-{name}.png")
    )

    # the tablet, idle, paired with Teller 1
    tablet = open_tab(TABLET, locale=LOCALES[lang])
    tablet.goto(f"/feedback/tablet/?device_token={floor['token']}&lang={lang}")
    tp = tablet.page
    expect(tp.get_by_test_id("status")).to_have_attribute("data-state", "online")
    expect(tp.get_by_test_id("idle")).to_be_visible()

    # 1. the counter: open Teller 1, call, start, finish as served
    counter = open_tab(COUNTER_PC, locale=LOCALES[lang])
    cp = counter.page
    sign_in(counter, "budi", lang, r"/counter/")
    counter.goto(f"/counter/JKT01/{floor['counter_id']}/")
    cp.get_by_test_id("btn-open").click()
    expect(cp.get_by_test_id("staff")).to_have_text("Budi Santoso")
    cp.get_by_test_id("btn-call-next").click()
    expect(cp.get_by_test_id("current-number")).to_have_text(floor["number"])
    cp.keyboard.press("s")
    expect(cp.locator('[data-action="finish"]')).to_be_enabled()  # in service
    cp.keyboard.press("f")
    expect(cp.locator("#cs-dlg-finish")).to_be_visible()
    cp.get_by_test_id("outcome").select_option("served")
    cp.get_by_test_id("finish-submit").click()
    expect(cp.locator("#cs-dlg-finish")).to_be_hidden()
    expect(cp.get_by_test_id("current-number")).to_have_count(0)
    shot(cp, "1-counter")

    # 2. the tablet shows the survey for that visit; the customer is unhappy
    expect(tp.get_by_test_id("survey")).to_be_visible(timeout=3000)
    expect(tp.get_by_test_id("visit")).to_contain_text(floor["number"])
    tp.locator('.t-score[data-score="3"]').click()
    expect(tp.locator(".t-score")).to_have_count(5)  # the 1-5 question
    tp.locator('.t-score[data-score="2"]').click()
    tp.locator('.t-reason[data-reason="waiting_time"]').click()
    shot(tp, "2-tablet")
    tp.get_by_test_id("send").click()
    expect(tp.get_by_test_id("thanks")).to_be_visible()

    with app.app_context():
        response = db.session.scalars(select(FeedbackResponse)).one()
        assert (response.nps, response.csat, response.channel) == (3, 2, FeedbackChannel.TABLET)
        assert (response.counter_id, response.staff_id) == (floor["counter_id"], floor["budi_id"])
        case = db.session.scalars(select(Case)).one()
        assert (case.level, case.owner_id, case.status) == (1, floor["dewi_id"], CaseStatus.OPEN)

    # 3. the CX pages: the case is on Dewi's list, at level 1
    cx = open_tab(COUNTER_PC, locale=LOCALES[lang])
    page = cx.page
    sign_in(cx, "dewi", lang, r"/")
    cx.goto(f"/cx/cases?lang={lang}")
    rows = page.locator("table.cases tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-case", str(case.id))
    expect(rows.first.locator(".level")).to_have_class(re.compile("level-1"))
    expect(rows.first).to_contain_text(floor["number"])
    fits(page)
    shot(page, "3-cases")

    rows.first.locator("a").click()
    page.wait_for_url(re.compile(rf"/cx/cases/{case.id}"))
    expect(page.get_by_test_id("score-nps")).to_have_text("3")
    expect(page.locator("body")).to_contain_text("Budi Santoso")
    expect(page.get_by_test_id("case-due")).to_be_visible()

    # log the call back: reached by phone; the clock stops
    page.select_option("#channel", "phone")
    page.locator("input[name=reached][value=yes]").check()
    page.fill("#contact-note", "Nasabah ditelepon; antrean pagi ini memang panjang.")
    page.get_by_test_id("log-contact").click()
    expect(page.locator(".steps [data-kind=contact]")).to_have_count(1)
    expect(page.get_by_test_id("case-due")).to_have_count(0)

    # resolve: Process, waiting time, the action taken
    page.select_option("#root_cause", "process")
    page.select_option("#reason_code", "waiting_time")
    page.fill("#action_taken", "Loket tambahan dibuka pukul 09.00-11.00 setiap Senin.")
    page.get_by_test_id("resolve").click()
    expect(page.locator(".steps [data-kind=resolved]")).to_have_count(1)
    expect(page.get_by_test_id("case-status")).to_have_class(re.compile("case-status-resolved"))
    # the customer left no phone or e-mail: no recovery survey is promised
    with app.test_request_context(), force_locale(lang):
        no_survey = gettext(
            "The case is resolved. The customer left no contact details for the recovery survey."
        )
    expect(page.locator("body")).to_contain_text(no_survey)
    fits(page)
    shot(page, "4-resolved")

    with app.app_context():
        case = db.session.get(Case, case.id)
        assert case.status == CaseStatus.RESOLVED
        assert (case.root_cause, case.reason_code) == ("process", "waiting_time")
        assert case.first_contact_at is not None
    for tab in (tablet, counter, cx):
        assert tab.problems == []
