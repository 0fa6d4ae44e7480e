"""The webhook admin page in a real browser (Debian's Chromium) on a counter PC (1366x768), in
Bahasa Indonesia and English: an admin types the address of a private network and reads why
it is refused, then a public one and gets the signing secret, shown once.

Screenshots go to `SCREENSHOT_DIR`.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.extensions import db
from queue_app.webhooks import services as webhooks
from queue_app.webhooks.models import WebhookEndpoint

from .. import factories
from ..conftest import empty_database
from .conftest import COUNTER_PC
from .test_branch_settings import LOCALES, PASSWORD, assert_fits, sign_in

pytestmark = pytest.mark.browser

PAGE = "/admin/webhooks"
REFUSAL = {
    "id": "Alamat ini berada di server ini atau di jaringan privat",
    "en": "This address is on this server or a private network",
}


@pytest.fixture(scope="module")
def admin_floor(app):
    """JKT01 and an admin (quick password hashing), committed for the server thread."""
    with pytest.MonkeyPatch.context() as mp:
        fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(accounts, "_hasher", fast)
        with app.app_context():
            empty_database()
            factories.branch("JKT01").name = "KCU Jakarta Sudirman"
            factories.user("admin", role=Role.ADMIN, password=PASSWORD)
            db.session.commit()
        yield
        with app.app_context():
            empty_database()


@pytest.mark.parametrize("lang", ["id", "en"])
def test_an_admin_is_told_why_a_private_address_is_refused_then_adds_a_public_one(
    app, open_tab, admin_floor, screenshot_dir, monkeypatch, lang
):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "")  # as in production
    tab = open_tab(COUNTER_PC, locale=LOCALES[lang])
    sign_in(tab, "admin", lang, next_path=PAGE)
    page = tab.page
    assert page.url.endswith(PAGE), page.url
    page.locator("#url").fill("http://10.20.30.40:8080/hooks")
    page.locator("#name").fill("Gudang data")
    page.locator("input[name=events][value='ticket.called']").check()
    page.locator("form[action$='/admin/webhooks'] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#webhook-error")).to_contain_text(REFUSAL[lang])
    expect(page.locator("#webhook-error")).to_contain_text("WEBHOOK_ALLOWED_NETWORKS")
    # what was typed stays in the form, and nothing is saved
    expect(page.locator("#url")).to_have_value("http://10.20.30.40:8080/hooks")
    with app.app_context():
        assert db.session.scalars(select(WebhookEndpoint)).all() == []
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"webhooks-pc-{lang}-refused.png"), full_page=True)

    page.locator("#url").fill("https://8.8.8.8/hooks")  # public (no event: nothing is sent)
    page.locator("form[action$='/admin/webhooks'] button[type=submit]").click()
    page.wait_for_load_state()
    secret = page.get_by_test_id("webhook-secret").locator(".secret-value")
    expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9_-]{43}$"))
    with app.app_context():
        [endpoint] = db.session.scalars(select(WebhookEndpoint)).all()
        assert webhooks.signing_secret(endpoint) == secret.inner_text()
        db.session.delete(endpoint)
        db.session.commit()
    assert_fits(page)
    page.screenshot(path=str(screenshot_dir / f"webhooks-pc-{lang}-added.png"), full_page=True)
    assert [p for p in tab.problems if "422" not in p] == []
