"""The counter screen in a real browser (Debian's Chromium) at 1366x768 and 1920x1080, in
Bahasa Indonesia and English: sign in, open a counter, call with the keyboard, recall, start,
finish with an outcome, call from the list, hold and resume, transfer with a note, break and
close; the customer panel shows a returning customer's history; the waiting list updates by
itself when a kiosk issues a ticket; someone else's counter is shown but cannot be operated.

Screenshots go to the conftest's folder (`SCREENSHOT_DIR`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.tickets import services as engine

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, COUNTER_PC

pytestmark = pytest.mark.browser

FULL_HD = {"width": 1920, "height": 1080}
PASSWORD = "rahasia-123"

TEXT = {
    "id": {
        "open_this": "Buka loket ini",
        "open": "Buka",
        "paused": "Istirahat",
        "closed": "Tutup",
        "called": "Dipanggil",
        "serving": "Sedang dilayani",
        "recalls": "Panggilan ulang: 1 dari 3",
        "no_ticket": "Tidak ada tiket di loket.",
        "history": "Kunjungan sebelumnya",
        "no_ratings": "Belum ada penilaian yang tercatat.",
        "anonymous": "Nasabah tidak teridentifikasi.",
        "outcome_past": "Keluhan dicatat",
        "handover": "Catatan dari rekan:",
        "operated_by": "Loket ini dioperasikan oleh",
        "live": "Langsung",
        "legend": "panggil berikutnya",
        "elderly": "Lansia",
    },
    "en": {
        "open_this": "Open this counter",
        "open": "Open",
        "paused": "Paused",
        "closed": "Closed",
        "called": "Called",
        "serving": "In service",
        "recalls": "Recalls: 1 of 3",
        "no_ticket": "No ticket at the counter.",
        "history": "Earlier visits",
        "no_ratings": "No ratings recorded yet.",
        "anonymous": "Customer not identified.",
        "outcome_past": "Complaint recorded",
        "handover": "Note from colleague:",
        "operated_by": "This counter is operated by",
        "live": "Live",
        "legend": "call next",
        "elderly": "Elderly",
    },
}


class Branch:
    """JKT01 with two teller counters and a CS counter, two members of staff, a returning
    customer with two earlier visits, committed so the server thread sees them."""

    def __init__(self, app):
        self.app = app
        with app.app_context():
            empty_database()
            b = factories.branch(
                "JKT01",
                counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs"])],
            )
            b.name = "KCU Jakarta Sudirman"
            b.opening_hours = ALWAYS_OPEN
            budi = factories.user("budi", branches=[b])
            budi.display_name = "Budi Santoso"
            siti = factories.user("siti", branches=[b])
            siti.display_name = "Siti Rahayu"
            ayu = Customer(phone="+6281234567890", name="Ayu Lestari", external_id="CIF-0042")
            db.session.add(ayu)
            db.session.flush()
            teller2 = factories.counter(b, "Teller 2")
            teller = factories.service(b, "teller")
            for when, outcome, note in (
                (datetime(2026, 1, 5, 2, 0, tzinfo=UTC), "cash_deposit", "setor tunai"),
                (datetime(2026, 2, 9, 3, 0, tzinfo=UTC), "complaint", "kartu tertelan ATM"),
            ):
                t = engine.issue_ticket(b, teller, now=when, customer=ayu)
                engine.open_counter(teller2, siti, now=when)
                engine.call_ticket(t, teller2, siti, now=when + timedelta(minutes=1))
                engine.start(t, siti, now=when + timedelta(minutes=2))
                engine.finish(t, siti, now=when + timedelta(minutes=8), outcome=outcome, note=note)
                engine.close_counter(teller2, siti, now=when + timedelta(minutes=9))
            db.session.commit()
            self.branch_id = b.id
            self.customer_id = ayu.id
            self.counters = {c.name: c.id for c in b.counters}
            # Ayu (elderly: first in line under the strict policy) and two more
            self.numbers = [self.issue(customer=ayu, priority="elderly")]
            self.numbers.append(self.issue())
            self.numbers.append(self.issue())

    def issue(self, service="teller", customer=None, priority=None):
        from queue_app.branches.models import Branch as BranchModel
        from queue_app.tickets.models import Priority

        with self.app.app_context():
            b = db.session.get(BranchModel, self.branch_id)
            kwargs = {"customer": db.session.get(Customer, customer.id)} if customer else {}
            if priority:
                kwargs["priority"] = Priority(priority)
            t = engine.issue_ticket(
                b, factories.service(b, service), now=datetime.now(UTC), **kwargs
            )
            db.session.commit()
            return t.number


@pytest.fixture
def branch(app, monkeypatch):
    fast_passwords(monkeypatch)
    yield Branch(app)
    with app.app_context():
        empty_database()


def sign_in(tab, username, lang):
    tab.goto(f"/auth/login?lang={lang}")
    page = tab.page
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(re.compile(r"/counter/"))


def shot(page, screenshot_dir, name):
    page.screenshot(path=str(screenshot_dir / name), full_page=False)


def assert_fits(page):
    """Nothing sticks out sideways at this desktop size."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


@pytest.mark.parametrize("lang", ["id", "en"])
def test_a_morning_at_the_counter(branch, open_tab, lang, screenshot_dir):
    # `branch` first: its teardown (emptying the database) runs after the browser has closed
    T = TEXT[lang]
    first, second, third = branch.numbers
    tab = open_tab(COUNTER_PC, locale="id-ID" if lang == "id" else "en-US")
    page = tab.page
    sign_in(tab, "budi", lang)
    shot(page, screenshot_dir, f"counter-{lang}-1366x768-picker.png")

    # the picker: open Teller 1
    page.locator(f'[data-counter="{branch.counters["Teller 1"]}"]').get_by_role(
        "button", name=T["open_this"]
    ).click()
    page.wait_for_url(re.compile(r"/counter/JKT01/\d+/$"))
    expect(page.get_by_test_id("counter-status")).to_have_text(T["open"])
    expect(page.get_by_test_id("staff")).to_have_text("Budi Santoso")
    expect(page.get_by_test_id("current-ticket")).to_contain_text(T["no_ticket"])
    waiting = page.get_by_test_id("waiting")
    for number in (first, second, third):
        expect(waiting.locator(f'[data-ticket="{number}"]')).to_be_visible()
    expect(waiting.locator(f'[data-ticket="{first}"]')).to_contain_text(T["elderly"])
    expect(page.get_by_test_id("legend")).to_contain_text(T["legend"])
    expect(page.get_by_test_id("connection")).to_have_text(T["live"])
    # the waiting time ticks in the browser
    wait_cell = waiting.locator(f'[data-ticket="{third}"] .cs-item-wait')
    before = wait_cell.inner_text()
    page.wait_for_timeout(2200)
    assert wait_cell.inner_text() != before
    assert_fits(page)
    shot(page, screenshot_dir, f"counter-{lang}-1366x768-open.png")

    # N: call next -> Ayu, with her history
    expect(page.get_by_test_id("btn-call-next")).to_be_enabled()
    page.keyboard.press("n")
    expect(page.get_by_test_id("current-number")).to_have_text(first)
    expect(page.get_by_test_id("current-status")).to_have_text(T["called"])
    customer = page.get_by_test_id("customer")
    expect(customer.get_by_test_id("customer-name")).to_have_text("Ayu Lestari")
    expect(customer.get_by_test_id("customer-phone")).to_have_text("+62 812 •••• 7890")
    expect(customer.get_by_test_id("customer-number")).to_have_text("CIF-0042")
    expect(customer).to_contain_text(T["history"])
    history = customer.get_by_test_id("history")
    expect(history.locator(":scope > li")).to_have_count(2)
    expect(history.locator(":scope > li").first).to_contain_text("KCU Jakarta Sudirman")
    expect(history.locator(":scope > li").first).to_contain_text(T["outcome_past"])
    expect(history.locator(":scope > li").first).to_contain_text("kartu tertelan ATM")
    expect(history.locator(":scope > li").first).to_contain_text("Siti Rahayu")
    expect(customer.get_by_test_id("ratings")).to_have_text(T["no_ratings"])
    expect(waiting.locator(f'[data-ticket="{first}"]')).to_have_count(0)
    shot(page, screenshot_dir, f"counter-{lang}-1366x768-customer.png")

    # R: recall, shown against the limit; S: start; F: finish with an outcome and a note
    page.keyboard.press("r")
    expect(page.get_by_test_id("recalls")).to_contain_text(T["recalls"])
    page.keyboard.press("s")
    expect(page.get_by_test_id("current-status")).to_have_text(T["serving"])
    page.keyboard.press("f")
    dialog = page.locator("#cs-dlg-finish")
    expect(dialog).to_be_visible()
    page.get_by_test_id("outcome").select_option("information")
    note = page.get_by_test_id("finish-note")
    note.fill("")
    note.type("n s f")  # typing in a field fires no shortcut
    expect(page.get_by_test_id("current-number")).to_have_text(first)
    shot(page, screenshot_dir, f"counter-{lang}-1366x768-finish.png")
    page.get_by_test_id("finish-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("current-ticket")).to_contain_text(T["no_ticket"])

    # call a particular ticket from the list, hold it (H), resume it, call it again
    page.get_by_test_id(f"call-{third}").click()
    expect(page.get_by_test_id("current-number")).to_have_text(third)
    page.keyboard.press("h")
    expect(page.get_by_test_id("held")).to_contain_text(third)
    expect(page.get_by_test_id("current-ticket")).to_contain_text(T["no_ticket"])
    page.get_by_test_id(f"resume-{third}").click()
    expect(page.get_by_test_id("held")).to_be_hidden()
    expect(waiting.locator('[data-group="targeted"]')).to_contain_text(third)
    expect(page.get_by_test_id("btn-call-next")).to_be_enabled()
    page.keyboard.press("n")  # sent back to this counter: first in line for it
    expect(page.get_by_test_id("current-number")).to_have_text(third)

    # T: transfer to customer service with a note for the colleague
    page.keyboard.press("t")
    page.get_by_test_id("transfer-service").select_option("cs")
    page.get_by_test_id("transfer-note").fill("mau ganti kartu ATM")
    shot(page, screenshot_dir, f"counter-{lang}-1366x768-transfer.png")
    page.get_by_test_id("transfer-submit").click()
    expect(page.get_by_test_id("toast")).to_contain_text(third)
    expect(page.get_by_test_id("current-ticket")).to_contain_text(T["no_ticket"])

    # a kiosk issues a ticket meanwhile: the waiting list shows it without a reload, pushed
    # through the /floor socket (connected, the page polls only every 30 s)
    expect(page.get_by_test_id("connection")).to_have_text(T["live"])
    new = branch.issue()
    expect(waiting.locator(f'[data-ticket="{new}"]')).to_be_visible(timeout=5000)

    # 1920x1080
    page.set_viewport_size(FULL_HD)
    expect(page.get_by_test_id("btn-call-next")).to_be_enabled()
    page.keyboard.press("n")
    expect(page.get_by_test_id("current-number")).to_have_text(second)
    assert_fits(page)
    shot(page, screenshot_dir, f"counter-{lang}-1920x1080-called.png")
    page.keyboard.press("s")
    expect(page.get_by_test_id("current-status")).to_have_text(T["serving"])
    page.keyboard.press("f")
    page.get_by_test_id("outcome").select_option("served")
    page.get_by_test_id("finish-submit").click()
    expect(page.get_by_test_id("current-ticket")).to_contain_text(T["no_ticket"])

    # P: a break with a reason, open again, close
    page.keyboard.press("p")
    page.get_by_test_id("pause-reason").select_option("prayer")
    page.get_by_test_id("pause-text").fill("Dzuhur")
    page.get_by_test_id("pause-submit").click()
    expect(page.get_by_test_id("counter-status")).to_contain_text(T["paused"])
    expect(page.get_by_test_id("counter-status")).to_contain_text("Dzuhur")
    expect(page.get_by_test_id("customer")).not_to_contain_text(T["anonymous"])
    expect(page.get_by_test_id("btn-call-next")).to_be_disabled()
    shot(page, screenshot_dir, f"counter-{lang}-1920x1080-paused.png")
    page.get_by_test_id("btn-open").click()
    expect(page.get_by_test_id("counter-status")).to_have_text(T["open"])
    page.get_by_test_id("btn-close").click()
    expect(page.get_by_test_id("counter-status")).to_have_text(T["closed"])
    assert tab.problems == []


def test_the_transferred_ticket_shows_the_note_and_others_cannot_operate(
    branch, open_tab, screenshot_dir
):
    first = branch.numbers[0]
    budi = open_tab(COUNTER_PC, locale="en-US")
    sign_in(budi, "budi", "en")
    budi.goto(f"/counter/JKT01/{branch.counters['Teller 1']}/")
    budi.page.get_by_test_id("btn-open").click()
    expect(budi.page.get_by_test_id("counter-status")).to_have_text("Open")
    expect(budi.page.get_by_test_id("btn-call-next")).to_be_enabled()
    budi.page.keyboard.press("n")
    expect(budi.page.get_by_test_id("current-number")).to_have_text(first)

    # Siti watches Teller 1: shown, not operable
    siti = open_tab(COUNTER_PC, locale="en-US")
    sign_in(siti, "siti", "en")
    siti.goto(f"/counter/JKT01/{branch.counters['Teller 1']}/")
    expect(siti.page.get_by_test_id("banner")).to_contain_text(TEXT["en"]["operated_by"])
    expect(siti.page.get_by_test_id("banner")).to_contain_text("Budi Santoso")
    for action in ("open", "recall", "start", "hold", "transfer", "call-next"):
        expect(siti.page.get_by_test_id(f"btn-{action}")).to_be_disabled()

    # Budi transfers to CS with a note; Siti opens CS 1 and sees it in her list
    budi.page.keyboard.press("t")
    budi.page.get_by_test_id("transfer-service").select_option("cs")
    budi.page.get_by_test_id("transfer-note").fill("wants a new ATM card, KTP checked")
    budi.page.get_by_test_id("transfer-submit").click()
    expect(budi.page.get_by_test_id("current-ticket")).to_contain_text("No ticket")
    siti.goto(f"/counter/JKT01/{branch.counters['CS 1']}/")
    siti.page.get_by_test_id("btn-open").click()
    expect(siti.page.get_by_test_id("counter-status")).to_have_text("Open")
    item = siti.page.get_by_test_id("waiting").locator(f'[data-ticket="{first}"]')
    expect(item).to_contain_text("Transferred")
    expect(item).to_contain_text("wants a new ATM card, KTP checked")
    expect(siti.page.get_by_test_id("btn-call-next")).to_be_enabled()
    siti.page.keyboard.press("n")
    expect(siti.page.get_by_test_id("current-handover")).to_contain_text("KTP checked")
    # the history shows the earlier visits, not the one in progress
    expect(siti.page.get_by_test_id("history").locator(":scope > li")).to_have_count(2)
    shot(siti.page, screenshot_dir, "counter-en-1366x768-transferred-in.png")
    # (leaving a page aborts its background read of the state: the tab keeps that apart)
    assert budi.problems == []
    assert siti.problems == []


def test_an_answer_older_than_the_screen_does_not_take_it_back(branch, open_tab):
    """The screen reads its state again after every change of the branch. A read sent before an
    action whose answer comes back after the action's own answer (answers overtake each other on
    separate connections) is older than what the screen shows: it is dropped, else the ticket just
    started would show as called again until the next change or poll."""
    first = branch.numbers[0]
    tab = open_tab(COUNTER_PC, locale="en-US")
    page = tab.page
    sign_in(tab, "budi", "en")
    tab.goto(f"/counter/JKT01/{branch.counters['Teller 1']}/")
    page.get_by_test_id("btn-open").click()
    expect(page.get_by_test_id("counter-status")).to_have_text("Open")
    expect(page.get_by_test_id("btn-call-next")).to_be_enabled()
    page.keyboard.press("n")
    expect(page.get_by_test_id("current-number")).to_have_text(first)
    expect(page.get_by_test_id("current-status")).to_have_text("Called")

    # a read of the state is answered by the server now ("called") and delivered late
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(re.compile(r"/state$"), hold_the_first)
    page.evaluate("() => { window.lateRead = window.CounterScreen.refresh(); }")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    route, stale = held[0]
    assert stale.json()["active"]["status"] == "called"

    # meanwhile the ticket is started: the action's answer and the change after it are shown
    page.keyboard.press("s")
    expect(page.get_by_test_id("current-status")).to_have_text("In service")
    route.fulfill(response=stale)
    page.evaluate("() => window.lateRead")  # the late answer has been handled
    assert page.get_by_test_id("current-status").inner_text() == "In service"
    expect(page.get_by_test_id("btn-finish")).to_be_enabled()
    assert tab.problems == []


def test_a_change_elsewhere_in_the_branch_is_not_read_again(branch, open_tab):
    """Every counter screen of the branch hears every change. It reads its state again only for
    a change that can alter what it shows and that it cannot apply from the push itself: a
    customer-service ticket does not concern a teller counter; a teller walk-in joining its list
    and a teller ticket called at another counter (leaving it) are applied from the push; a
    start at another counter changes nothing here; another teller counter opening is read.
    After all that the screen shows what a fresh read of the server says."""
    tab = open_tab(COUNTER_PC, locale="en-US")
    page = tab.page
    frames, reads = [], []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    page.on("request", lambda r: reads.append(r.url) if r.url.endswith("/state") else None)
    sign_in(tab, "budi", "en")
    tab.goto(f"/counter/JKT01/{branch.counters['Teller 1']}/")
    page.get_by_test_id("btn-open").click()
    expect(page.get_by_test_id("counter-status")).to_have_text("Open")
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    page.wait_for_timeout(500)  # the read after opening, if any, is over
    waiting = page.get_by_test_id("waiting")

    def heard(*parts):
        for _ in range(100):
            if any('"change"' in str(f) and all(p in str(f) for p in parts) for f in frames):
                return True
            page.wait_for_timeout(50)
        return False

    def listed():
        return waiting.locator("[data-ticket]").evaluate_all(
            "items => items.map(i => i.dataset.ticket)"
        )

    def at_counter(step, number=None, counter="Teller 2", username="siti"):
        from queue_app.accounts.models import User
        from queue_app.branches.models import Branch as BranchModel
        from queue_app.tickets.models import Ticket

        with branch.app.app_context():
            b = db.session.get(BranchModel, branch.branch_id)
            who = db.session.scalar(db.select(User).where(User.username == username))
            at = factories.counter(b, counter)
            ticket = db.session.scalar(  # today's: earlier days had the same numbers
                db.select(Ticket)
                .where(Ticket.number == (number or teller))
                .order_by(Ticket.id.desc())
                .limit(1)
            )
            now = datetime.now(UTC)
            if step == "open":
                engine.open_counter(at, who, now=now)
            elif step == "call":
                engine.call_ticket(ticket, at, who, now=now)
            else:
                engine.start(ticket, who, now=now)
            db.session.commit()

    reads.clear()
    cs = branch.issue("cs")
    assert heard(f'"{cs}"'), "the screen heard the customer-service ticket"
    page.wait_for_timeout(1000)  # well past the screen's 150 ms before a read
    assert reads == []

    # a teller walk-in joins the list at its end, from the push
    teller = branch.issue("teller")
    expect(waiting.locator(f'[data-ticket="{teller}"]')).to_be_visible()
    assert listed() == [*branch.numbers, teller]
    expect(page.get_by_test_id("waiting-count")).to_have_text("(4)")
    page.wait_for_timeout(1000)
    assert reads == []

    # Teller 2 opens: a counter of this service, read
    at_counter("open")
    for _ in range(100):
        if reads:
            break
        page.wait_for_timeout(50)
    assert len(reads) == 1
    page.wait_for_timeout(500)

    # called at Teller 2: it leaves this counter's list, from the push
    reads.clear()
    at_counter("call")
    expect(waiting.locator(f'[data-ticket="{teller}"]')).to_have_count(0)
    expect(page.get_by_test_id("waiting-count")).to_have_text("(3)")

    # started there: nothing this screen shows changes
    at_counter("start")
    assert heard(f'"{teller}"', '"serving"'), "the screen heard the start at Teller 2"
    page.wait_for_timeout(1000)
    assert reads == []

    # what the screen shows is what the server says
    shown = page.evaluate("() => window.CounterScreen.state()")
    fresh = page.evaluate(
        "url => fetch(url, {headers: {Accept: 'application/json'}}).then(r => r.json())",
        f"/counter/JKT01/{branch.counters['Teller 1']}/state",
    )

    def same_instants(groups):  # the push writes UTC as "Z", the state as "+00:00"
        return [
            {
                **g,
                "tickets": [
                    {
                        k: datetime.fromisoformat(v) if k.endswith(("_at", "_since")) and v else v
                        for k, v in t.items()
                    }
                    for t in g["tickets"]
                ],
            }
            for g in groups
        ]

    assert shown["seq"] == fresh["seq"]
    assert same_instants(shown["waiting"]) == same_instants(fresh["waiting"])
    assert shown["waiting_count"] == fresh["waiting_count"] == 3

    # a ticket of the list called at this counter from elsewhere (the API, another tab): it
    # leaves the list, and the screen reads what is at its counter now
    first = branch.numbers[0]
    at_counter("call", first, counter="Teller 1", username="budi")
    expect(page.get_by_test_id("current-number")).to_have_text(first)
    expect(page.get_by_test_id("current-status")).to_have_text("Called")
    expect(waiting.locator(f'[data-ticket="{first}"]')).to_have_count(0)
    # one snapshot, the one the server sent on connecting; none asked for since (the test has
    # run longer than the 5 s after which a connection without one asks)
    floor = page.evaluate("({...QueueFloor.last.state})")
    assert (floor["snapshots"], floor["requested"], floor["gaps"]) == (1, 0, 0), floor
    assert tab.problems == []
