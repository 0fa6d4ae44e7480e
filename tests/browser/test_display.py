"""The lobby display in a real browser (Debian's Chromium) at 1920x1080: calls shown and
announced through the speech queue's test hook, recalls announced again, quick calls queued
one after another, both languages, and a display that survives a server restart.
"""

from __future__ import annotations

import itertools
import signal
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import socketio
from queue_app.realtime import pusher

from ..apihelp import fast_passwords
from ..conftest import empty_database
from ..servers import free_port, start_server
from .floor import LiveFloor

pytestmark = pytest.mark.browser

TV = {"width": 1920, "height": 1080}
SAY = {
    "id": "Nomor antrean {n}, silakan ke {c}",
    "en": "Ticket number {n}, please go to {c}",
}
RECALL = {
    "id": "Panggilan ulang, nomor antrean {n}, silakan ke {c}",
    "en": "Calling again, ticket number {n}, please go to {c}",
}


def spelled(number: str) -> str:
    return " ".join(number)


class Lobby(LiveFloor):
    """Three counters and a paired lobby display showing `messages`."""

    def __init__(self, app, code, locale, messages):
        self.messages = messages
        counters = [("Loket 1", ["teller"]), ("Loket 2", ["teller", "cs"]), ("CS 3", ["cs"])]
        super().__init__(app, code, locale, counters=counters)

    def set_up(self, branch):
        now = datetime.now(UTC)
        device, self.token = register_device(DeviceKind.DISPLAY, now=now)
        device.branch = branch
        device.paired_at = now
        device.pairing_code = None
        device.name = "Lobby TV"
        device.settings = {"messages": self.messages}

    def issue(self, service="teller", n=1):
        return [number for number, _token in super().issue(n, service)]


@pytest.fixture
def lobby(app, monkeypatch):
    fast_passwords(monkeypatch)
    # the live server's Socket.IO server; another test may have rebound the global `socketio`
    socketio.server = pusher(app).server
    with app.app_context():
        empty_database()
    made = {}

    def make(locale="id", messages=("Selamat datang di KCU Jakarta Sudirman",)):
        code = "JKT01" if locale == "id" else "MNL01"
        made[code] = Lobby(app, code, locale, list(messages))
        return made[code]

    yield make
    with app.app_context():
        empty_database()


def open_display(browser, base_url, token, locale="id-ID"):
    context = browser.new_context(viewport=TV, locale=locale)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(f"{base_url}/display/?device_token={token}")
    assert response is not None and response.status == 200
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "online", timeout=20_000)
    page.wait_for_function("() => document.body.dataset.seq !== undefined")
    return context, page, errors


def announced(page, count):
    page.wait_for_function(f"() => window.queueAnnouncer.log.length >= {count}")
    return page.evaluate("() => window.queueAnnouncer.log.map(e => ({...e}))")


def all_spoken(page, count):
    page.wait_for_function(f"() => window.queueAnnouncer.spoken.length >= {count}", timeout=60_000)
    return page.evaluate("() => window.queueAnnouncer.spoken.map(e => ({...e}))")


@pytest.mark.parametrize("lang", ["id", "en"])
def test_display_calls_announces_and_recalls(lang, browser, live_server, lobby, screenshot_dir):
    floor = lobby(lang, messages=["Selamat datang" if lang == "id" else "Welcome"])
    numbers = floor.issue("teller", 3) + floor.issue("cs", 2)
    # the browser prefers the other language: the lobby still speaks the branch's
    other = "en-US" if lang == "id" else "id-ID"
    context, page, errors = open_display(browser, live_server, floor.token, other)
    try:
        assert page.locator("html").get_attribute("lang") == lang
        expect(page.get_by_test_id("waiting-teller")).to_contain_text("3")
        expect(page.get_by_test_id("message")).to_have_text(
            "Selamat datang" if lang == "id" else "Welcome"
        )
        assert page.evaluate("() => window.queueAnnouncer.log.length") == 0

        first = floor.call("Loket 1")
        assert first == numbers[0]
        expect(page.get_by_test_id("now-number")).to_have_text(first)
        expect(page.get_by_test_id("now-counter")).to_have_text("Loket 1")
        expect(page.get_by_test_id("waiting-teller")).to_contain_text("2")
        [entry] = announced(page, 1)
        assert entry["text"] == SAY[lang].format(n=spelled(first), c="Loket 1")
        assert entry["lang"] == {"id": "id-ID", "en": "en-US"}[lang]

        # a recall is announced again
        floor.recall("Loket 1")
        log = announced(page, 2)
        assert log[1]["kind"] == "recall"
        assert log[1]["text"] == RECALL[lang].format(n=spelled(first), c="Loket 1")

        # two calls in quick succession: both queued, spoken one after the other
        second = floor.call("Loket 2")
        third = floor.call("CS 3")
        log = announced(page, 4)
        assert [e["number"] for e in log] == [first, first, second, third]
        expect(page.get_by_test_id("now-number")).to_have_text(third)
        expect(page.get_by_test_id("recent")).to_contain_text(second)
        spoken = all_spoken(page, 4)
        assert [e["number"] for e in spoken] == [first, first, second, third]
        for before, after in itertools.pairwise(spoken):
            assert after["startedAt"] >= before["endedAt"], "an announcement was cut off"
        page.wait_for_timeout(3500)  # the flash animation of the newest call has ended
        page.screenshot(path=str(screenshot_dir / f"display-1920x1080-{lang}.png"))
        # nothing overflows the TV screen
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= innerWidth"
            " && document.documentElement.scrollHeight <= innerHeight"
        )

        # the next customer at Loket 1: the first is started and finished (entries a display
        # does not hear), then called: no gap, no snapshot, the call is shown
        snapshots = page.evaluate("QueueFloor.last.state.snapshots")
        fourth = floor.call("Loket 1")
        expect(page.get_by_test_id("now-number")).to_have_text(fourth)
        state = page.evaluate("({...QueueFloor.last.state})")
        assert state["gaps"] == 0 and state["snapshots"] == snapshots, state
        # and a push whose `prev` was never heard is a gap: the display asks for the truth
        seq = state["seq"]
        page.evaluate(
            "s => QueueFloor.last.test.inject({seq: s + 3, prev: s + 2, kind: 'issued'})", seq
        )
        page.wait_for_function("n => QueueFloor.last.state.snapshots > n", arg=snapshots)
        assert page.evaluate("QueueFloor.last.state.gaps") == 1
        assert errors == []
    finally:
        context.close()


def _start_server(app, port, log_path):
    # in-process Socket.IO only: the restart must be noticed by the display itself
    return start_server(
        app.config["SQLALCHEMY_DATABASE_URI"],
        log_path,
        port=port,
        SOCKETIO_MESSAGE_QUEUE="",
        REDIS_URL="",
    )


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)  # a crash, not a clean shutdown
        proc.wait(timeout=10)


def test_display_survives_a_server_restart(app, browser, lobby, tmp_path, screenshot_dir):
    floor = lobby("id")
    floor.issue("teller", 4)
    port = free_port()
    proc, url = _start_server(app, port, tmp_path / "server.log")
    context = None
    try:
        context, page, errors = open_display(browser, url, floor.token)
        page.evaluate("() => { window.__notReloaded = true; }")
        # the server process pushes what it commits; this test process commits on the same
        # database, so calls made here reach the display through a snapshot (the seq gap)
        first = floor.call("Loket 1")
        page.evaluate("() => window.queueDisplay.requestSnapshot()")
        expect(page.get_by_test_id("now-number")).to_have_text(first)

        _stop(proc)
        expect(page.get_by_test_id("status")).to_have_attribute("data-state", "offline")
        # calls made while the display cannot reach the server
        second = floor.call("Loket 2")
        third = floor.call("Loket 1")

        proc, _ = _start_server(app, port, tmp_path / "server.log")
        expect(page.get_by_test_id("status")).to_have_attribute(
            "data-state", "online", timeout=30_000
        )
        expect(page.get_by_test_id("now-number")).to_have_text(third)
        expect(page.get_by_test_id("recent")).to_contain_text(second)
        expect(page.get_by_test_id("recent")).to_contain_text(first)
        assert page.evaluate("() => window.__notReloaded === true")
        # the calls it missed are announced after it caught up, oldest first
        log = announced(page, 3)
        assert [e["number"] for e in log][-2:] == [second, third]
        page.screenshot(path=str(screenshot_dir / "display-after-restart-id.png"))
        assert errors == []
    finally:
        if context is not None:
            context.close()
        _stop(proc)
