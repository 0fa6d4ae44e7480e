"""A whole branch morning across three pages open at once, in a real browser: a touch kiosk
issues tickets, a counter screen calls and serves them, and the lobby display shows every call
and queues its announcement (read through the speech queue's test hook). A recall is
announced again, a transfer sends the customer on to customer service with a note, the next
ticket is finished with an outcome; the counter's customer panel shows the history of the
returning customer the kiosk identified by phone. Bahasa Indonesia and English.

Nobody reloads a page: the counter and the display follow through the `/floor` socket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.customers.models import Customer
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import pair_device, register_device
from queue_app.extensions import db, socketio
from queue_app.realtime import pusher
from queue_app.tickets import services as engine
from queue_app.tickets.models import Ticket, TicketStatus

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, COUNTER_PC

pytestmark = pytest.mark.browser

KIOSK = {"width": 1080, "height": 1920}
TV = {"width": 1920, "height": 1080}
PASSWORD = "rahasia-123"
# what the customer types at the kiosk, and how the branch country writes it in full
PHONE = {"id": ("081234567890", "+6281234567890"), "en": ("09171234567", "+639171234567")}
SAY = {
    "id": "Nomor antrean {n}, silakan ke {c}",
    "en": "Ticket number {n}, please go to {c}",
}
RECALL = {
    "id": "Panggilan ulang, nomor antrean {n}, silakan ke {c}",
    "en": "Calling again, ticket number {n}, please go to {c}",
}
NO_TICKET = {"id": "Tidak ada tiket di loket.", "en": "No ticket at the counter."}
SERVING = {"id": "Sedang dilayani", "en": "In service"}
TEXT = {
    "id": {"take": "Ambil nomor antrean saya", "by_phone": "Dengan nomor ponsel saya"},
    "en": {"take": "Take my ticket", "by_phone": "With my phone number"},
}


def spelled(number: str) -> str:
    return " ".join(number)


@dataclass
class Floor:
    branch_id: int
    kiosk_token: str
    display_token: str
    counters: dict[str, int]


def build_floor(app, locale: str) -> Floor:
    """A branch speaking `locale`, open around the clock, with a teller and a CS counter, a
    member of staff, a returning customer with one earlier visit, a paired kiosk and a paired
    display, all committed so the live server sees them."""
    with app.app_context():
        empty_database()
        code = "JKT01" if locale == "id" else "MNL01"
        b = factories.branch(
            code,
            locale=locale,
            timezone="Asia/Jakarta" if locale == "id" else "Asia/Manila",
            country="ID" if locale == "id" else "PH",
            counters=[("Teller 1", ["teller"]), ("CS 1", ["cs"])],
        )
        b.name = "KCU Jakarta Sudirman" if locale == "id" else "Makati Ayala Branch"
        b.opening_hours = ALWAYS_OPEN
        admin = factories.user("floor-admin", role=Role.ADMIN)
        rina = factories.user("rina", branches=[b])
        rina.display_name = "Rina Wulandari"
        ayu = Customer(phone=PHONE[locale][1], name="Ayu Lestari", external_id="CIF-0042")
        db.session.add(ayu)
        db.session.flush()
        # Ayu came in January: a teller served her and noted what she did
        when = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
        teller_counter = factories.counter(b, "Teller 1")
        earlier = engine.issue_ticket(b, factories.service(b, "teller"), now=when, customer=ayu)
        engine.open_counter(teller_counter, rina, now=when)
        engine.call_ticket(earlier, teller_counter, rina, now=when + timedelta(minutes=1))
        engine.start(earlier, rina, now=when + timedelta(minutes=2))
        engine.finish(
            earlier,
            rina,
            now=when + timedelta(minutes=7),
            outcome="complaint",
            note="kartu tertelan",
        )
        engine.close_counter(teller_counter, rina, now=when + timedelta(minutes=8))
        now = datetime.now(UTC)
        kiosk, kiosk_token = register_device(DeviceKind.KIOSK, now=now)
        pair_device(kiosk.pairing_code, b, admin, name="Kiosk Lobi", now=now)
        display, display_token = register_device(DeviceKind.DISPLAY, now=now)
        pair_device(display.pairing_code, b, admin, name="Layar Lobi", now=now)
        db.session.commit()
        return Floor(
            branch_id=b.id,
            kiosk_token=kiosk_token,
            display_token=display_token,
            counters={c.name: c.id for c in b.counters},
        )


@pytest.fixture
def floor(app, monkeypatch):
    fast_passwords(monkeypatch)
    # the live server's Socket.IO server (the socket test client may have rebound the global)
    socketio.server = pusher(app).server
    made = []

    def make(locale):
        made.append(build_floor(app, locale))
        return made[-1]

    yield make
    with app.app_context():
        empty_database()


def take_ticket(kiosk, lang, *, phone=None) -> str:
    page = kiosk.page
    page.get_by_test_id(f"lang-{lang}").click()
    page.wait_for_url(re.compile(rf"/kiosk/{lang}/$"))
    page.locator('[data-service="teller"]').click()
    if phone:
        page.get_by_role("link", name=TEXT[lang]["by_phone"]).click()
        keypad = page.locator(".keypad")
        for digit in phone:
            keypad.locator(f'[data-key="{digit}"]').click()
        page.get_by_role("button", name=TEXT[lang]["take"]).click()
    else:
        page.get_by_test_id("skip").click()
    page.wait_for_url(re.compile(rf"/kiosk/{lang}/ticket/\d+$"))
    number = page.get_by_test_id("ticket-number").inner_text().strip()
    page.get_by_test_id("done").click()
    page.wait_for_url(re.compile(r"/kiosk/$"))
    return number


def announcements(display, count):
    display.page.wait_for_function(f"() => window.queueAnnouncer.log.length >= {count}")
    return display.page.evaluate("() => window.queueAnnouncer.log.map(e => ({...e}))")


@pytest.mark.parametrize("lang", ["id", "en"])
def test_a_branch_morning_across_kiosk_counter_and_display(
    lang, app, floor, open_tab, screenshot_dir
):
    f = floor(lang)
    browser_locale = "id-ID" if lang == "id" else "en-US"

    # the three pages, open side by side from the start
    display = open_tab(TV, locale=browser_locale)
    display.goto(f"/display/?device_token={f.display_token}")
    expect(display.page.get_by_test_id("status")).to_have_attribute(
        "data-state", "online", timeout=20_000
    )
    kiosk = open_tab(KIOSK, locale=browser_locale)
    kiosk.goto(f"/kiosk/?device_token={f.kiosk_token}")
    counter = open_tab(COUNTER_PC, locale=browser_locale)
    counter.goto(f"/auth/login?lang={lang}")
    counter.page.fill("#username", "rina")
    counter.page.fill("#password", PASSWORD)
    counter.page.locator("form:has(#password) [type=submit]").click()
    counter.page.wait_for_url(re.compile(r"/counter/"))
    counter.goto(f"/counter/{'JKT01' if lang == 'id' else 'MNL01'}/{f.counters['Teller 1']}/")
    c = counter.page
    c.get_by_test_id("btn-open").click()
    expect(c.get_by_test_id("connection")).to_have_text({"id": "Langsung", "en": "Live"}[lang])

    # the kiosk: Ayu gives her phone number, the next customer skips
    ayu = take_ticket(kiosk, lang, phone=PHONE[lang][0])
    walk_in = take_ticket(kiosk, lang)
    assert re.fullmatch(r"A\d{3}", ayu) and re.fullmatch(r"A\d{3}", walk_in) and ayu != walk_in
    waiting = c.get_by_test_id("waiting")
    expect(waiting.locator(f'[data-ticket="{ayu}"]')).to_be_visible()
    expect(waiting.locator(f'[data-ticket="{walk_in}"]')).to_be_visible()
    expect(display.page.get_by_test_id("waiting-teller")).to_contain_text("2")

    # the counter calls: Ayu, with her history; the display shows and announces it
    expect(c.get_by_test_id("btn-call-next")).to_be_enabled()
    c.keyboard.press("n")
    expect(c.get_by_test_id("current-number")).to_have_text(ayu)
    customer = c.get_by_test_id("customer")
    expect(customer.get_by_test_id("customer-name")).to_have_text("Ayu Lestari")
    history = customer.get_by_test_id("history")
    expect(history.locator(":scope > li")).to_have_count(1)
    expect(history).to_contain_text("kartu tertelan")
    expect(history).to_contain_text("Rina Wulandari")
    expect(display.page.get_by_test_id("now-number")).to_have_text(ayu)
    counter_name = display.page.get_by_test_id("now-counter").inner_text().strip()
    assert counter_name
    [called] = announcements(display, 1)
    assert called["text"] == SAY[lang].format(n=spelled(ayu), c=counter_name)
    c.screenshot(path=str(screenshot_dir / f"morning-{lang}-counter-called.png"))
    display.page.screenshot(path=str(screenshot_dir / f"morning-{lang}-display-called.png"))

    # she does not come: recall, announced again
    c.keyboard.press("r")
    log = announcements(display, 2)
    assert log[1]["kind"] == "recall"
    assert log[1]["text"] == RECALL[lang].format(n=spelled(ayu), c=counter_name)
    # the counter screen has the recall's answer too (a key pressed while an action is on its
    # way is ignored: one action at a time)
    expect(c.get_by_test_id("recalls")).to_contain_text(re.compile(r"\b1\b"))

    # she comes, but needs customer service: transfer with a note for the colleague
    c.keyboard.press("s")
    expect(c.get_by_test_id("current-status")).to_have_text(SERVING[lang])
    c.keyboard.press("t")
    c.get_by_test_id("transfer-service").select_option("cs")
    c.get_by_test_id("transfer-note").fill("mau ganti kartu ATM")
    c.get_by_test_id("transfer-submit").click()
    expect(c.get_by_test_id("toast")).to_contain_text(ayu)
    expect(c.get_by_test_id("current-ticket")).to_contain_text(NO_TICKET[lang])

    # the walk-in is next: called, served, finished with an outcome
    expect(c.get_by_test_id("btn-call-next")).to_be_enabled()
    c.keyboard.press("n")
    expect(c.get_by_test_id("current-number")).to_have_text(walk_in)
    expect(display.page.get_by_test_id("now-number")).to_have_text(walk_in)
    expect(display.page.get_by_test_id("recent")).to_contain_text(ayu)
    log = announcements(display, 3)
    assert log[2]["text"] == SAY[lang].format(n=spelled(walk_in), c=counter_name)
    c.keyboard.press("s")
    expect(c.get_by_test_id("current-status")).to_have_text(SERVING[lang])
    c.keyboard.press("f")
    c.get_by_test_id("outcome").select_option("served")
    c.get_by_test_id("finish-submit").click()
    expect(c.get_by_test_id("current-ticket")).to_contain_text(NO_TICKET[lang])
    display.page.screenshot(path=str(screenshot_dir / f"morning-{lang}-display-end.png"))

    # what the database says after the morning
    with app.app_context():
        tickets = {
            t.number: t
            for t in db.session.scalars(
                select(Ticket).where(
                    Ticket.branch_id == f.branch_id, Ticket.number.in_([ayu, walk_in])
                )
            )
        }
        moved = db.session.scalars(
            select(Ticket).where(Ticket.visit_id == tickets[ayu].visit_id).order_by(Ticket.id)
        ).all()
        assert tickets[walk_in].status == TicketStatus.FINISHED
        assert tickets[walk_in].outcome_code == "served"
        assert moved[-1].service.code == "cs" and moved[-1].status == TicketStatus.WAITING
        assert "mau ganti kartu ATM" in (moved[-1].handover_note or "")
        assert tickets[ayu].visit.customer.name == "Ayu Lestari"
    for name, tab in (("display", display), ("kiosk", kiosk), ("counter", counter)):
        assert tab.problems == [], (name, tab.problems)
