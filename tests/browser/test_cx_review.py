"""The weekly review page (`/cx/review`) in a real browser (Debian's Chromium) at a PC's
1366x768, in Bahasa Indonesia and English: the Pareto chart and its table, week navigation,
the groupings, printing, the CSV download. Screenshots go to `SCREENSHOT_DIR`.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.cases.models import CaseStatus, RootCause
from queue_app.extensions import db

from .. import factories
from ..conftest import empty_database
from ..test_review import Builder, wib
from .conftest import COUNTER_PC

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"
LOCALES = {"id": "id-ID", "en": "en-US"}
TEXT = {
    "id": {"username": "Nama pengguna", "password": "Kata sandi", "sign_in": "Masuk"},
    "en": {"username": "Username", "password": "Password", "sign_in": "Sign in"},
}
PAGE = "/cx/review?week=2026-W48&branch=JKT01"


@pytest.fixture(scope="module")
def review_data(app):
    """W48 at JKT01: seven cases (3 people/attitude, 2 process/waiting, 1 place, 1 open),
    negative answers with reasons and comments, a manager; committed for the server."""
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with app.app_context():
        empty_database()
        build = Builder(factories)
        jkt = factories.branch("JKT01")
        jkt.name = "KCU Jakarta Sudirman"
        factories.user(
            "dewi", role=Role.BRANCH_MANAGER, branches=[jkt], password=PASSWORD
        ).display_name = "Dewi Lestari"
        P, R = RootCause.PEOPLE, RootCause.PROCESS
        for day_, cause, reason in (
            (23, P, "staff_attitude"),
            (24, P, "staff_attitude"),
            (25, P, "staff_attitude"),
            (25, R, "waiting_time"),
            (26, R, "waiting_time"),
            (27, RootCause.PLACE, "facilities"),
        ):
            opened = wib(2026, 11, day_, 10, 0)
            contact = opened + timedelta(hours=5)
            build.case(jkt, opened, cause=cause, reason=reason, first_contact_at=contact)
        build.case(jkt, wib(2026, 11, 28, 10, 0), status=CaseStatus.ACKNOWLEDGED)
        comments = [
            "Antrean sangat lama, hampir satu jam menunggu padahal hanya setor tunai.",
            "Petugas kurang ramah dan tidak menjelaskan biaya administrasi.",
            "AC di ruang tunggu mati, panas sekali.",
        ]
        for i, (nps, reasons, comment) in enumerate(
            (
                (2, ["waiting_time"], comments[0]),
                (4, ["waiting_time", "staff_attitude"], comments[1]),
                (5, ["facilities"], comments[2]),
                (3, ["waiting_time"], None),
                (6, [], None),
            )
        ):
            build.response(
                jkt,
                day=date(2026, 11, 24 + i),
                nps=nps,
                csat=2,
                reasons=reasons,
                comment=comment,
            )
        for weeks_back, nps in ((1, 9), (2, 10), (3, 7), (5, 3)):
            build.response(jkt, day=date(2026, 11, 25) - timedelta(weeks=weeks_back), nps=nps)
        db.session.commit()
    yield {"comments": comments}
    mp.undo()
    with app.app_context():
        empty_database()


def sign_in(tab, lang, next_path=PAGE):
    tab.goto(f"/auth/login?lang={lang}&next={next_path}")
    page = tab.page
    page.get_by_label(TEXT[lang]["username"]).fill("dewi")
    page.get_by_label(TEXT[lang]["password"]).fill(PASSWORD)
    page.get_by_role("button", name=TEXT[lang]["sign_in"]).click()
    page.wait_for_load_state()


def assert_fits(page):
    scroll_width, inner_width = page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"{scroll_width}px wide in a {inner_width}px window"


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_weekly_review_page(open_tab, review_data, screenshot_dir, lang):
    tab = open_tab(COUNTER_PC, locale=LOCALES[lang])
    sign_in(tab, lang)
    tab.goto(f"{PAGE}&lang={lang}")
    page = tab.page
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_test_id("week")).to_have_text("2026-W48")
    expect(page.get_by_test_id("case-count")).to_have_text("7")

    chart = page.get_by_test_id("pain-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 150
    # the chart is an image with a name and a description, bars and the cumulative line
    expect(chart).to_have_attribute("role", "img")
    assert "42" in chart.locator("desc").text_content()
    expect(chart.locator(".bars rect")).to_have_count(4)
    points = chart.locator("polyline.cumulative").get_attribute("points").split()
    assert len(points) == 4
    # the same numbers in the table next to it
    table = page.get_by_test_id("pain-table")
    first = table.locator("tbody tr").first
    decimal = "," if lang == "id" else "."
    expect(first).to_contain_text("3")
    expect(first).to_contain_text(f"42{decimal}9%")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tbody tr").last).to_contain_text(f"100{decimal}0%")

    reasons = page.get_by_test_id("reasons-table")
    expect(reasons.locator("tbody tr")).to_have_count(3)
    expect(reasons.locator("tbody tr").first).to_contain_text("3")
    expect(page.get_by_test_id("comments")).to_contain_text(review_data["comments"][0])
    expect(page.get_by_test_id("sla")).to_contain_text(f"85{decimal}7%")  # 6 of 7
    expect(page.get_by_test_id("trend-table").locator("tbody tr")).to_have_count(8)
    trend = page.get_by_test_id("trend-chart")
    expect(trend).to_be_visible()
    # NPS answers in W43, W45, W46, W47 and W48: one point each, none for the empty weeks
    expect(trend.locator(".series-nps circle")).to_have_count(5)
    expect(trend.locator(".series-csat circle")).to_have_count(1)  # CSAT only in W48
    expect(page.get_by_test_id("ages-table")).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"cx-review-{lang}-top.png"))
    page.screenshot(path=str(screenshot_dir / f"cx-review-{lang}.png"), full_page=True)

    # printed: no navigation, no form, still no horizontal overflow
    page.emulate_media(media="print")
    expect(page.locator(".review-filter")).to_be_hidden()
    expect(chart).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"cx-review-{lang}-print.png"), full_page=True)
    page.emulate_media(media="screen")
    assert tab.problems == []


def test_navigating_weeks_and_groupings_and_downloading(open_tab, review_data, screenshot_dir):
    tab = open_tab(COUNTER_PC, locale="en-US")
    sign_in(tab, "en")
    tab.goto(f"{PAGE}&lang=en")
    page = tab.page

    page.get_by_role("link", name="Service").click()
    expect(page.get_by_test_id("pain-table").locator("tbody tr").first).to_contain_text("Teller")
    expect(page.get_by_role("link", name="Service")).to_have_attribute("aria-current", "page")

    page.get_by_test_id("prev-week").click()
    expect(page.get_by_test_id("week")).to_have_text("2026-W47")
    expect(page.get_by_test_id("case-count")).to_have_text("0")
    expect(page.get_by_test_id("pain-table")).to_contain_text("Nothing to show")
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / "cx-review-empty-week.png"), full_page=True)
    page.get_by_test_id("next-week").click()
    expect(page.get_by_test_id("week")).to_have_text("2026-W48")
    assert "by=service" in page.url

    # the week picker
    page.locator("#week").fill("2026-W46")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("week")).to_have_text("2026-W46")
    page.get_by_test_id("next-week").click()
    page.get_by_test_id("next-week").click()

    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    assert download.suggested_filename == "review-2026-W48-JKT01.csv"
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    counts = {
        r["key"]: r["value"]
        for r in table
        if r["section"] == "pain_areas" and r["dimension"] == "cause" and r["metric"] == "count"
    }
    assert counts["people:staff_attitude"] == "3" and counts["_total"] == "7"

    with page.expect_download() as download_info:
        page.get_by_test_id("export-pdf").click()
    pdf = download_info.value
    assert pdf.suggested_filename == "review-2026-W48-JKT01.pdf"
    assert Path(pdf.path()).read_bytes()[:5] == b"%PDF-"
    pdf.save_as(screenshot_dir / "cx-review.pdf")  # to look at
    assert tab.problems == []
