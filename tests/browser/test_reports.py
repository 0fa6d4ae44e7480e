"""The report pages in a real browser (Debian's Chromium) at 1366x768 and 1920x1080, in Bahasa
Indonesia and English, signed in as a branch manager: the week report of MKS01 (the
hand-built week of tests/test_reports.py on top of four busy weeks before it), downloading its
CSV and reading it back, and the staffing advice for the Monday after. Screenshots go to the
conftest's folder (`SCREENSHOT_DIR`).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from queue_app.extensions import db

from .. import factories
from .. import reportrows as rr
from ..apihelp import fast_passwords
from ..conftest import empty_database

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"
VIEWPORTS = {
    "1366x768": {"width": 1366, "height": 768},
    "1920x1080": {"width": 1920, "height": 1080},
}


@pytest.fixture
def history(app, monkeypatch):
    fast_passwords(monkeypatch)
    with app.app_context():
        data = rr.week_history(factories)
        data["branch"].name = "KC Makassar Pettarani"
        rr.busy_weeks(data["branch"], [data["budi"], data["siti"]], "2026-02-02", weeks=4)
        db.session.commit()
    yield data
    with app.app_context():
        empty_database()


def sign_in(tab, path):
    tab.goto(path)  # not signed in: the sign-in page, then back
    page = tab.page
    page.fill("#username", "dewi")
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(re.compile(r"/reports/"))


def assert_fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_week_report_and_its_csv(history, open_tab, lang, size, screenshot_dir):
    tab = open_tab(VIEWPORTS[size], locale="id-ID" if lang == "id" else "en-US")
    sign_in(tab, f"/reports/?branch=MKS01&period=week&date=2026-03-04&lang={lang}")
    page = tab.page
    expect(page.get_by_test_id("total-issued")).to_have_text("8")
    expect(page.get_by_test_id("total-within")).to_have_text("50,0%" if lang == "id" else "50.0%")
    expect(page.get_by_test_id("heatmap")).to_be_visible()
    expect(page.get_by_test_id("issued-chart")).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"reports-week-{lang}-{size}.png"), full_page=True)

    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    download = info.value
    assert download.suggested_filename == "report-MKS01-2026-W10.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    total = next(r for r in rows if r["section"] == "total")
    assert total["issued"] == "8" and total["wait_p90_s"] == "1500.0"

    # a month of the busy history, then the staffing advice for the Monday after it
    page.select_option("#f-period", "month")
    page.fill("#f-date", "2026-02-10")
    page.locator("form.cx-filters [type=submit]").click()
    page.wait_for_url(re.compile(r"period=month"))
    expect(page.get_by_test_id("table-staff")).to_be_visible()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"reports-month-{lang}-{size}.png"), full_page=True)

    tab.goto(f"/reports/staffing?branch=MKS01&date=2026-03-02&lang={lang}")
    expect(page.get_by_test_id("staffing-table")).to_be_visible()
    expect(page.get_by_test_id("sim-advised")).to_be_visible()
    assert_fits(page)
    page.screenshot(
        path=str(screenshot_dir / f"reports-staffing-{lang}-{size}.png"), full_page=True
    )
    assert tab.problems == []
