"""The CX metrics page in a real browser (Debian's Chromium) at 1366x768, in Bahasa Indonesia
and English, signed in as a CX agent: the headline NPS with n and margin, the split, CSAT and
CES, the trend and the two bar charts as accessible inline SVG with their numbers in tables,
the touchpoint tables with "n too small" marks, and the branch selector.

Screenshots go to the conftest's folder (`SCREENSHOT_DIR`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from queue_app.accounts.models import Role
from queue_app.extensions import db
from queue_app.feedback.metrics import ces, csat, display, nps
from queue_app.feedback.models import FeedbackChannel

from .. import factories
from ..apihelp import fast_passwords
from ..conftest import empty_database
from ..feedbackrows import respond
from .conftest import COUNTER_PC

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"


@pytest.fixture
def rated(app, monkeypatch):
    """JKT01 with 28 days of answers before today (the page's default range), MNL01 with a
    few, and the CX agent `lina` (like the demo's), committed for the live server."""
    fast_passwords(monkeypatch)
    with app.app_context():
        jkt = factories.branch(
            "JKT01", counters=[("Teller 1", ["teller"]), ("CS 1", ["cs", "loans"])]
        )
        jkt.name = "KCU Jakarta Sudirman"
        mnl = factories.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
        mnl.name = "Makati Ayala Branch"
        factories.user(
            "lina", role=Role.CX_AGENT, branches=[jkt, mnl], services=[], password=PASSWORD
        )
        budi = factories.user("budi", branches=[jkt], password=PASSWORD)
        teller, cs = factories.service(jkt, "teller"), factories.service(jkt, "cs")
        t1, cs1 = factories.counter(jkt, "Teller 1"), factories.counter(jkt, "CS 1")
        today = jkt.business_day(datetime.now(UTC))
        answers = []
        for back in range(1, 29):
            day = today - timedelta(days=back)
            for i in range(4):
                wait = (back * 7 + i * 11) % 45 * 60
                score = 10 - min(10, wait // 300 + i % 2)
                cs_answer = 5 if score >= 9 else 4 if score >= 7 else 2
                ease = None if i == 3 else (5 if score >= 8 else 3 if score >= 6 else 1)
                teller_visit = i < 3
                respond(
                    jkt,
                    day,
                    nps=score,
                    csat=cs_answer,
                    ces=ease,
                    service=teller if teller_visit else cs,
                    counter=t1 if teller_visit else cs1,
                    staff=budi if teller_visit else None,
                    channel=FeedbackChannel.TABLET if i else FeedbackChannel.LINK,
                    wait_s=wait,
                    quoted_wait_s=900,
                )
                answers.append((score, cs_answer, ease))
        for score in (10, 3):
            respond(mnl, mnl.business_day(datetime.now(UTC)) - timedelta(days=2), nps=score)
        db.session.commit()
    yield answers
    with app.app_context():
        empty_database()


def sign_in_to_metrics(tab, lang):
    tab.goto(f"/cx/metrics?lang={lang}")  # not signed in: the sign-in page, then back
    page = tab.page
    page.fill("#username", "lina")
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(re.compile(r"/cx/metrics"))


def assert_fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


def _number(value, lang, signed=True):
    text = f"{display(value):+.1f}" if signed else f"{display(value):.1f}"
    return text.replace(".", ",") if lang == "id" else text


TEXTS = {
    "id": {"title": "Metrik", "all": "Semua"},
    "en": {"title": "Feedback metrics", "all": "All branches"},
}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_metrics_page_of_a_branch(rated, open_tab, lang, screenshot_dir):
    tab = open_tab(COUNTER_PC, locale="id-ID" if lang == "id" else "en-US")
    page = tab.page
    sign_in_to_metrics(tab, lang)
    # a CX agent starts on the network; pick the branch in the selector
    page.select_option("#f-branch", "JKT01")
    page.locator(".cx-filters [type=submit]").click()
    page.wait_for_url(re.compile(r"branch=JKT01"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_test_id("scope")).to_contain_text("KCU Jakarta Sudirman")

    # the headline equals the formulas over the answers written (112 of them)
    expected = nps(a[0] for a in rated)
    assert expected.n == 112
    expect(page.get_by_test_id("nps-score")).to_have_text(_number(expected.score, lang))
    expect(page.get_by_test_id("nps-margin")).to_have_text(
        "±" + _number(expected.margin, lang, signed=False)
    )
    expect(page.get_by_test_id("nps")).to_contain_text("112")
    # a sample of 112 is not small; the headline has no mark
    expect(page.get_by_test_id("nps").get_by_test_id("small-n")).to_have_count(0)
    expect(page.get_by_test_id("csat")).to_contain_text(
        _number(csat(a[1] for a in rated).score, lang, signed=False) + "%"
    )
    expect(page.get_by_test_id("ces")).to_contain_text(
        _number(ces(a[2] for a in rated).score, lang)
    )

    # charts: inline SVG with a title and a description, numbers also in tables
    for chart in ("trend-chart", "wait-chart", "quote-chart"):
        svg = page.get_by_test_id(chart)
        expect(svg).to_be_visible()
        expect(svg).to_have_attribute("role", "img")
        assert svg.locator("title").first.text_content().strip()
        assert svg.locator("desc").text_content().strip()
    # 28 days, each with a point (4 answers a day: hollow, n too small)
    expect(page.locator("[data-testid=trend-chart] circle.point")).to_have_count(28)
    expect(page.locator("[data-testid=trend-chart] circle.point.small")).to_have_count(28)
    expect(page.locator("[data-testid=trend-table] tbody tr")).to_have_count(28)
    # 5 wait buckets and "unknown"; kept / not kept / no quote
    expect(page.locator("[data-testid=wait-table] tbody tr")).to_have_count(6)
    expect(page.locator("[data-testid=quote-table] tbody tr")).to_have_count(3)
    kept = nps(a[0] for a, w in zip(rated, _waits(), strict=True) if w <= 900)
    quote_first_row = page.locator("[data-testid=quote-table] tbody tr").first
    expect(quote_first_row.locator("td").first).to_have_text(str(kept.n))

    # touchpoints: the services, counters, staff and channels of JKT01
    services = page.get_by_test_id("touchpoints-service")
    expect(services.locator("tbody tr")).to_have_count(2)
    expect(services).to_contain_text("Teller")
    # CS had 28 answers: under 30, so marked
    expect(services.locator("tbody tr", has_text="Cs").get_by_test_id("small-n")).to_have_count(1)
    expect(services.locator("tbody tr", has_text="Teller").get_by_test_id("small-n")).to_have_count(
        0
    )
    expect(page.get_by_test_id("touchpoints-staff")).to_contain_text("budi")
    expect(page.get_by_test_id("touchpoints-channel").locator("tbody tr")).to_have_count(2)
    # a single branch has no branch table
    expect(page.get_by_test_id("touchpoints-branch")).to_have_count(0)

    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"cx_metrics_{lang}_1366.png"), full_page=False)
    page.screenshot(path=str(screenshot_dir / f"cx_metrics_{lang}_full.png"), full_page=True)
    assert tab.problems == []


def _waits():
    """The waits of the fixture's answers, in its order."""
    return [(back * 7 + i * 11) % 45 * 60 for back in range(1, 29) for i in range(4)]


def test_the_network_view_and_the_branch_selector(rated, open_tab, screenshot_dir):
    tab = open_tab(COUNTER_PC, locale="en-US")
    page = tab.page
    sign_in_to_metrics(tab, "en")
    expect(page.get_by_test_id("scope")).to_contain_text("All branches")
    # every branch of the network, and the whole network
    options = page.locator("#f-branch option").all_text_contents()
    assert options == [
        "All branches",
        "JKT01 · KCU Jakarta Sudirman",
        "MNL01 · Makati Ayala Branch",
    ]
    expect(page.get_by_test_id("nps")).to_contain_text("114")
    branches = page.get_by_test_id("touchpoints-branch")
    expect(branches.locator("tbody tr")).to_have_count(2)
    manila = branches.locator("tbody tr", has_text="MNL01")
    expect(manila.get_by_test_id("small-n")).to_have_count(1)
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / "cx_metrics_network_en.png"), full_page=True)

    # Manila, by week: two answers, 1 promoter and 1 detractor -> 0, n too small
    page.select_option("#f-branch", "MNL01")
    page.select_option("#f-group", "week")
    page.locator(".cx-filters [type=submit]").click()
    page.wait_for_url(re.compile(r"branch=MNL01"))
    expect(page.get_by_test_id("nps-score")).to_have_text("+0.0")
    expect(page.get_by_test_id("nps").get_by_test_id("small-n")).to_have_count(1)
    expect(page.locator("[data-testid=trend-table] tbody th").first).to_have_text(
        re.compile(r"^\d{4}-W\d{2}$")
    )
    # a range that ends before it starts: said, and the default shown instead
    page.fill("#f-from", "2026-03-10")
    page.fill("#f-to", "2026-03-01")
    page.locator(".cx-filters [type=submit]").click()
    expect(page.locator(".form-error")).to_be_visible()
    assert_fits(page)
    assert tab.problems == []
