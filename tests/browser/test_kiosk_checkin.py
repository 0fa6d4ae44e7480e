"""Checking in a booking at the touch kiosk in a real browser, in Bahasa Indonesia and English,
on a portrait and a landscape screen: the booking code typed on the on-screen keypad gives the
ticket (number and QR code) on the ticket screen; a wrong code is answered on the same screen
in the kiosk's language; a late arrival at a walk-in branch is told so. Screenshots go to
`SCREENSHOT_DIR` (kiosk-<orientation>-<lang>-checkin-*).

The server runs on the real clock: the bookings are written around the moment the tests run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask_babel import force_locale
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.booking.models import Appointment, AppointmentStatus
from queue_app.customers.services import identify_customer
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import pair_device, register_device
from queue_app.extensions import db
from queue_app.kiosk.views import MESSAGES
from queue_app.tickets.models import Source

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN
from .test_kiosk import (
    LANGS,
    ORIENTATIONS,
    TEXT,
    assert_fits,
    assert_large_targets,
    assert_only,
    open_kiosk,
    shoot,
)

pytestmark = pytest.mark.browser

WRONG_CODE = "ZZ9ZZ9"
NOT_FOUND_LOGGED = (
    "console: Failed to load resource: the server responded with a status of 404 (NOT FOUND)"
)


@dataclass
class CheckInScene:
    token: str
    branch_id: int
    on_time: dict  # (orientation, lang) -> booking code, its window open now
    late: dict  # lang -> booking code whose window closed a few minutes ago


def _timezone(now: datetime) -> str:
    """Jakarta, unless it is just after midnight there: a booking started a few minutes ago
    must be of the same business day (else it is over, not late)."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo("Asia/Jakarta"))
    return "Asia/Jakarta" if local.hour or local.minute >= 10 else "Asia/Tokyo"


@pytest.fixture(scope="module")
def scene(app):
    """A branch open around the clock that takes late arrivals as walk-ins, a paired kiosk, and
    a booking per screen: in its check-in window now, or a few minutes past it."""
    with app.app_context(), pytest.MonkeyPatch.context() as mp:
        fast_passwords(mp)
        empty_database()
        now = datetime.now(UTC)
        branch = factories.branch("JKT01", timezone=_timezone(now), check_in_late_s=60)
        branch.name = "KCU Jakarta Sudirman"
        branch.opening_hours = ALWAYS_OPEN
        teller = factories.service(branch, "teller")
        teller.names = {"id": "Teller", "en": "Teller"}
        admin = factories.user("checkin-admin", role=Role.ADMIN)
        device, token = register_device(DeviceKind.KIOSK, now=now)
        pair_device(device.pairing_code, branch, admin, name="Kiosk lobby", now=now)
        customer = identify_customer(phone="0812-3456-7890", name="Siti Rahayu", region="ID")
        codes = iter(["K2M7QA", "K3N8RB", "K4P9SC", "K5Q2TD", "L6R3UE", "L7S4VF"])

        def booked(start):
            appointment = Appointment(
                code=next(codes),
                branch_id=branch.id,
                service_id=teller.id,
                start=start,
                end=start + timedelta(minutes=10),
                status=AppointmentStatus.BOOKED,
                customer=customer,
                name="Siti Rahayu",
                created_at=now - timedelta(days=1),
                booked_at=now - timedelta(days=1),
            )
            db.session.add(appointment)
            return appointment.code

        on_time = {
            (o, lang): booked(now + timedelta(minutes=10)) for o in ORIENTATIONS for lang in LANGS
        }
        late = {lang: booked(now - timedelta(minutes=3)) for lang in LANGS}
        db.session.commit()
        scene = CheckInScene(token, branch.id, on_time, late)
    yield scene
    with app.app_context():
        empty_database()


def message(app, lang, code) -> str:
    with app.app_context(), force_locale(lang):
        return str(MESSAGES[code])


def type_code(page, code):
    keypad = page.locator(".keypad")
    expect(keypad).to_be_visible()
    for key in code:
        keypad.locator(f'[data-key="{key}"]').click()


@dataclass
class Issued:
    number: str
    token: str
    source: Source
    due: datetime | None


def the_ticket(app, code) -> Issued:
    with app.app_context():
        appointment = db.session.scalar(select(Appointment).where(Appointment.code == code))
        assert appointment.status == AppointmentStatus.CHECKED_IN
        t = appointment.ticket
        issued = Issued(t.number, t.token, t.source, t.appointment_due_at)
        db.session.rollback()
        return issued


def to_booking_screen(page, lang):
    page.get_by_test_id(f"lang-{lang}").click()
    page.wait_for_url(re.compile(rf"/kiosk/{lang}/$"))
    page.wait_for_load_state("load")  # its script too: leaving earlier would abort it
    page.get_by_role("link", name=TEXT[lang]["booking"]).click()
    page.wait_for_url(re.compile(rf"/kiosk/{lang}/booking$"))
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT[lang]["booking"])


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_booking_code_gives_the_ticket(app, open_tab, scene, screenshot_dir, orientation, lang):
    text = TEXT[lang]
    tab = open_kiosk(open_tab, scene, ORIENTATIONS[orientation])
    page = tab.page
    shot = lambda step: shoot(page, screenshot_dir, orientation, lang, step)  # noqa: E731
    to_booking_screen(page, lang)

    # a code nobody booked: the same screen again, with why, in the kiosk's language
    type_code(page, WRONG_CODE)
    page.get_by_test_id("check-in").click()
    error = page.get_by_test_id("error")
    expect(error).to_have_text(message(app, lang, "unknown_booking"))
    expect(error).to_have_attribute("data-code", "unknown_booking")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#entry")).to_have_value(WRONG_CODE)
    shot("checkin-1-unknown-code")
    assert_fits(page)
    assert_large_targets(page)
    assert_only(page, lang)

    # the right code, typed again on the keypad: the ticket screen
    for _ in WRONG_CODE:
        page.locator('.keypad [data-key="back"]').click()
    expect(page.locator("#entry")).to_have_value("")
    code = scene.on_time[(orientation, lang)]
    type_code(page, code)
    shot("checkin-2-code")
    page.get_by_test_id("check-in").click()
    result = page.get_by_test_id("booking-result")
    expect(result).to_have_attribute("data-status", "checked_in")
    ticket = the_ticket(app, code)
    assert ticket.source == Source.APPOINTMENT and ticket.due is not None
    expect(page.get_by_test_id("ticket-number")).to_have_text(ticket.number)
    expect(page.get_by_role("heading", level=1)).to_have_text(text["your_number"])
    expect(page.locator(".ticket-qr svg")).to_be_visible()
    expect(page.get_by_test_id("qr")).to_have_attribute("data-url", re.compile(ticket.token))
    expect(page.get_by_test_id("print")).to_be_visible()
    shot("checkin-3-ticket")
    assert_fits(page)
    assert_large_targets(page)
    assert_only(page, lang)
    # only the wrong code was answered with an error (a 404, which Chromium also logs)
    expected = {f"HTTP 404: {tab.base_url}/kiosk/{lang}/booking", NOT_FOUND_LOGGED}
    assert set(tab.problems) == expected, tab.problems


@pytest.mark.parametrize("lang", LANGS)
def test_a_late_arrival_is_queued_as_a_walk_in_and_told_so(
    app, open_tab, scene, screenshot_dir, lang
):
    tab = open_kiosk(open_tab, scene, ORIENTATIONS["portrait"])
    page = tab.page
    to_booking_screen(page, lang)
    code = scene.late[lang]
    # typed as people do: lower case, with a dash
    page.locator("#entry").fill(f"{code[:3].lower()}-{code[3:].lower()}")
    page.get_by_test_id("check-in").click()
    expect(page.get_by_test_id("booking-result")).to_have_attribute("data-status", "late")
    ticket = the_ticket(app, code)
    assert ticket.source == Source.KIOSK and ticket.due is None
    expect(page.get_by_test_id("ticket-number")).to_have_text(ticket.number)
    shoot(page, screenshot_dir, "portrait", lang, "checkin-4-late")
    assert_fits(page)
    assert tab.problems == []
