"""The lobby display in a real browser (Debian's Chromium) at 1920x1080: calls shown and
announced through the speech queue's test hook, recalls announced again, quick calls queued
one after another, both languages, the estimated wait of each queue as the range customers
read ("10-15 min", long service names), and a display that survives a server restart.
"""

from __future__ import annotations

import itertools
import signal
from datetime import UTC, datetime

import pytest
from flask_babel import force_locale
from playwright.sync_api import expect

from queue_app.branches.models import Branch, CounterService, Service
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db, socketio
from queue_app.realtime import payloads, pusher
from queue_app.waits import live
from queue_app.waits.present import wait_text

from ..apihelp import fast_passwords
from ..conftest import empty_database
from ..servers import free_port, start_server
from .floor import LiveFloor, assert_names_its_branch

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
        assert_names_its_branch(page, floor.code)
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


# long service names, as Indonesian branches name their queues
LONG_NAMES = {
    "teller": {
        "id": "Setoran, Penarikan dan Transfer Tunai di Teller",
        "en": "Cash Deposits, Withdrawals and Transfers",
    },
    "cs": {
        "id": "Pembukaan Rekening Tabungan dan Deposito Berjangka",
        "en": "Savings Accounts and Time Deposits",
    },
    "loans": {
        "id": "Pengajuan Kredit Pemilikan Rumah dan Kendaraan Bermotor",
        "en": "Home and Car Loan Applications",
    },
}


def server_waits(app, floor, lang) -> dict[str, str]:
    """What the server says each queue waits, in `lang` (waits/text.py range_text), from the
    estimate the display was sent (the branch's, cached per change)."""
    with app.app_context(), app.test_request_context("/"), force_locale(lang):
        branch = db.session.get(Branch, floor.branch_id)
        queues = payloads.service_queues(db.session, branch)
        return {q["code"]: wait_text(q) for q in queues}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_display_shows_each_wait_as_a_range(
    lang, app, browser, live_server, lobby, screenshot_dir, monkeypatch
):
    # service times spread as before any history (EWT_PRIOR_CV): ranges, not points; one
    # estimate per branch per 5 s, as in production (EWT_MIN_INTERVAL_S)
    monkeypatch.setitem(app.config, "EWT_PRIOR_CV", 0.8)
    monkeypatch.setitem(app.config, "EWT_MIN_INTERVAL_S", 5.0)
    live.clear_cache()
    floor = lobby(lang, messages=["Selamat datang" if lang == "id" else "Welcome"])
    with app.app_context():
        branch = db.session.get(Branch, floor.branch_id)
        for service in branch.services:
            service.names = LONG_NAMES[service.code]
            service.name = LONG_NAMES[service.code]["en"]
        db.session.commit()
    floor.issue("teller", 6)
    floor.issue("cs", 4)
    floor.open_counters()  # loans: no counter serves it
    called = floor.call("Loket 1")
    live.clear_cache()  # the display's snapshot makes the estimate
    context, page, errors = open_display(browser, live_server, floor.token)
    try:
        expect(page.get_by_test_id("now-number")).to_have_text(called)
        waits = server_waits(app, floor, lang)
        assert waits["teller"] and waits["cs"] and waits["loans"] is None, waits
        expect(page.get_by_test_id("wait-teller")).to_have_text(waits["teller"])
        expect(page.get_by_test_id("wait-cs")).to_have_text(waits["cs"])
        no_counter = {"id": "belum ada loket buka", "en": "no counter open"}[lang]
        expect(page.get_by_test_id("wait-loans")).to_have_text(no_counter)
        # the script writes the server's words for any range (floor.js QueueFloor.waitRange)
        words = page.evaluate("JSON.parse(document.getElementById('display-config').textContent)")
        for low, high in [(610, 860), (0, 230), (10, 40), (300, 300), (1500, 2900)]:
            shown = page.evaluate(
                "([f, w]) => QueueFloor.waitRange(f, w)",
                [
                    {
                        "estimated_wait_s": high,
                        "estimated_wait_range": {"low_s": low, "high_s": high},
                    },
                    words["strings"]["wait_range"],
                ],
            )
            with app.test_request_context("/"), force_locale(lang):
                said = wait_text(
                    {
                        "estimated_wait_s": high,
                        "estimated_wait_range": {"low_s": low, "high_s": high},
                    }
                )
            assert shown == said, (low, high)

        # two changes inside the interval: the second's estimate is pending when it is pushed,
        # and comes on its own once the estimator may run again (no further change)
        live.clear_cache()
        with app.app_context():
            live.branch_estimates(db.session.get(Branch, floor.branch_id))  # a run, just now
        floor.issue("teller", 1)
        floor.issue("teller", 1)
        page.wait_for_function("() => QueueFloor.last.state.estimates >= 1", timeout=20_000)
        expect(page.get_by_test_id("waiting-teller")).to_contain_text("7")
        expect(page.get_by_test_id("wait-teller")).to_have_text(
            server_waits(app, floor, lang)["teller"]
        )

        # an estimate for a state the display has not reached is not applied; nor an old one
        state = page.evaluate("({...QueueFloor.last.state})")
        seq = state["seq"]
        page.evaluate(
            """s => {
              QueueFloor.last.test.inject({seq: s + 2, prev: s + 1, kind: 'estimate', queues: []});
              QueueFloor.last.test.inject({seq: s - 1, kind: 'estimate', queues: []});
            }""",
            seq,
        )
        after = page.evaluate("({...QueueFloor.last.state})")
        assert (after["seq"], after["estimates"]) == (seq, state["estimates"])
        assert after["ignored"] == state["ignored"] + 2

        page.screenshot(path=str(screenshot_dir / f"display-1920x1080-{lang}-ranges.png"))
        # the TV shows it all: nothing scrolls, and no wait is cut off in its tile
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= innerWidth"
            " && document.documentElement.scrollHeight <= innerHeight"
        )
        clipped = page.evaluate(
            """() => {
              const box = document.querySelector('.d-queues').getBoundingClientRect();
              return [...document.querySelectorAll('.d-q-wait, .d-q-count')].filter(el => {
                const r = el.getBoundingClientRect();
                return el.scrollWidth > el.clientWidth || r.bottom > box.bottom ||
                  r.right > box.right || r.bottom > innerHeight;
              }).map(el => el.textContent);
            }"""
        )
        assert clipped == []
        assert errors == []
    finally:
        context.close()


# what a bank branch offers besides teller, customer service and loans (the 4th to 8th queue),
# with names as long as branches give them
MORE_SERVICES = [
    (
        "cards",
        "D",
        {"id": "Layanan Kartu Kredit dan Kartu Debit", "en": "Credit and Debit Card Services"},
    ),
    (
        "priority",
        "E",
        {
            "id": "Nasabah Prioritas dan Layanan Wealth Management",
            "en": "Priority Banking and Wealth Management",
        },
    ),
    (
        "forex",
        "F",
        {
            "id": "Penukaran Valuta Asing dan Pengiriman Uang ke Luar Negeri",
            "en": "Foreign Exchange and International Money Transfers",
        },
    ),
    (
        "business",
        "G",
        {
            "id": "Layanan Nasabah Badan Usaha dan Kredit UMKM",
            "en": "Business Customers and Small Business Loans",
        },
    ),
    (
        "complaints",
        "H",
        {
            "id": "Pengaduan Nasabah dan Pemblokiran Kartu ATM",
            "en": "Complaints and Blocking of ATM Cards",
        },
    ),
]

# every queue tile, checked in the page: inside the screen, in no other area, nothing in it
# clipped by its own box or by any box around it, and each part on top where it is drawn
TILES_SHOWN = """() => {
  const inside = (r, b) => r.left >= b.left - 0.5 && r.right <= b.right + 0.5 &&
    r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5;
  const meets = (r, b) => r.left < b.right - 0.5 && b.left < r.right - 0.5 &&
    r.top < b.bottom - 0.5 && b.top < r.bottom - 0.5;
  const screen = {left: 0, top: 0, right: innerWidth, bottom: innerHeight};
  const others = ['.d-top', '.d-now', '.d-recent', '.d-message']
    .map(s => [s, document.querySelector(s).getBoundingClientRect()]);
  const problems = [];
  const tiles = [...document.querySelectorAll('[data-testid="queues"] > li')];
  for (const li of tiles) {
    const code = li.dataset.service;
    const box = li.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) problems.push(`${code}: no size`);
    if (!inside(box, screen)) problems.push(`${code}: off screen ${JSON.stringify(box)}`);
    for (const [s, r] of others) if (meets(box, r)) problems.push(`${code}: overlaps ${s}`);
    for (const part of li.children) {
      const what = `${code} ${part.className}`;
      const r = part.getBoundingClientRect();
      if (part.scrollWidth > part.clientWidth || part.scrollHeight > part.clientHeight)
        problems.push(`${what}: cut off (${part.scrollWidth}x${part.scrollHeight}` +
          ` in ${part.clientWidth}x${part.clientHeight})`);
      if (!inside(r, box)) problems.push(`${what}: outside its tile`);
      for (let up = part.parentElement; up; up = up.parentElement) {
        const o = getComputedStyle(up);
        if ((o.overflowX !== 'visible' || o.overflowY !== 'visible') &&
            up !== document.documentElement && !inside(r, up.getBoundingClientRect()))
          problems.push(`${what}: clipped by ${up.className || up.tagName}`);
      }
      for (const [fx, fy] of [[0.1, 0.2], [0.5, 0.5], [0.1, 0.8]]) {
        const x = r.left + Math.min(r.width * fx, 40), y = r.top + r.height * fy;
        const hit = document.elementFromPoint(x, y);
        if (!hit || !part.contains(hit)) problems.push(`${what}: covered at ${x},${y}`);
      }
    }
  }
  const sizes = tiles.map(li => ({
    code: li.dataset.service,
    name: li.querySelector('.d-q-name').textContent,
    px: [...li.children].map(p => parseFloat(getComputedStyle(p).fontSize)),
  }));
  return {problems, sizes};
}"""

# the called numbers keep their place: the whole "now calling" area and the newest recent
# calls are on screen, nothing in them cut off
CALLS_SHOWN = """() => {
  const screen = {left: 0, top: 0, right: innerWidth, bottom: innerHeight};
  const inside = (r, b) => r.left >= b.left - 0.5 && r.right <= b.right + 0.5 &&
    r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5;
  const problems = [];
  const now = document.querySelector('.d-now').getBoundingClientRect();
  if (!inside(now, screen)) problems.push('now calling: off screen');
  for (const id of ['now-number', 'now-counter', 'now-service']) {
    const el = document.querySelector(`[data-testid="${id}"]`);
    const r = el.getBoundingClientRect();
    if (!inside(r, now)) problems.push(`${id}: outside the now-calling area`);
    if (el.scrollWidth > el.clientWidth) problems.push(`${id}: cut off`);
  }
  const body = document.querySelector('[data-testid="now"]');
  if (body.scrollHeight > body.clientHeight) problems.push('now calling: overflows');
  const list = document.querySelector('[data-testid="recent"]').getBoundingClientRect();
  const recent = [...document.querySelectorAll('[data-testid="recent"] > li')]
    .filter(li => inside(li.getBoundingClientRect(), list)).length;
  const message = document.querySelector('[data-testid="message"]');
  if (!inside(message.getBoundingClientRect(), screen) ||
      message.scrollHeight > message.clientHeight) problems.push('message: cut off');
  return {problems, recent, numberPx: parseFloat(getComputedStyle(
    document.querySelector('[data-testid="now-number"]')).fontSize)};
}"""


@pytest.mark.parametrize("count", [3, 4, 6, 8])
@pytest.mark.parametrize("lang", ["id", "en"])
def test_display_fits_every_queue(
    lang, count, app, browser, live_server, lobby, screenshot_dir, monkeypatch
):
    # as a branch with 4-8 services shows them: long names, ranges, counts of two digits
    monkeypatch.setitem(app.config, "EWT_PRIOR_CV", 0.8)
    live.clear_cache()
    floor = lobby(
        lang,
        messages=[
            "Selamat datang di KCU Jakarta Sudirman"
            if lang == "id"
            else "Welcome to Makati Ayala Branch"
        ],
    )
    extra = MORE_SERVICES[: count - len(LONG_NAMES)]
    with app.app_context():
        branch = db.session.get(Branch, floor.branch_id)
        for service in branch.services:
            service.names = LONG_NAMES[service.code]
            service.name = LONG_NAMES[service.code]["en"]
        cs3 = next(c for c in branch.counters if c.name == "CS 3")
        for i, (code, prefix, names) in enumerate(extra):
            service = Service(
                branch=branch,
                code=code,
                prefix=prefix,
                name=names["en"],
                names=names,
                position=len(LONG_NAMES) + i,
            )
            db.session.add(service)
            if i % 2 == 0:  # every other one served, the rest waits for a counter
                cs3.service_links.append(
                    CounterService(service=service, position=len(cs3.service_links))
                )
        db.session.commit()
    names = {code: LONG_NAMES[code][lang] for code in LONG_NAMES}
    names |= {code: n[lang] for code, _, n in extra}
    assert len(names) == count
    floor.issue("teller", 16)
    floor.issue("cs", 4)
    for i, (code, _, _) in enumerate(extra):
        floor.issue(code, 2 + 3 * i)
    floor.open_counters()
    calls = [floor.call(c) for c in ("Loket 1", "Loket 2", "CS 3", "Loket 1", "Loket 2")]
    live.clear_cache()
    context, page, errors = open_display(browser, live_server, floor.token)
    try:
        expect(page.get_by_test_id("now-number")).to_have_text(calls[-1])
        expect(page.get_by_test_id("queues").locator("li")).to_have_count(count)
        waits = server_waits(app, floor, lang)
        for code in names:
            expect(page.get_by_test_id(f"waiting-{code}")).to_be_visible()
            expect(page.get_by_test_id(f"wait-{code}")).to_have_text(
                waits[code] or {"id": "belum ada loket buka", "en": "no counter open"}[lang]
            )
        page.wait_for_timeout(3500)  # the flash animation of the newest call has ended
        page.screenshot(path=str(screenshot_dir / f"display-1920x1080-{lang}-{count}-services.png"))
        # nothing scrolls
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= innerWidth"
            " && document.documentElement.scrollHeight <= innerHeight"
        )
        tiles = page.evaluate(TILES_SHOWN)
        assert tiles["problems"] == []
        # each service's whole name, in the branch's language; type that reads from across
        # the lobby (name and wait at least 22 px, the count at least 34 px on a 1080p TV)
        assert {t["code"]: t["name"] for t in tiles["sizes"]} == names
        for t in tiles["sizes"]:
            name_px, count_px, wait_px = t["px"]
            assert name_px >= 22 and wait_px >= 22 and count_px >= 34, t
        calls_shown = page.evaluate(CALLS_SHOWN)
        assert calls_shown["problems"] == []
        assert calls_shown["numberPx"] >= 250  # the called number as large as with 3 queues
        assert calls_shown["recent"] >= 3  # and the recent calls still listed
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
