"""Sign-in page, pairing screen and the admin's devices page in a real browser (Debian's
Chromium), at the sizes they are used at: phone (390x844), counter PC (1366x768), lobby TV
(1920x1080) and portrait kiosk (1080x1920), in Bahasa Indonesia and English.

The pairing test runs the whole thing across two browsers: a display shows its code, an admin
pairs it on the devices page, and the display, polling every 3 s, reloads by itself.
Screenshots go to `SCREENSHOT_DIR`.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.extensions import db

from .. import factories
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, COUNTER_PC, PHONE

pytestmark = pytest.mark.browser

TV = {"width": 1920, "height": 1080}
KIOSK_PORTRAIT = {"width": 1080, "height": 1920}
SIZES = {"phone": PHONE, "pc": COUNTER_PC, "tv": TV, "kiosk": KIOSK_PORTRAIT}
LOCALES = {"id": "id-ID", "en": "en-US"}
PASSWORD = "rahasia-123"

TEXT = {
    "id": {
        "sign_in": "Masuk",
        "username": "Nama pengguna",
        "password": "Kata sandi",
        "pair_title": "Pasangkan perangkat ini",
        "paired": "Perangkat ini sudah terpasang",
        "devices": "Perangkat",
        "pair_button": "Pasangkan",
        "paired_flash": "sudah dipasangkan dengan",
    },
    "en": {
        "sign_in": "Sign in",
        "username": "Username",
        "password": "Password",
        "pair_title": "Pair this device",
        "paired": "This device is paired",
        "devices": "Devices",
        "pair_button": "Pair",
        "paired_flash": "is paired with",
    },
}


@pytest.fixture(scope="module")
def staff_floor(app):
    """JKT01 open all day, an admin and a staff member, committed for the server thread.
    Argon2 runs with small costs while this module runs (the hashes are still checked)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with app.app_context():
        empty_database()
        branch = factories.branch("JKT01")
        branch.name = "KCU Jakarta Sudirman"
        branch.opening_hours = ALWAYS_OPEN
        factories.user("admin", role=Role.ADMIN, password=PASSWORD).display_name = "Administrator"
        factories.user(
            "budi.santoso", branches=[branch], password=PASSWORD
        ).display_name = "Budi Santoso"
        db.session.commit()
    yield
    mp.undo()
    with app.app_context():
        empty_database()


def assert_fits(page):
    scroll_width, inner_width = page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"{scroll_width}px wide in a {inner_width}px window"


def assert_in_view(page, locator):
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 0.5, box


def sign_in(tab, username, lang="id", next_path="/admin/devices"):
    tab.goto(f"/auth/login?lang={lang}&next={next_path}")
    page = tab.page
    page.get_by_label(TEXT[lang]["username"]).fill(username)
    page.get_by_label(TEXT[lang]["password"]).fill(PASSWORD)
    page.get_by_role("button", name=TEXT[lang]["sign_in"]).click()
    page.wait_for_load_state()


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", SIZES)
def test_the_sign_in_page(open_tab, staff_floor, screenshot_dir, size, lang):
    tab = open_tab(SIZES[size], locale=LOCALES[lang])
    tab.goto(f"/auth/login?lang={lang}")
    page = tab.page
    text = TEXT[lang]
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(text["sign_in"])
    username = page.get_by_label(text["username"])
    expect(username).to_be_focused()
    expect(page.get_by_label(text["password"])).to_have_attribute("type", "password")
    button = page.get_by_role("button", name=text["sign_in"])
    expect(button).to_be_visible()
    assert_in_view(page, button)
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"signin-{size}-{lang}.png"), full_page=True)
    assert tab.problems == []

    username.fill("budi.santoso")
    page.get_by_label(text["password"]).fill(PASSWORD)
    button.click()
    page.wait_for_load_state()
    assert "/auth/login" not in page.url, page.url
    tab.goto("/")
    expect(page.get_by_test_id("signed-in-as")).to_have_text("Budi Santoso")
    assert_fits(page)
    # signing out again, with the header's button (a POST with the CSRF token)
    page.get_by_role("button", name="Keluar" if lang == "id" else "Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["sign_in"])
    expect(page.locator(".flash")).to_be_visible()


def test_a_wrong_password_shows_the_message_next_to_the_form(open_tab, staff_floor, screenshot_dir):
    tab = open_tab(PHONE)
    tab.goto("/auth/login")
    page = tab.page
    page.get_by_label("Nama pengguna").fill("budi.santoso")
    page.get_by_label("Kata sandi").fill("bukan-ini")
    page.get_by_role("button", name="Masuk").click()
    expect(page.get_by_role("alert")).to_have_text("Nama pengguna atau kata sandi salah.")
    expect(page.get_by_label("Nama pengguna")).to_have_value("budi.santoso")
    expect(page.get_by_label("Kata sandi")).to_be_focused()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / "signin-phone-id-error.png"), full_page=True)
    assert [p for p in tab.problems if "401" not in p] == []


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", SIZES)
def test_the_pairing_screen(open_tab, staff_floor, screenshot_dir, size, lang):
    kind = "kiosk" if size in ("kiosk", "phone") else "display"
    tab = open_tab(SIZES[size], locale=LOCALES[lang])
    tab.goto(f"/devices/{kind}/")
    page = tab.page
    code = page.get_by_test_id("pairing-code")
    expect(code).to_have_text(re.compile(r"^[2-9A-Z]{3} [2-9A-Z]{3}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT[lang]["pair_title"])
    other = "en" if lang == "id" else "id"
    expect(page.locator(".pairing-title")).to_have_text(TEXT[other]["pair_title"])
    # read from across the room: the code is big, and everything fits on one screen
    height = code.bounding_box()["height"]
    minimum = {"phone": 40, "pc": 70, "tv": 110, "kiosk": 110}[size]
    assert height >= minimum, f"pairing code only {height}px high"
    assert_in_view(page, code)
    assert_in_view(page, page.get_by_test_id("pairing-status"))
    assert_fits(page)
    # an unattended screen has no links to wander off
    expect(page.locator("header a")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / f"pairing-{size}-{lang}.png"))
    assert tab.problems == []


def test_an_admin_pairs_a_display_and_the_display_reloads_by_itself(
    open_tab, staff_floor, screenshot_dir
):
    screen = open_tab(TV)
    screen.goto("/devices/display/")
    code = screen.page.get_by_test_id("pairing-code").inner_text()

    admin = open_tab(COUNTER_PC, locale="en-US")
    sign_in(admin, "admin", lang="en")
    page = admin.page
    assert page.url.endswith("/admin/devices")
    expect(page.get_by_role("heading", level=1)).to_have_text("Devices")
    expect(page.locator("tr[data-state=pending]").first).to_be_visible()
    page.get_by_label("Pairing code").fill(code.replace(" ", "").lower())
    page.get_by_label("Branch").select_option(label="JKT01 · KCU Jakarta Sudirman")
    page.get_by_label("Name of the device").fill("Layar Lobi")
    page.get_by_role("button", name="Pair", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("is paired with KCU Jakarta Sudirman")
    expect(page.locator("tr[data-state=paired]")).to_contain_text("Layar Lobi")
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / "admin-devices-pc-en.png"), full_page=True)

    # the display polls every 3 s and reloads once paired
    expect(screen.page.get_by_test_id("device-paired")).to_be_visible(timeout=10_000)
    expect(screen.page.get_by_role("heading", level=1)).to_have_text(TEXT["id"]["paired"])
    screen.page.screenshot(path=str(screenshot_dir / "paired-tv-id.png"))

    # revoked: the next visit shows a pairing screen again
    page.get_by_role("button", name="Revoke Layar Lobi").click()
    expect(page.locator("tr[data-state=revoked]")).to_contain_text("Layar Lobi")
    screen.goto("/devices/display/")
    expect(screen.page.get_by_test_id("pairing-code")).not_to_have_text(code)
    assert screen.problems == [] and admin.problems == []


def test_the_devices_page_on_a_phone(open_tab, staff_floor, screenshot_dir):
    open_tab(PHONE).goto("/devices/kiosk/")  # a device waiting to be paired
    tab = open_tab(PHONE)
    sign_in(tab, "admin")
    page = tab.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Perangkat")
    expect(page.get_by_role("button", name="Pasangkan", exact=True)).to_be_visible()
    expect(page.locator("tr[data-state]").first).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / "admin-devices-phone-id.png"), full_page=True)
    assert tab.problems == []
