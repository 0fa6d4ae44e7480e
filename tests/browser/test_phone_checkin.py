"""Checking in a booked visit on the phone at the branch, in a real browser (390x844), in
Bahasa Indonesia and English: the customer books a time of today on the phone; the branch
manager's entrance poster carries the "I'm here" link with the branch's key; the customer
opens that link on the same phone, checks in and lands on the ticket's tracking page. A
second booking, later today, is refused as too early with the time check-in opens.
Screenshots to `SCREENSHOT_DIR` (phone-checkin-<lang>-*.png).

The server runs on the real clock, like tests/browser/test_booking_journey.py: the branch is
open around the clock in a zone where it is neither just before nor just after midnight, so
the first free time of today is minutes away (its check-in window is open at once) and a
later one an hour away (its window not yet open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.booking.models import Appointment, AppointmentStatus
from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.tickets.models import Source

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, COUNTER_PC, PHONE
from .test_booking_journey import _place

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"  # tests/factories.py
CODES = {"id": "JKT05", "en": "JKT06"}  # a branch per language: each books its first time
TEXT = {
    "id": {"locale": "id-ID", "too_early": "Masih terlalu awal untuk lapor kedatangan."},
    "en": {"locale": "en-US", "too_early": "It is too early to check in."},
}


@pytest.fixture(scope="module")
def branches(app):
    """Two branches open around the clock (one teller counter whose places can all be booked)
    and their manager; committed, so the server thread sees them."""
    with app.app_context(), pytest.MonkeyPatch.context() as mp:
        fast_passwords(mp)
        empty_database()
        zone, country = _place(datetime.now(UTC))
        made = []
        for code in CODES.values():
            branch = factories.branch(
                code,
                timezone=zone,
                country=country,
                services=[("teller", "A", 240)],
                counters=[("Teller 1", ["teller"])],
            )
            branch.name = "KCU Jakarta Sudirman"
            branch.opening_hours = ALWAYS_OPEN
            teller = factories.service(branch, "teller")
            teller.names = {"id": "Teller", "en": "Teller"}
            teller.bookable_percent = 100
            made.append(branch)
        factories.user("poster-manager", role=Role.BRANCH_MANAGER, branches=made)
        db.session.commit()
    yield CODES
    with app.app_context():
        empty_database()


def shoot(page, screenshot_dir, lang, step):
    page.screenshot(path=screenshot_dir / f"phone-checkin-{lang}-{step}.png", full_page=True)


def assert_fits(page):
    """Nothing sticks out sideways on the phone."""
    scroll_w, inner_w = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert scroll_w <= inner_w, f"{scroll_w}px wide in a {inner_w}px window"


def poster_link(open_tab, code, lang) -> str:
    """The "I'm here" link of the branch's entrance poster, as its manager prints it."""
    tab = open_tab(COUNTER_PC, locale=TEXT[lang]["locale"])
    page = tab.page
    tab.goto(f"/auth/login?lang={lang}")
    page.fill("#username", "poster-manager")
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    tab.goto(f"/b/{code}/poster")
    url = page.get_by_test_id("poster-here").locator("figure").get_attribute("data-url")
    assert re.search(rf"/b/{code}/here\?k=", url), url
    return "/" + unescape(url).split("://", 1)[-1].split("/", 1)[1]


def book(phone, code, lang, *, after: datetime | None = None, email: str) -> str:
    """Book a time of today on the phone (the first free one, or the first after `after`);
    returns the booking code."""
    page = phone.page
    phone.goto(f"/b/{code}/book/teller?lang={lang}")
    buttons = page.get_by_test_id("slots").locator("button[name=start]")
    expect(buttons.first).to_be_visible()
    chosen = None
    for i in range(buttons.count()):
        start = datetime.fromisoformat(buttons.nth(i).get_attribute("value"))
        if after is None or start > after:
            chosen = buttons.nth(i)
            break
    assert chosen is not None, "no free time of today fits"
    chosen.click()
    page.wait_for_url(re.compile(r"/details/"))
    page.fill("#name", "Siti Rahayu")
    page.fill("#email", email)
    page.locator("input[name=consent]").check()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/appointments/[^/]+/booked$"))
    return page.get_by_test_id("booking-code").inner_text()


def zone_of(app, code) -> str:
    with app.app_context():
        return db.session.scalar(select(Branch.timezone).where(Branch.code == code))


@dataclass(frozen=True)
class Booked:
    id: int
    status: AppointmentStatus
    start: datetime
    ticket_source: Source | None
    ticket_token: str | None
    ticket_number: str | None


def appointment_of(app, code) -> Booked:
    with app.app_context():
        a = db.session.scalar(select(Appointment).where(Appointment.code == code))
        t = a.ticket
        return Booked(
            a.id,
            a.status,
            a.start,
            t.source if t else None,
            t.token if t else None,
            t.number if t else None,
        )


@pytest.mark.parametrize("lang", ["id", "en"])
def test_book_then_check_in_on_the_phone_at_the_entrance(
    app, branches, open_tab, screenshot_dir, lang
):
    code = branches[lang]
    here = poster_link(open_tab, code, lang)
    phone = open_tab(PHONE, locale=TEXT[lang]["locale"])
    page = phone.page

    # 1. booked on the phone: today's first free time, minutes away; the page says how to
    # check in and when
    booking_code = book(phone, code, lang, email=f"siti.{lang}@example.co.id")
    section = page.get_by_test_id("checkin-today")
    expect(section).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("checkin-window")).to_be_visible()
    shoot(page, screenshot_dir, lang, "1-booked")
    assert_fits(page)

    # 2. at the entrance: the poster's link, opened on this phone, offers the check-in
    phone.goto(here)
    choice = page.get_by_test_id("appointment")
    expect(choice).to_have_attribute("data-state", "open")
    expect(choice.get_by_test_id("check-in")).to_contain_text("(Teller)")
    shoot(page, screenshot_dir, lang, "2-here")
    assert_fits(page)
    assert appointment_of(app, booking_code).status == AppointmentStatus.BOOKED

    # 3. checked in: the tracking page of its ticket
    choice.get_by_test_id("check-in").click()
    page.wait_for_url(re.compile(r"/t/[^/?]+$"))
    done = appointment_of(app, booking_code)
    assert done.status == AppointmentStatus.CHECKED_IN
    assert done.ticket_source == Source.APPOINTMENT
    assert page.url.endswith(f"/t/{done.ticket_token}")
    expect(page.get_by_text(done.ticket_number).first).to_be_visible()
    expect(page.locator(".flash")).to_be_visible()
    shoot(page, screenshot_dir, lang, "3-tracking")
    assert_fits(page)

    # 4. a second booking, an hour from now: too early, says from when
    later = book(
        phone,
        code,
        lang,
        after=datetime.now(UTC) + timedelta(minutes=45),
        email=f"siti.{lang}.later@example.co.id",
    )
    expect(page.get_by_test_id("checkin-today")).to_have_attribute("data-state", "early")
    later_id = appointment_of(app, later).id
    phone.goto(here)
    expect(page.get_by_test_id("appointment")).to_have_count(2)
    early = page.locator(f'[data-appointment="{later_id}"]')
    expect(early).to_have_attribute("data-state", "early")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        early.get_by_test_id("check-in").click()
    assert answer.value.status == 422
    error = page.get_by_test_id("error")
    expect(error).to_contain_text(TEXT[lang]["too_early"])
    opens = appointment_of(app, later).start - timedelta(minutes=30)  # the branch's default
    assert opens > datetime.now(UTC)
    clock = format_time(opens.astimezone(ZoneInfo(zone_of(app, code))), "short", locale=lang)
    expect(error).to_contain_text(clock.replace("\u202f", " "))
    shoot(page, screenshot_dir, lang, "4-too-early")
    assert_fits(page)
    assert appointment_of(app, later).status == AppointmentStatus.BOOKED
    # the first booking is shown as checked in, with its ticket
    expect(page.get_by_test_id("appointment-ticket")).to_be_visible()
    # the refused check-in is the only problem the page met
    problems = [p for p in phone.problems if "422" not in p]
    assert problems == [], phone.problems
