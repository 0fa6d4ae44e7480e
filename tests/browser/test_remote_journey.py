"""The virtual mobile queue end to end, on a phone (390x844) in a real browser, in both
languages: join a branch's queue from its page with a one-time code (read from the SMS that
reached a real local HTTP gateway), watch the place fall live while counters call others,
receive "you are next in N" at the gateway, confirm arrival by opening the entrance poster's
arrival link (printed by the branch manager), be called at a counter through the API, and see
the call on the phone (and get "it is your turn" at the gateway).

The pages and the API take a fixed clock (a Tuesday morning in the branch's opening hours):
remote intake depends on the time left before closing, which must not depend on when the
tests run. Screenshots: remote-<lang>-*.png in SCREENSHOT_DIR.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from queue_app.accounts.models import User
from queue_app.extensions import db

from .. import factories
from ..outboxes import deliver_outbox
from .conftest import PHONE
from .test_mobile import TEXT, VIBRATE_SPY, fits_the_screen, phone_branches, shoot  # noqa: F401

pytestmark = pytest.mark.browser

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday: 10:00 in Jakarta, 11:00 in Manila
CLOCKED = (
    "queue_app.mobile.track",
    "queue_app.mobile.branch",
    "queue_app.mobile.join",
    "queue_app.api.counters",
)
LIVE = "() => window.queueTrack && window.queueTrack.floor.state.snapshots >= 1"
CONTACT = {
    "id": ("0812 3456 7890", "+6281234567890"),
    "en": ("0917 123 4567", "+639171234567"),
}


@pytest.fixture
def fixed_clock(monkeypatch):
    for module in CLOCKED:
        monkeypatch.setattr(f"{module}.utcnow", lambda: NOW)


def api_call_next(base_url, counter_id, token) -> dict:
    request = urllib.request.Request(
        f"{base_url}/api/v1/counters/{counter_id}/call-next",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def poster_arrival_url(browser, base_url, code, username, shot) -> str:
    """What the entrance poster's "I'm here" QR code says, as the branch manager prints it."""
    context = browser.new_context(viewport={"width": 1024, "height": 1400})
    try:
        page = context.new_page()
        page.goto(f"{base_url}/auth/login?next=/b/{code}/poster")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "rahasia-123")
        page.locator("form button[type=submit]").last.click()
        page.wait_for_load_state()
        expect(page.get_by_test_id("poster")).to_be_visible()
        assert page.locator(".qr-code").count() == 2
        shot(page)
        page.emulate_media(media="print")
        assert page.locator(".bar").is_hidden()  # only the poster is printed
        return page.locator('[data-testid="poster-here"] figure').get_attribute("data-url")
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["id", "en"])
def test_join_remotely_follow_confirm_arrival_and_be_called(
    lang,
    app,
    browser,
    live_server,
    open_tab,
    phone_branches,  # noqa: F811
    gateway,
    fixed_clock,
    monkeypatch,
    screenshot_dir,
):
    # the links in QR codes and messages point at the live server
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_server)
    # the walk-ins came in before the customer joins (the engine's clock: ten minutes earlier)
    shop = phone_branches(lang, now=NOW - timedelta(minutes=10))
    shop.open_counters()
    walk_ins = shop.issue(3)
    with app.app_context():
        staff = db.session.get(User, shop.staff_ids[1])
        staff_token = factories.token(staff, now=NOW)
        db.session.commit()
    typed, e164 = CONTACT[lang]

    # --- join from the branch page ---------------------------------------------------------
    tab = open_tab(PHONE, locale=TEXT[lang]["locale"])
    page = tab.page
    page.add_init_script(VIBRATE_SPY)
    tab.goto(f"/b/{shop.code}")
    expect(page.get_by_test_id("waiting-teller")).to_contain_text("3")
    page.get_by_test_id("join-link").click()
    expect(page.get_by_test_id("service-teller")).to_be_checked()
    page.get_by_test_id("contact").fill(typed)
    page.get_by_test_id("send-code").click()
    # no consent: said on the page, what was typed is kept
    expect(page.get_by_test_id("error")).to_be_visible()
    expect(page.get_by_test_id("contact")).to_have_value(typed)
    page.get_by_test_id("consent").check()
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"remote-{lang}-1-join")
    page.get_by_test_id("send-code").click()
    expect(page.get_by_test_id("verify-page")).to_be_visible()
    shoot(page, screenshot_dir, f"remote-{lang}-2-code")

    # the code arrives by SMS at the gateway (the outbox job sends it)
    deliver_outbox(app, NOW + timedelta(seconds=30))
    [sms] = gateway.wait_for(1)
    assert sms["to"] == e164 and sms["channel"] == "sms"
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    page.get_by_test_id("code").fill(code)
    page.get_by_test_id("verify").click()

    # --- the tracking page -----------------------------------------------------------------
    track = page.get_by_test_id("track")
    expect(track).to_have_attribute("data-status", "waiting")
    token = page.url.rsplit("/t/", 1)[1]
    ahead = page.get_by_test_id("ahead")
    expect(ahead).to_have_text("3")
    expect(page.get_by_test_id("arrival-notice")).to_be_visible()
    page.wait_for_function(
        "() => window.queueTrack && window.queueTrack.floor.state.snapshots >= 1"
    )
    number = page.get_by_test_id("number").inner_text()
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"remote-{lang}-3-tracking")

    # counters call the walk-ins ahead: the place falls live
    assert shop.call("Loket 1") == walk_ins[0][0]
    expect(ahead).to_have_text("2")
    # third in line (QUEUE_NEXT_IN_N = 3): "you are next in 3" reaches the gateway
    deliver_outbox(app, NOW + timedelta(minutes=1))
    messages = gateway.wait_for(2)
    next_in = messages[1]
    assert next_in["to"] == e164
    assert number in next_in["text"] and f"{live_server}/t/{token}" in next_in["text"]
    assert shop.call("Loket 2") == walk_ins[1][0]
    expect(ahead).to_have_text("1")
    assert page.evaluate("() => window.queueTrack.alerts.length") == 0

    # --- "I'm here": the entrance poster's arrival link -------------------------------------
    arrival_url = poster_arrival_url(
        browser,
        live_server,
        shop.code,
        f"{shop.code.lower()}-manager",
        lambda poster: shoot(poster, screenshot_dir, f"remote-{lang}-poster"),
    )
    assert arrival_url.startswith(f"{live_server}/b/{shop.code}/here?k=")
    page.goto(arrival_url)
    expect(track).to_have_attribute("data-status", "waiting")
    assert page.url == f"{live_server}/t/{token}"
    expect(page.get_by_test_id("arrival-notice")).to_have_count(0)
    page.wait_for_function(
        "() => window.queueTrack && window.queueTrack.floor.state.snapshots >= 1"
    )
    expect(ahead).to_have_text("1")
    shoot(page, screenshot_dir, f"remote-{lang}-4-arrived")

    assert shop.call("Loket 1") == walk_ins[2][0]
    expect(ahead).to_have_text(TEXT[lang]["next"])

    # --- called at Loket 2, through the API --------------------------------------------------
    shop.finish("Loket 2")
    called = api_call_next(live_server, shop.counter_ids["Loket 2"], staff_token)
    assert called["number"] == number
    expect(track).to_have_attribute("data-status", "called")
    expect(page.get_by_test_id("counter")).to_contain_text("Loket 2")
    page.wait_for_function("() => window.queueTrack.alerts.length === 1")
    assert page.evaluate("() => window.__vibrations.length") == 1
    assert "Loket 2" in page.title()
    fits_the_screen(page)
    shoot(page, screenshot_dir, f"remote-{lang}-5-called")
    # and "it is your turn" at the gateway, right after the call
    turn = gateway.wait_for(3)[2]
    assert turn["to"] == e164 and number in turn["text"] and "Loket 2" in turn["text"]
    # the one 422 (and its console line) is the form sent without consent, on purpose
    assert [p for p in tab.problems if "422" not in p] == []
