"""The branch settings page in a real browser (Debian's Chromium) on a counter PC (1366x768)
and a phone, in Bahasa Indonesia and English: a branch manager changes the bookable share of
a service, saves, and sees the new share and the places per slot it makes.

The page's own words are located by ids and test ids: their translations come later.
Screenshots go to `SCREENSHOT_DIR`.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.branches.models import Branch, Counter, Service
from queue_app.extensions import db

from .. import factories
from ..conftest import empty_database
from .conftest import ALWAYS_OPEN, COUNTER_PC, PHONE

pytestmark = pytest.mark.browser

LOCALES = {"id": "id-ID", "en": "en-US"}
PASSWORD = "rahasia-123"
PAGE = "/admin/branches/JKT01/settings"
SIGN_IN = {
    "id": {"username": "Nama pengguna", "password": "Kata sandi", "button": "Masuk"},
    "en": {"username": "Username", "password": "Password", "button": "Sign in"},
}


@pytest.fixture(scope="module")
def settings_floor(app):
    """JKT01 with two tellers and a CS counter, its manager Dewi and an admin, committed for
    the server thread."""
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with app.app_context():
        empty_database()
        branch = factories.branch(
            "JKT01",
            counters=[
                ("Teller 1", ["teller"]),
                ("Teller 2", ["teller"]),
                ("CS 1", ["cs", "loans"]),
            ],
        )
        branch.name = "KCU Jakarta Sudirman"
        branch.opening_hours = ALWAYS_OPEN
        factories.user(
            "dewi.lestari", role=Role.BRANCH_MANAGER, branches=[branch], password=PASSWORD
        ).display_name = "Dewi Lestari"
        factories.user("admin", role=Role.ADMIN, password=PASSWORD).display_name = "Administrator"
        db.session.commit()
    yield
    mp.undo()
    with app.app_context():
        empty_database()


def stored_share(app, code: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(Service.bookable_percent)
            .join(Branch, Branch.id == Service.branch_id)
            .where(Branch.code == "JKT01", Service.code == code)
        )


def reset_shares(app) -> None:
    """Every service back to the default share (the module's tests share one branch)."""
    with app.app_context():
        for service in db.session.scalars(select(Service)):
            service.bookable_percent = 50
        db.session.commit()


def assert_fits(page):
    scroll_width, inner_width = page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"{scroll_width}px wide in a {inner_width}px window"


def sign_in(tab, username, lang, next_path=PAGE):
    tab.goto(f"/auth/login?lang={lang}&next={next_path}")
    page = tab.page
    words = SIGN_IN[lang]
    page.get_by_label(words["username"]).fill(username)
    page.get_by_label(words["password"]).fill(PASSWORD)
    page.get_by_role("button", name=words["button"]).click()
    page.wait_for_load_state()


@pytest.mark.parametrize(("lang", "percent", "places"), [("id", 100, "2"), ("en", 0, "0")])
def test_a_manager_changes_the_bookable_share_on_a_counter_pc(
    app, open_tab, settings_floor, screenshot_dir, lang, percent, places
):
    reset_shares(app)
    tab = open_tab(COUNTER_PC, locale=LOCALES[lang])
    sign_in(tab, "dewi.lestari", lang)
    page = tab.page
    assert page.url.endswith(PAGE), page.url
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_contain_text("KCU Jakarta Sudirman")
    share = page.locator("#bookable_percent-teller")
    expect(share).to_be_visible()
    expect(share).to_have_value("50")
    expect(page.get_by_test_id("capacity-teller")).to_have_text("1")
    # the two setting cards sit side by side on a counter PC
    early = page.locator("#check_in_early_min").bounding_box()
    places_box = page.locator("#remote_move_back_places").bounding_box()
    assert places_box["x"] > early["x"] + early["width"], (early, places_box)
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"branch-settings-pc-{lang}.png"), full_page=True)

    share.fill(str(percent))
    page.locator("[data-testid=settings-form] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator(".flash-success")).to_be_visible()
    expect(page.locator("#bookable_percent-teller")).to_have_value(str(percent))
    expect(page.get_by_test_id("capacity-teller")).to_have_text(places)
    assert stored_share(app, "teller") == percent
    assert stored_share(app, "cs") == 50
    assert_fits(page)
    page.screenshot(
        path=str(screenshot_dir / f"branch-settings-pc-{lang}-saved.png"), full_page=True
    )
    assert tab.problems == []


def test_an_admin_finds_the_page_from_the_devices_page(
    app, open_tab, settings_floor, screenshot_dir
):
    tab = open_tab(COUNTER_PC, locale="en-US")
    sign_in(tab, "admin", "en", next_path="/admin/devices")
    page = tab.page
    page.get_by_test_id("settings-links").get_by_role("link", name="JKT01").click()
    page.wait_for_load_state()
    assert page.url.endswith(PAGE), page.url
    # a refused value is shown next to its field; nothing is saved
    page.locator("#remote_move_back_limit").evaluate("e => { e.removeAttribute('max') }")
    page.locator("#remote_move_back_limit").fill("99")
    page.locator("[data-testid=settings-form] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#error-remote_move_back_limit")).to_be_visible()
    expect(page.locator("#remote_move_back_limit")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#settings-error")).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / "branch-settings-pc-en-error.png"), full_page=True)
    with app.app_context():
        limit = db.session.scalar(
            select(Branch.remote_move_back_limit).where(Branch.code == "JKT01")
        )
    assert limit == 2
    assert [p for p in tab.problems if "422" not in p] == []


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_page_fits_a_phone(open_tab, settings_floor, screenshot_dir, lang):
    tab = open_tab(PHONE, locale=LOCALES[lang])
    sign_in(tab, "dewi.lestari", lang)
    page = tab.page
    expect(page.locator("#bookable_percent-teller")).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"branch-settings-phone-{lang}.png"), full_page=True)
    assert tab.problems == []


def stored_plan(app, name: str):
    with app.app_context():
        return db.session.scalar(
            select(Counter.plan)
            .join(Branch, Branch.id == Counter.branch_id)
            .where(Branch.code == "JKT01", Counter.name == name)
        )


def counter_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Counter.id).where(Counter.name == name))


@pytest.mark.parametrize("lang", ["id", "en"])
def test_a_manager_plans_a_counters_hours_and_breaks_on_a_counter_pc(
    app, open_tab, settings_floor, screenshot_dir, lang
):
    with app.app_context():
        for counter in db.session.scalars(select(Counter)):
            counter.plan = None
        db.session.commit()
    tab = open_tab(COUNTER_PC, locale=LOCALES[lang])
    sign_in(tab, "dewi.lestari", lang)
    page = tab.page
    teller, cs = counter_id(app, "Teller 1"), counter_id(app, "CS 1")
    table = page.get_by_test_id("plans")
    expect(table).to_be_visible()
    page.locator(f"#plan-{teller}-mon-breaks").fill("12:00-12:30")
    page.locator(f"#plan-{teller}-fri-breaks").fill("11:30-13:00")
    page.locator(f"#plan-{cs}-mon-from").fill("08:00")
    page.locator(f"#plan-{cs}-mon-to").fill("14:00")
    page.locator(f"#plan-{cs}-mon-breaks").fill("12:30-13:00")
    page.locator("[data-testid=settings-form] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator(".flash-success")).to_be_visible()
    expect(page.locator(f"#plan-{cs}-mon-to")).to_have_value("14:00")
    assert stored_plan(app, "Teller 1") == {
        "mon": {"breaks": [["12:00", "12:30"]]},
        "fri": {"breaks": [["11:30", "13:00"]]},
    }
    assert stored_plan(app, "CS 1") == {
        "mon": {"hours": ["08:00", "14:00"], "breaks": [["12:30", "13:00"]]}
    }
    assert_fits(page)
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / f"branch-settings-plans-pc-{lang}.png"))
    # a break outside the counter's hours: refused next to its cell, nothing saved
    page.locator(f"#plan-{cs}-mon-breaks").fill("14:30-15:00")
    page.locator("[data-testid=settings-form] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator(f"#error-plan-{cs}-mon-breaks")).to_be_visible()
    expect(page.locator(f"#plan-{cs}-mon-breaks")).to_have_attribute("aria-invalid", "true")
    assert stored_plan(app, "CS 1")["mon"]["breaks"] == [["12:30", "13:00"]]
    assert_fits(page)
    page.locator(f"#plan-{cs}-mon-breaks").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / f"branch-settings-plans-pc-{lang}-error.png"))
    assert [p for p in tab.problems if "422" not in p] == []
