"""The CX case pages in a real browser (Debian's Chromium) at 1366x768, in Bahasa Indonesia and
English, signed in as the branch manager who owns level 1: the list with its level badges and
the overdue case highlighted, the case's page with the customer's words and the visit's facts;
a call is logged (the escalation clock stops) and the case is resolved with a 5P root cause.

Screenshots go to the conftest's folder (`SCREENSHOT_DIR`) as cx_cases_<lang>_*.png.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from queue_app.accounts.models import Role
from queue_app.cases import services as cases
from queue_app.cases.models import Case, CaseStatus
from queue_app.extensions import db

from .. import factories
from ..apihelp import fast_passwords
from ..caseshelp import customer, respond
from ..conftest import empty_database
from .conftest import COUNTER_PC

pytestmark = pytest.mark.browser

PASSWORD = "rahasia-123"


@pytest.fixture
def unhappy(app, monkeypatch):
    """JKT01 with two cases: one overdue at level 2 (opened three days ago), one fresh."""
    fast_passwords(monkeypatch)
    now = datetime.now(UTC)
    with app.app_context():
        branch = factories.branch("JKT01")
        branch.name = "KCU Jakarta Sudirman"
        area = factories.user("hendra", role=Role.CX_AGENT, branches=[branch], password=PASSWORD)
        dewi = factories.user(
            "dewi", role=Role.BRANCH_MANAGER, branches=[branch], password=PASSWORD
        )
        dewi.display_name, dewi.manager, dewi.email = "Dewi Kartika", area, "dewi@bank.co.id"
        budi = factories.user("budi", branches=[branch], password=PASSWORD)
        budi.display_name = "Budi Santoso"
        rina = customer(phone="+6281234567890", email="rina@contoh.co.id", name="Ibu Rina")
        old = respond(
            factories,
            branch,
            now=now - timedelta(hours=73),
            nps=4,
            reasons=["waiting_time"],
            comment="Antrean terlalu lama, hampir satu jam baru dipanggil.",
        )
        fresh = respond(
            factories,
            branch,
            now=now - timedelta(hours=2),
            nps=2,
            csat=1,
            reasons=["staff_attitude"],
            comment="Petugas kurang ramah dan terburu-buru.",
            person=rina,
            staff=budi,
        )
        cases.escalate_due(now - timedelta(hours=24))
        db.session.commit()
        ids = {
            "old": db.session.scalar(db.select(Case.id).where(Case.response_id == old.id)),
            "fresh": db.session.scalar(db.select(Case.id).where(Case.response_id == fresh.id)),
        }
    yield ids
    with app.app_context():
        empty_database()


def sign_in(tab, lang):
    tab.goto(f"/cx/cases?lang={lang}")  # not signed in: the sign-in page, then back
    page = tab.page
    page.fill("#username", "dewi")
    page.fill("#password", PASSWORD)
    page.locator("form:has(#password) [type=submit]").click()
    page.wait_for_url(re.compile(r"/cx/cases"))


def assert_fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


@pytest.mark.parametrize("lang", ["id", "en"])
def test_log_a_call_and_resolve_a_case(app, unhappy, open_tab, lang, screenshot_dir):
    tab = open_tab(COUNTER_PC, locale="id-ID" if lang == "id" else "en-US")
    page = tab.page
    sign_in(tab, lang)
    expect(page.locator("html")).to_have_attribute("lang", lang)

    # the list: both cases, the overdue one first and highlighted, with its level badge
    rows = page.locator("table.cases tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-case", str(unhappy["old"]))
    expect(rows.first).to_have_class(re.compile("is-overdue"))
    expect(rows.first.locator(".level")).to_have_class(re.compile("level-2"))
    expect(rows.nth(1).locator(".level")).to_have_class(re.compile("level-1"))
    expect(rows.nth(1)).not_to_have_class(re.compile("is-overdue"))
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"cx_cases_{lang}_list_1366.png"))

    # the fresh case's page: what the customer said, the visit, the contact
    rows.nth(1).locator("a").click()
    page.wait_for_url(re.compile(rf"/cx/cases/{unhappy['fresh']}"))
    expect(page.get_by_test_id("case-comment")).to_have_text(
        "Petugas kurang ramah dan terburu-buru."
    )
    expect(page.get_by_test_id("score-nps")).to_have_text("2")
    expect(page.locator("body")).to_contain_text("Budi Santoso")
    expect(page.locator("body")).to_contain_text("+6281234567890")
    expect(page.get_by_test_id("case-level")).to_have_class(re.compile("level-1"))
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"cx_cases_{lang}_detail_1366.png"))

    # log the call: reached by phone
    page.select_option("#channel", "phone")
    page.locator("input[name=reached][value=yes]").check()
    page.fill("#contact-note", "Sudah ditelepon, nasabah menerima permintaan maaf.")
    page.get_by_test_id("log-contact").click()
    expect(page.locator(".steps [data-kind=contact]")).to_have_count(1)
    expect(page.get_by_test_id("case-due")).to_have_count(0)  # the clock stopped

    # resolve with a root cause, a reason and the action
    page.select_option("#root_cause", "people")
    page.select_option("#reason_code", "staff_attitude")
    page.fill("#action_taken", "Coaching untuk petugas teller; nasabah ditelepon ulang.")
    page.get_by_test_id("resolve").click()
    expect(page.locator(".steps [data-kind=resolved]")).to_have_count(1)
    expect(page.get_by_test_id("case-status")).to_have_class(re.compile("case-status-resolved"))
    expect(page.get_by_test_id("resolve")).to_have_count(0)
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"cx_cases_{lang}_resolved_1366.png"), full_page=True)

    with app.app_context():
        case = db.session.get(Case, unhappy["fresh"])
        assert case.status == CaseStatus.RESOLVED and case.root_cause.value == "people"
        assert case.first_contact_at is not None
    assert tab.problems == []
