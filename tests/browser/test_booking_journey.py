"""A booked visit from start to end in a real browser, in Bahasa Indonesia and English: on a
phone (390x844) the customer chooses a service, a day and a time, fills in the form and gets
the confirmation; the confirmation e-mail arrives at a real SMTP server (aiosmtpd) when the
outbox job runs; with the booking code read from that e-mail the customer checks in at a
paired kiosk, is called at the counter, and is served. On the way, every booking page (and the
manage pages the e-mail's link opens) is photographed at 390x844, to `SCREENSHOT_DIR`
(booking-<lang>-*.png).

The server runs on the real clock, like tests/browser/test_kiosk_checkin.py: the branch is
open around the clock in a zone where it is neither just before nor just after midnight, in a
country that has no public holiday today, so the first free time of today is minutes away
and its check-in window is open at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.booking.models import Appointment, AppointmentStatus, BranchClosure
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import pair_device, register_device
from queue_app.extensions import db
from queue_app.tickets.models import Source, Ticket, TicketStatus

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from ..outboxes import deliver_outbox
from .conftest import ALWAYS_OPEN, PHONE
from .test_counter import TEXT as COUNTER_TEXT
from .test_counter import sign_in
from .test_kiosk import ORIENTATIONS
from .test_kiosk_checkin import to_booking_screen, type_code

pytestmark = pytest.mark.browser

PLACES = [("Asia/Jakarta", "ID"), ("Asia/Manila", "PH"), ("Asia/Almaty", "KZ")]
TEXT = {
    "id": {
        "code_line": r"Kode pemesanan: ([A-Z0-9]{6})",
        "date": "Tanggal",
    },
    "en": {
        "code_line": r"Booking code: ([A-Z0-9]{6})",
        "date": "Date",
    },
}


def _place(now: datetime) -> tuple[str, str]:
    """A zone where it is between 01:00 and 22:00 now and a country with no holiday today
    there: today has free times in the next minutes."""
    for zone, country in PLACES:
        local = now.astimezone(ZoneInfo(zone))
        if 1 <= local.hour < 22 and local.date() not in holidays.country_holidays(country):
            return zone, country
    raise AssertionError(f"no zone of {PLACES} fits {now.isoformat()}")  # pragma: no cover


@dataclass
class Journey:
    token: str  # the paired kiosk's device token
    branch_id: int
    closed_day: date  # a branch closure


@pytest.fixture(scope="module")
def journey(app):
    """JKT01, open around the clock, one teller counter whose places can all be booked, a
    member of staff, and a paired kiosk; committed, so the server thread sees them."""
    with app.app_context(), pytest.MonkeyPatch.context() as mp:
        fast_passwords(mp)
        empty_database()
        now = datetime.now(UTC)
        zone, country = _place(now)
        branch = factories.branch(
            "JKT01",
            timezone=zone,
            country=country,
            services=[("teller", "A", 240)],
            counters=[("Teller 1", ["teller"])],
        )
        branch.name = "KCU Jakarta Sudirman"
        branch.address = "Jl. Jend. Sudirman Kav. 1"
        branch.city = "Jakarta"
        branch.opening_hours = ALWAYS_OPEN
        teller = factories.service(branch, "teller")
        teller.names = {"id": "Teller", "en": "Teller"}
        teller.bookable_percent = 100
        # tomorrow the branch is closed (in its own calendar)
        tomorrow = branch.business_day(now) + timedelta(days=1)
        db.session.add(BranchClosure(branch=branch, day=tomorrow, reason="Renovasi"))
        factories.user("budi", branches=[branch])
        admin = factories.user("journey-admin", role=Role.ADMIN)
        device, token = register_device(DeviceKind.KIOSK, now=now)
        pair_device(device.pairing_code, branch, admin, name="Kiosk lobby", now=now)
        db.session.commit()
        scene = Journey(token, branch.id, tomorrow)
    yield scene
    with app.app_context():
        empty_database()


def shoot(page, screenshot_dir, lang, step):
    page.screenshot(path=screenshot_dir / f"booking-{lang}-{step}.png", full_page=True)


def assert_fits(page):
    """Nothing sticks out sideways on the phone."""
    scroll_w, inner_w = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert scroll_w <= inner_w, f"{scroll_w}px wide in a {inner_w}px window"


def appointment_of(app, code) -> Appointment:
    with app.app_context():
        a = db.session.scalar(select(Appointment).where(Appointment.code == code))
        db.session.expunge_all()
        return a


def ticket_of(app, code) -> Ticket:
    with app.app_context():
        a = db.session.scalar(select(Appointment).where(Appointment.code == code))
        ticket = a.ticket
        db.session.expunge_all()
        return ticket


@pytest.mark.parametrize("lang", ["id", "en"])
def test_book_on_the_phone_check_in_at_the_kiosk_and_be_served(
    app, journey, open_tab, smtp, screenshot_dir, lang
):
    shot = lambda step: shoot(page, screenshot_dir, lang, step)  # noqa: E731
    phone = open_tab(PHONE, locale="id-ID" if lang == "id" else "en-US")
    page = phone.page

    # 1. the services of the branch that can be booked
    phone.goto(f"/b/JKT01/book?lang={lang}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_test_id("branch-name")).to_have_text("KCU Jakarta Sudirman")
    shot("1-services")
    assert_fits(page)
    page.locator('[data-service="teller"]').click()

    # 2. today is chosen; its first free time is minutes away
    page.wait_for_url(re.compile(r"/b/JKT01/book/teller$"))
    days = page.get_by_test_id("days")
    expect(days.locator("[aria-current=date]")).to_have_count(1)
    buttons = page.get_by_test_id("slots").locator("button[name=start]")
    first = buttons.first
    expect(first).to_be_visible()
    start = datetime.fromisoformat(first.get_attribute("value"))
    now = datetime.now(UTC)
    assert now < start <= now + timedelta(minutes=30), start
    shot("2-slots")
    assert_fits(page)
    # the journey reaches the cancel page (open only while the time is ahead) a minute or two
    # from now: a time that starts sooner could pass on the way; one within the check-in
    # window (30 min before) is still checked in at the kiosk
    starts = [datetime.fromisoformat(v) for v in buttons.evaluate_all("bs => bs.map(b => b.value)")]
    pick = next(i for i, s in enumerate(starts) if s >= now + timedelta(minutes=5))
    start = starts[pick]  # the time booked
    assert start <= now + timedelta(minutes=25), start
    buttons.nth(pick).click()

    # 3. the form, while the time is kept (the countdown runs)
    page.wait_for_url(re.compile(r"/details/"))
    countdown = page.get_by_test_id("countdown")
    expect(countdown.locator(".bk-clock")).to_have_text(re.compile(r"^(10:00|9:5\d)$"))
    page.fill("#name", "Siti Rahayu")
    page.fill("#email", f"siti.{lang}@example.co.id")
    page.locator("input[name=consent]").check()
    shot("3-details")
    assert_fits(page)
    page.get_by_test_id("confirm").click()

    # 4. the confirmation: the code, its QR code, the calendar file, the manage link
    page.wait_for_url(re.compile(r"/appointments/[^/]+/booked$"))
    code = page.get_by_test_id("booking-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{6}", code)
    expect(page.get_by_test_id("booking-qr").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("ics")).to_have_attribute("href", re.compile(r"calendar\.ics$"))
    shot("4-booked")
    assert_fits(page)
    booked = appointment_of(app, code)
    assert booked.status == AppointmentStatus.BOOKED and booked.start == start.astimezone(UTC)
    with page.expect_download() as download:
        page.get_by_test_id("ics").click()
    with open(download.value.path(), encoding="utf-8") as ics:
        assert f"UID:{code}@" in ics.read()

    # 5. the confirmation e-mail at the SMTP server, once the outbox job has run
    counts = deliver_outbox(app, datetime.now(UTC))
    assert counts["sent"] == 1, counts
    [mail] = smtp.wait_for(1)
    assert mail["To"] == f"siti.{lang}@example.co.id"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    mailed_code = re.search(TEXT[lang]["code_line"], text).group(1)
    assert mailed_code == code
    parts = {part.get_content_type() for part in mail.walk()}
    assert {"image/png", "text/calendar"} <= parts  # the QR code (inline) and the .ics
    manage_link = re.search(r"https?://\S+/appointments/[\w\-.]+", text).group(0)

    # 6. the e-mail's link opens the booking, with the ways to change it (not used here)
    path = "/appointments/" + manage_link.rsplit("/appointments/", 1)[1]
    phone.goto(path)
    expect(page.get_by_test_id("status")).to_have_attribute("data-status", "booked")
    expect(page.get_by_test_id("booking-code")).to_have_text(code)
    shot("5-manage")
    assert_fits(page)
    page.get_by_test_id("reschedule").click()
    page.wait_for_url(re.compile(r"/reschedule$"))
    expect(page.locator(".bk-slot-current")).to_have_count(1)
    shot("6-reschedule")
    assert_fits(page)
    phone.goto(f"{path}/cancel")
    expect(page.get_by_test_id("cancel-confirm")).to_be_visible()
    shot("7-cancel")
    assert_fits(page)
    # a link that was tampered with says so
    response = page.goto(phone.base_url + path[:-4] + "abcd")
    assert response.status == 404
    expect(page.get_by_test_id("message")).to_have_attribute("data-code", "invalid_link")
    shot("8-invalid-link")
    phone.problems.remove(f"HTTP 404: {phone.base_url}{path[:-4]}abcd")
    phone.problems[:] = [p for p in phone.problems if "status of 404" not in p]
    assert phone.problems == [], phone.problems

    # 7. at the branch: the kiosk checks in the code from the e-mail
    kiosk = open_tab(ORIENTATIONS["portrait"])
    kiosk.goto(f"/kiosk/?device_token={journey.token}")
    kpage = kiosk.page
    to_booking_screen(kpage, lang)
    type_code(kpage, mailed_code)
    kpage.get_by_test_id("check-in").click()
    expect(kpage.get_by_test_id("booking-result")).to_have_attribute("data-status", "checked_in")
    ticket = ticket_of(app, code)
    assert ticket.source == Source.APPOINTMENT and ticket.appointment_due_at is not None
    expect(kpage.get_by_test_id("ticket-number")).to_have_text(ticket.number)
    assert kiosk.problems == [], kiosk.problems

    # 8. the counter calls the checked-in appointment, serves and finishes it
    counter = open_tab({"width": 1366, "height": 768}, locale="id-ID")
    sign_in(counter, "budi", lang)
    cpage = counter.page
    with app.app_context():
        from queue_app.branches.models import Counter

        counter_id = db.session.scalar(
            select(Counter.id).where(Counter.branch_id == journey.branch_id)
        )
    card = cpage.locator(f'[data-counter="{counter_id}"]')
    expect(card).to_be_visible()
    opener = card.locator("button[type=submit]")
    if opener.count():  # closed: open it
        opener.click()
    else:  # still open by budi from the other language's journey
        counter.goto(f"/counter/JKT01/{counter_id}/")
    cpage.wait_for_url(re.compile(rf"/counter/JKT01/{counter_id}/$"))
    expect(cpage.get_by_test_id("counter-status")).to_have_text(COUNTER_TEXT[lang]["open"])
    expect(cpage.get_by_test_id("btn-call-next")).to_be_enabled()
    cpage.keyboard.press("n")
    expect(cpage.get_by_test_id("current-number")).to_have_text(ticket.number)
    expect(cpage.get_by_test_id("current-status")).to_have_text(COUNTER_TEXT[lang]["called"])
    cpage.keyboard.press("s")
    expect(cpage.get_by_test_id("current-status")).to_have_text(COUNTER_TEXT[lang]["serving"])
    cpage.keyboard.press("f")
    expect(cpage.locator("#cs-dlg-finish")).to_be_visible()
    cpage.get_by_test_id("outcome").select_option(index=1)
    cpage.get_by_test_id("finish-submit").click()
    expect(cpage.locator("#cs-dlg-finish")).to_be_hidden()
    with app.app_context():
        served = db.session.get(Ticket, ticket.id)
        assert served.status == TicketStatus.FINISHED
        assert served.called_at is not None and served.finished_at is not None
    assert counter.problems == [], counter.problems


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_phone_pages_say_what_went_wrong(app, journey, open_tab, screenshot_dir, lang):
    """A closed day in the strip, a form sent without what is needed, and a hold that lapsed
    while the form was open: each is said on the page, and it still fits the phone."""
    shot = lambda step: shoot(page, screenshot_dir, lang, step)  # noqa: E731
    phone = open_tab(PHONE, locale="id-ID" if lang == "id" else "en-US")
    page = phone.page

    # the closure, chosen in the strip: why, and no times
    phone.goto(f"/b/JKT01/book/teller?lang={lang}")
    closed = page.locator(f'.bk-day[data-date="{journey.closed_day.isoformat()}"]')
    expect(closed).to_have_attribute("data-closed", "Renovasi")
    phone.goto(f"/b/JKT01/book/teller?date={journey.closed_day.isoformat()}")
    expect(page.get_by_test_id("closed-reason")).to_contain_text("Renovasi")
    expect(page.get_by_test_id("slots")).to_have_count(0)
    shot("9-closed-day")
    assert_fits(page)

    # the form sent empty: what is missing, next to its field
    phone.goto("/b/JKT01/book/teller")
    page.get_by_test_id("slots").locator("button[name=start]").first.click()
    page.wait_for_url(re.compile(r"/details/"))
    page.get_by_test_id("confirm").click()
    expect(page.locator("#name-error")).to_be_visible()
    expect(page.get_by_test_id("contact-error")).to_be_visible()
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    shot("10-form-errors")
    assert_fits(page)

    # the hold lapses while the form is open: the times again, with why
    with app.app_context():
        held = db.session.scalar(
            select(Appointment)
            .where(Appointment.status == AppointmentStatus.HELD)
            .order_by(Appointment.id.desc())
            .limit(1)
        )
        held.hold_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    page.fill("#name", "Budi Santoso")
    # the branch may be in the Philippines or Kazakhstan (by the hour): an international number
    page.fill("#phone", "+62 812-3456-7890")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("error")).to_be_visible()
    expect(page.get_by_test_id("slots").locator("button[name=start]").first).to_be_visible()
    shot("11-hold-lapsed")
    assert_fits(page)
    # only the answers that said so were errors (422 for the form, 409 for the lapse)
    assert {p.split(":")[0] for p in phone.problems} <= {"HTTP 422", "HTTP 409", "console"}
