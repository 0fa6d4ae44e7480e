"""Rating a visit on a phone (390x844) in a real browser, in both languages: the tracking page
of a finished visit offers "Rate your visit"; the form takes taps on the large 0-10 and 1-5
buttons (radio buttons underneath: no JavaScript needed), a reason and a comment, and thanks
the customer; the invitation's signed link opens the same form, shows an unanswered form's
error next to the questions, and answers "already rated" once done. No horizontal scroll.
Screenshots to SCREENSHOT_DIR as feedback-<lang>-*.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.core.types import utcnow
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.feedback import links
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse
from queue_app.tickets import services as engine

from .. import factories
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, PHONE

pytestmark = pytest.mark.browser

M = timedelta(minutes=1)


def _finished_visit(app, code: str, locale: str) -> dict:
    """A customer's visit served and finished a few minutes ago at a branch speaking `locale`."""
    with app.app_context():
        b = factories.branch(
            code,
            locale=locale,
            timezone="Asia/Jakarta" if locale == "id" else "Asia/Manila",
            country="ID" if locale == "id" else "PH",
            counters=[("Loket 1", ["teller"])],
        )
        b.name = "KCU Jakarta Sudirman" if locale == "id" else "Makati Ayala Branch"
        b.opening_hours = ALWAYS_OPEN
        staff = factories.user(f"{code.lower()}-staff", branches=[b])
        counter = factories.counter(b, "Loket 1")
        start = utcnow() - 30 * M
        factories.open_counter(counter, staff, now=start)
        customer = Customer(phone=f"+6281255500{len(code):03d}", consent_survey=True)
        db.session.add(customer)
        db.session.flush()
        ticket = factories.ticket(b, "teller", now=start, customer=customer)
        db.session.commit()
        engine.call_ticket(ticket, counter, staff, now=start + 4 * M)
        engine.start(ticket, staff, now=start + 5 * M)
        engine.finish(ticket, staff, now=start + 12 * M)
        db.session.commit()
        return {"token": ticket.token, "id": ticket.id, "number": ticket.number}


def _no_horizontal_scroll(page) -> None:
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def _response(app, ticket_id: int) -> FeedbackResponse | None:
    with app.app_context():
        found = db.session.scalar(
            select(FeedbackResponse).where(FeedbackResponse.ticket_id == ticket_id)
        )
        db.session.expunge_all()
        return found


@pytest.mark.parametrize("lang", ["id", "en"])
def test_tracking_page_to_rating_to_thanks(app, open_tab, screenshot_dir, lang):
    visit = _finished_visit(app, f"FBQ{lang.upper()}", lang)
    try:
        tab = open_tab(PHONE, locale="id-ID" if lang == "id" else "en-US")
        page = tab.page
        tab.goto(f"/t/{visit['token']}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        rate = page.get_by_test_id("rate-link")
        expect(rate).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"feedback-{lang}-1-track.png"), full_page=True)
        rate.get_by_role("link").click()
        expect(page.get_by_test_id("rate-form")).to_be_visible()
        # the form is in the DOM before its stylesheet has loaded (a busy machine): measure the
        # buttons below once the page has loaded
        page.wait_for_load_state("load")
        expect(page.get_by_test_id("rate-about")).to_contain_text(visit["number"])
        # only the questions this touchpoint asks (default: NPS and CSAT), 11 and 5 buttons
        expect(page.get_by_test_id("question-nps").locator(".scale-option")).to_have_count(11)
        expect(page.get_by_test_id("question-csat").locator(".scale-option")).to_have_count(5)
        expect(page.get_by_test_id("question-ces")).to_have_count(0)
        _no_horizontal_scroll(page)
        # large buttons: a thumb's size on a phone
        box = page.get_by_test_id("question-nps").locator(".scale-option span").first.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, box
        page.get_by_test_id("question-nps").locator(".scale-option", has_text="9").click()
        page.get_by_test_id("question-csat").locator(".scale-option", has_text="4").click()
        expect(page.get_by_test_id("nps-9")).to_be_checked()
        page.get_by_test_id("reason-staff_attitude").check()
        page.get_by_test_id("comment").fill("Petugasnya ramah." if lang == "id" else "Friendly.")
        page.screenshot(path=str(screenshot_dir / f"feedback-{lang}-2-form.png"), full_page=True)
        page.get_by_test_id("rate-submit").click()
        expect(page.get_by_test_id("rate-thanks")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        _no_horizontal_scroll(page)
        page.screenshot(path=str(screenshot_dir / f"feedback-{lang}-3-thanks.png"), full_page=True)
        saved = _response(app, visit["id"])
        assert (saved.channel, saved.nps, saved.csat) == (FeedbackChannel.QR, 9, 4)
        assert saved.reasons == ["staff_attitude"] and saved.locale == lang
        # back on the tracking page: nothing left to rate
        page.get_by_test_id("back-to-ticket").click()
        expect(page.get_by_test_id("track")).to_be_visible()
        expect(page.get_by_test_id("rate-link")).to_have_count(0)
        assert tab.problems == [], tab.problems
    finally:
        with app.app_context():
            empty_database()


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_invitation_link_page(app, open_tab, screenshot_dir, lang):
    visit = _finished_visit(app, f"FBL{lang.upper()}", lang)
    try:
        with app.app_context():
            from queue_app.tickets.models import Ticket

            token = links.link_token(db.session.get(Ticket, visit["id"]))
        tab = open_tab(PHONE, locale="id-ID" if lang == "id" else "en-US")
        page = tab.page
        tab.goto(f"/r/{token}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        # sent without an answer: the form again, with the error, nothing recorded
        page.get_by_test_id("rate-submit").click()
        expect(page.get_by_test_id("error")).to_be_visible()
        _no_horizontal_scroll(page)
        page.screenshot(
            path=str(screenshot_dir / f"feedback-{lang}-4-link-error.png"), full_page=True
        )
        assert _response(app, visit["id"]) is None
        # the other language, switched on the page, keeps the form
        other = "en" if lang == "id" else "id"
        page.locator(f'nav.lang a[hreflang="{other}"]').click()
        expect(page.locator("html")).to_have_attribute("lang", other)
        page.get_by_test_id("question-nps").locator(".scale-option", has_text="2").click()
        page.get_by_test_id("rate-submit").click()
        expect(page.get_by_test_id("rate-thanks")).to_be_visible()
        page.screenshot(
            path=str(screenshot_dir / f"feedback-{lang}-5-link-thanks.png"), full_page=True
        )
        saved = _response(app, visit["id"])
        assert (saved.channel, saved.nps, saved.csat, saved.locale) == (
            FeedbackChannel.LINK,
            2,
            None,
            other,
        )
        # the same link again: already rated, clearly
        response = page.goto(tab.base_url + f"/r/{token}")
        assert response.status == 409
        expect(page.get_by_test_id("rate-message")).to_have_attribute("data-kind", "already_rated")
        page.screenshot(path=str(screenshot_dir / f"feedback-{lang}-6-already.png"), full_page=True)
        # the refused form (422) and the already-rated page (409), nothing else
        statuses = [p for p in tab.problems if p.startswith("HTTP ")]
        assert [p.split(":")[0] for p in statuses] == ["HTTP 422", "HTTP 409"], tab.problems
        others = [p for p in tab.problems if not p.startswith(("HTTP ", "console: Failed to load"))]
        assert others == [], tab.problems
    finally:
        with app.app_context():
            empty_database()
