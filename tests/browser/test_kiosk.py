"""The touch kiosk in a real browser: the whole flow in Bahasa Indonesia and English, on a
portrait (1080x1920) and a landscape (1920x1080) screen, the keypad, printing (only the ticket,
on 80 mm paper), the automatic return to the start screen, a double tap, and the flow with
JavaScript off. Screenshots of every step go to `SCREENSHOT_DIR` (kiosk-<orientation>-<lang>-*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.demo.data import ID_SERVICES
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import pair_device, register_device
from queue_app.extensions import db
from queue_app.tickets.models import Ticket

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, NEVER_OPEN

pytestmark = pytest.mark.browser

ORIENTATIONS = {
    "portrait": {"width": 1080, "height": 1920},
    "landscape": {"width": 1920, "height": 1080},
}
LANGS = ("id", "en")
MIN_TARGET_PX = 72  # every touch target is at least this high (and wide)

TEXT = {
    "id": {
        "welcome": "Selamat datang",
        "choose": "Pilih layanan",
        "segments": ["Transaksi", "Rekening, kredit, dan kartu", "Nasabah prioritas"],
        "cs": "Layanan Nasabah",
        "identify": "Apakah Anda ingin memberi tahu siapa Anda?",
        "by_phone": "Dengan nomor ponsel saya",
        "phone_label": "Nomor ponsel Anda",
        "take": "Ambil nomor antrean saya",
        "your_number": "Nomor antrean Anda",
        "ahead": "Orang di depan Anda",
        "wait": "Perkiraan waktu tunggu",
        "print": "Cetak nomor antrean",
        "booking": "Saya punya janji temu",
        "closed": "Cabang sedang tutup",
        "bad_phone": "Nomor telepon itu tidak valid",
    },
    "en": {
        "welcome": "Welcome",
        "choose": "Choose a service",
        "segments": ["Transactions", "Accounts, loans and cards", "Priority banking"],
        "cs": "Customer Service",
        "identify": "Would you like to tell us who you are?",
        "by_phone": "With my phone number",
        "phone_label": "Your phone number",
        "take": "Take my ticket",
        "your_number": "Your number",
        "ahead": "People ahead of you",
        "wait": "Estimated wait",
        "print": "Print ticket",
        "booking": "I have a booking",
        "closed": "The branch is closed",
        "bad_phone": "That is not a valid phone number",
    },
}
# words of one language that must not show in the other
FOREIGN = {
    "id": ["Choose", "Service", "Welcome", "Your number", "Print", "Skip", "Start over", "waiting"],
    "en": ["Pilih", "Layanan", "Selamat", "Nomor", "Cetak", "Lewati", "Mulai", "menunggu"],
}


@dataclass
class KioskScene:
    token: str
    branch_id: int


@pytest.fixture(scope="module")
def scene(app):
    """JKT01 as in the demo (six services in three segments), open around the clock, one
    teller counter open (so the estimate is a number), and a paired kiosk."""
    with app.app_context(), pytest.MonkeyPatch.context() as mp:
        fast_passwords(mp)
        empty_database()
        now = datetime.now(UTC)
        branch = factories.branch(
            "JKT01",
            services=[(code, prefix, duration) for code, prefix, *_, duration, _t in ID_SERVICES],
            counters=[("Teller 1", ["teller"]), ("CS 1", ["cs", "cards"])],
        )
        branch.name = "KCU Jakarta Sudirman"
        branch.opening_hours = ALWAYS_OPEN
        for service, (code, _p, name_id, name_en, segment, _d, _t) in zip(
            branch.services, ID_SERVICES, strict=True
        ):
            assert service.code == code
            service.names = {"id": name_id, "en": name_en}
            service.name = name_id
            service.segment = segment
        admin = factories.user("kiosk-admin", role=Role.ADMIN)
        staff = factories.user("kiosk-teller", branches=[branch])
        factories.open_counter(factories.counter(branch, "Teller 1"), staff, now=now)
        device, token = register_device(DeviceKind.KIOSK, now=now)
        pair_device(device.pairing_code, branch, admin, name="Kiosk lobby", now=now)
        db.session.commit()
        scene = KioskScene(token=token, branch_id=branch.id)
    yield scene
    with app.app_context():
        empty_database()


def wait_words(app, lang):
    """The estimator's range ("8-9 min", waits/text.py) in `lang`, whichever of its three
    wordings the queue of the moment gives (`waits.present.range_patterns`)."""
    from flask_babel import force_locale

    from queue_app.waits.present import range_patterns

    with app.test_request_context(), force_locale(lang):
        words = range_patterns()
    forms = [
        re.escape(w).replace(r"\{low\}", r"\d+").replace(r"\{high\}", r"\d+")
        for w in words.values()
    ]
    return re.compile(r"^\s*(" + "|".join(forms) + r")\s*$")


def ticket_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Ticket))


def open_kiosk(open_tab, scene, viewport, **context_options):
    tab = open_tab(viewport)
    if context_options:  # a context of its own (JavaScript off ...)
        tab.context.close()
        context = tab.context.browser.new_context(
            viewport=viewport, locale="id-ID", **context_options
        )
        context.set_default_timeout(10_000)
        from .conftest import Tab

        tab = Tab(context, tab.base_url)
    tab.goto(f"/kiosk/?device_token={scene.token}")
    return tab


def assert_fits(page, *, vertically=True):
    """Nothing sticks out sideways; with `vertically`, the step fits the screen without
    scrolling (a kiosk has no scroll bar anyone would find)."""
    scroll_w, scroll_h, inner_w, inner_h = page.evaluate(
        "[document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight,"
        " window.innerWidth, window.innerHeight]"
    )
    assert scroll_w <= inner_w, f"{scroll_w}px wide in a {inner_w}px window"
    if vertically:
        assert scroll_h <= inner_h, f"{scroll_h}px high in a {inner_h}px window"


def assert_large_targets(page):
    small = page.evaluate(
        """(min) => [...document.querySelectorAll('a, button, input:not([type=hidden])')]
          .filter(e => e.offsetParent !== null)
          .map(e => [e.textContent.trim() || e.getAttribute('aria-label') || e.name,
                     e.getBoundingClientRect()])
          .filter(([, r]) => r.height < min || r.width < min)
          .map(([t, r]) => `${t}: ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        MIN_TARGET_PX,
    )
    assert small == [], f"touch targets smaller than {MIN_TARGET_PX}px: {small}"


def assert_only(page, lang):
    body = page.locator("body").inner_text()
    for word in FOREIGN[lang]:
        assert not re.search(rf"\b{word}\b", body), f"{word!r} on the {lang} screen:\n{body}"


def shoot(page, screenshot_dir, orientation, lang, step):
    page.screenshot(path=screenshot_dir / f"kiosk-{orientation}-{lang}-{step}.png")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_the_whole_touch_flow(app, open_tab, scene, screenshot_dir, orientation, lang):
    text = TEXT[lang]
    tab = open_kiosk(open_tab, scene, ORIENTATIONS[orientation])
    page = tab.page
    shot = lambda step: shoot(page, screenshot_dir, orientation, lang, step)  # noqa: E731

    # 1. start: the branch's language (Indonesian), both languages offered
    expect(page.locator("html")).to_have_attribute("lang", "id")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["id"]["welcome"])
    shot("1-start")
    assert_fits(page)
    assert_large_targets(page)
    page.get_by_test_id(f"lang-{lang}").click()

    # 2. services grouped by segment
    page.wait_for_url(re.compile(rf"/kiosk/{lang}/$"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(text["choose"])
    expect(page.locator("h2")).to_have_text(text["segments"])
    expect(page.locator("[data-service]")).to_have_count(6)
    expect(page.locator('[data-service="cs"] .service-name')).to_have_text(text["cs"])
    shot("2-services")
    assert_fits(page)
    assert_large_targets(page)
    assert_only(page, lang)
    page.locator('[data-service="teller"]').click()

    # 3. identify (optional): phone number with the on-screen keypad
    expect(page.get_by_role("heading", level=1)).to_have_text(text["identify"])
    shot("3-identify")
    assert_fits(page)
    assert_large_targets(page)
    assert_only(page, lang)
    page.get_by_role("link", name=text["by_phone"]).click()
    expect(page.get_by_label(text["phone_label"])).to_be_visible()
    keypad = page.locator(".keypad")
    expect(keypad).to_be_visible()
    for digit in "0812":
        keypad.locator(f'[data-key="{digit}"]').click()
    page.get_by_role("button", name=text["take"]).click()
    # a number too short: asked again, in the same language, on the same screen
    expect(page.get_by_test_id("error")).to_contain_text(text["bad_phone"])
    shot("4-phone-error")
    assert_fits(page)
    keypad.locator('[data-key="clear"]').click()
    for digit in "08123456789":
        keypad.locator(f'[data-key="{digit}"]').click()
    keypad.locator('[data-key="back"]').click()
    for digit in "90":
        keypad.locator(f'[data-key="{digit}"]').click()
    expect(page.get_by_label(text["phone_label"])).to_have_value("081234567890")
    shot("4-phone")
    assert_fits(page)
    assert_large_targets(page)
    assert_only(page, lang)
    before = ticket_count(app)
    page.get_by_role("button", name=text["take"]).click()

    # 4. the ticket
    page.wait_for_url(re.compile(rf"/kiosk/{lang}/ticket/\d+$"))
    ticket = page.get_by_test_id("ticket")
    expect(page.get_by_test_id("ticket-number")).to_have_text(re.compile(r"^A\d{3}$"))
    expect(ticket).to_contain_text(text["your_number"])
    expect(ticket).to_contain_text(text["ahead"])
    expect(page.get_by_test_id("wait")).to_have_text(wait_words(app, lang))
    qr = page.locator(".ticket-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 300, box  # scannable from a phone
    number_box = page.get_by_test_id("ticket-number").bounding_box()
    assert number_box["height"] >= 150, number_box  # very large
    expect(page.get_by_role("button", name=text["print"])).to_be_visible()
    assert ticket_count(app) == before + 1
    shot("5-ticket")
    assert_fits(page)
    assert_large_targets(page)
    assert_only(page, lang)

    # printing: only the ticket, on 80 mm paper
    page.emulate_media(media="print")
    expect(ticket).to_be_visible()
    expect(page.get_by_test_id("ticket-number")).to_be_visible()
    expect(qr).to_be_visible()
    for hidden in (".kiosk-bar", ".ticket-actions", "[data-testid=print]", "[data-testid=done]"):
        expect(page.locator(hidden)).to_be_hidden()
    visible_outside = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
          .filter(e => !e.closest('#ticket') && !e.contains(document.getElementById('ticket')))
          .filter(e => e.checkVisibility() && e.getBoundingClientRect().height > 0)
          .map(e => e.tagName + '.' + e.className)"""
    )
    assert visible_outside == [], visible_outside
    width_mm = page.evaluate("document.getElementById('ticket').getBoundingClientRect().width")
    assert width_mm <= 80 / 25.4 * 96, width_mm  # narrower than the paper
    shot("6-print")
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    media_box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert media_box, "no page size in the PDF"
    assert abs(float(media_box.group(1)) - 80 / 25.4 * 72) < 1, media_box.group(0)
    assert (
        pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type/Page/") <= 1
        or b"/Count 1" in pdf
    ), "the ticket prints on one page"
    page.emulate_media(media="screen")

    # 5. done: back to the start, in the branch's language again
    page.get_by_test_id("done").click()
    page.wait_for_url(re.compile(r"/kiosk/$"))
    expect(page.locator("html")).to_have_attribute("lang", "id")
    # the one 4xx of the flow is the number refused on purpose above
    expected = [
        f"HTTP 422: {tab.base_url}/kiosk/{lang}/tickets",
        "console: Failed to load resource: the server responded with a status of 422 "
        "(UNPROCESSABLE ENTITY)",
    ]
    assert sorted(tab.problems) == sorted(expected), tab.problems


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_the_ticket_screen_and_idle_steps_return_to_the_start_by_themselves(
    app, open_tab, scene, screenshot_dir, orientation, monkeypatch
):
    monkeypatch.setitem(app.config, "KIOSK_TICKET_RETURN_S", 3)
    monkeypatch.setitem(app.config, "KIOSK_IDLE_RETURN_S", 2)
    tab = open_kiosk(open_tab, scene, ORIENTATIONS[orientation])
    page = tab.page
    page.get_by_test_id("lang-en").click()
    page.locator('[data-service="cs"]').click()
    page.get_by_test_id("skip").click()
    page.wait_for_url(re.compile(r"/kiosk/en/ticket/\d+$"))
    expect(page.locator(".countdown")).to_contain_text("Back to the start in")
    # nobody touches the screen: the start screen, in Indonesian again, within ~3 s
    page.wait_for_url(re.compile(r"/kiosk/$"), timeout=8_000)
    expect(page.locator("html")).to_have_attribute("lang", "id")
    # the start screen itself stays put (it would reload under a customer's finger)
    page.evaluate("window.stillHere = true")
    page.wait_for_timeout(3_000)
    assert page.evaluate("window.stillHere === true"), "the start screen reloaded itself"
    # a customer who walks away in the middle of a step
    page.get_by_test_id("lang-en").click()
    page.wait_for_url(re.compile(r"/kiosk/en/$"))
    page.wait_for_url(re.compile(r"/kiosk/$"), timeout=6_000)
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["id"]["welcome"])
    assert tab.problems == []


def test_a_double_tap_issues_one_ticket(app, open_tab, scene):
    tab = open_kiosk(open_tab, scene, ORIENTATIONS["portrait"])
    page = tab.page
    page.get_by_test_id("lang-id").click()
    page.locator('[data-service="forex"]').click()
    before = ticket_count(app)
    page.get_by_test_id("skip").dblclick()
    page.wait_for_url(re.compile(r"/kiosk/id/ticket/\d+$"))
    expect(page.get_by_test_id("ticket-number")).to_have_text(re.compile(r"^E\d{3}$"))
    assert ticket_count(app) == before + 1
    assert tab.problems == []


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_without_javascript_a_ticket_is_still_issued(
    app, open_tab, scene, screenshot_dir, orientation
):
    tab = open_kiosk(open_tab, scene, ORIENTATIONS[orientation], java_script_enabled=False)
    page = tab.page
    page.get_by_test_id("lang-en").click()
    page.locator('[data-service="loans"]').click()
    page.get_by_test_id("by-phone").click()
    expect(page.locator(".keypad")).to_be_hidden()  # the keypad needs JavaScript
    page.get_by_label("Your phone number").fill("0812 7777 8888")
    page.get_by_role("button", name="Take my ticket").click()
    page.wait_for_url(re.compile(r"/kiosk/en/ticket/\d+$"))
    expect(page.get_by_test_id("ticket-number")).to_have_text(re.compile(r"^C\d{3}$"))
    expect(page.get_by_test_id("print")).to_be_hidden()  # printing needs JavaScript
    expect(page.locator(".ticket-qr svg")).to_be_visible()
    shoot(page, screenshot_dir, orientation, "en", "nojs-ticket")
    assert tab.problems == []


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_closed_branch_shows_the_closed_screen(app, open_tab, scene, screenshot_dir, orientation):
    from queue_app.branches.models import Branch

    with app.app_context():
        db.session.get(Branch, scene.branch_id).opening_hours = NEVER_OPEN
        db.session.commit()
    try:
        tab = open_kiosk(open_tab, scene, ORIENTATIONS[orientation])
        page = tab.page
        expect(page.get_by_test_id("closed")).to_contain_text(TEXT["id"]["closed"])
        assert_fits(page)
        shoot(page, screenshot_dir, orientation, "id", "closed")
        page.get_by_test_id("switch-en").click()
        expect(page.get_by_test_id("closed")).to_contain_text(TEXT["en"]["closed"])
        shoot(page, screenshot_dir, orientation, "en", "closed")
        assert tab.problems == []
    finally:
        with app.app_context():
            db.session.get(Branch, scene.branch_id).opening_hours = ALWAYS_OPEN
            db.session.commit()
