"""The touch kiosk (`/kiosk/`) through its forms, as a browser without JavaScript sends them.

A kiosk is a paired device: the tests register and pair one with `devices.services` and give
the client its cookie. Issuing is a form POST with the CSRF token and a one-time form key,
answered by a redirect to the ticket screen; every refusal is a 4xx page in the kiosk's
language, never a 500.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape

import pytest
import qrcode
import time_machine
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.branches.models import WEEKDAYS, Branch
from queue_app.customers.models import Customer
from queue_app.devices.models import Device, DeviceKind
from queue_app.devices.services import pair_device, register_device, revoke_device
from queue_app.extensions import db
from queue_app.i18n import ensure_compiled
from queue_app.kiosk import services as kiosk_services
from queue_app.kiosk.links import ticket_tracking_url
from queue_app.tickets.models import Source, Ticket

from .apihelp import fast_passwords

ALWAYS_OPEN = {day: [["00:00", "23:59:59.999999"]] for day in WEEKDAYS}
COOKIE = "qa_device_kiosk"


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    ensure_compiled(app)


@dataclass
class Kiosk:
    branch: Branch
    other: Branch
    device: Device
    token: str
    admin: object


def _now():
    return datetime.now(UTC)


def _pair(branch, admin, name="Kiosk 1"):
    device, token = register_device(DeviceKind.KIOSK, now=_now())
    pair_device(device.pairing_code, branch, admin, name=name, now=_now())
    return device, token


@pytest.fixture
def kiosk(make, session, client, monkeypatch):
    fast_passwords(monkeypatch)
    branch = make.branch("JKT01")
    branch.name = "KCU Jakarta Sudirman"
    branch.opening_hours = ALWAYS_OPEN
    other = make.branch(
        "MNL01",
        timezone="Asia/Manila",
        country="PH",
        locale="en",
        services=[("teller", "A", 240), ("remit", "R", 360)],
    )
    other.opening_hours = ALWAYS_OPEN
    admin = make.user("admin", role=Role.ADMIN)
    device, token = _pair(branch, admin)
    session.commit()
    client.set_cookie(COOKIE, token)
    return Kiosk(branch, other, device, token, admin)


def page(response) -> str:
    return response.get_data(as_text=True)


def html_lang(text: str) -> str:
    return re.search(r'<html lang="([^"]+)"', text).group(1)


def visible(text: str) -> str:
    body = text[text.index("<body") :]
    body = re.sub(r"<(script|svg)\b.*?</\1>", " ", body, flags=re.S)
    return unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()))


def hidden(text: str, name: str, nth: int = 0) -> str:
    values = re.findall(rf'name="{name}" value="([^"]*)"', text)
    assert values, f"no hidden field {name}"
    return unescape(values[nth])


def form_of(client, lang="id", service="teller", by=None) -> dict:
    """The fields of the issuing form as the identify screen renders it."""
    query = f"?by={by}" if by else ""
    response = client.get(f"/kiosk/{lang}/service/{service}{query}")
    assert response.status_code == 200, page(response)[:500]
    text = page(response)
    fields = {
        "csrf_token": hidden(text, "csrf_token"),
        "service": hidden(text, "service"),
        "form_key": hidden(text, "form_key"),
    }
    if by:
        fields["by"] = by
    return fields


def tickets_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


def issue(client, lang="id", **fields):
    return client.post(f"/kiosk/{lang}/tickets", data=fields)


# --- the device ------------------------------------------------------------------------


def test_a_browser_without_a_device_token_sees_the_pairing_screen(client, app_ctx):
    response = client.get("/kiosk/")
    assert response.status_code == 200
    assert 'data-testid="pairing-code"' in page(response)
    assert COOKIE in response.headers.get("Set-Cookie", "")
    # and the kiosk's inner pages show it too
    assert 'data-testid="pairing-code"' in page(client.get("/kiosk/id/"))


def test_an_unpaired_or_revoked_kiosk_issues_nothing(client, kiosk, session):
    _device, token = register_device(DeviceKind.KIOSK, now=_now())
    session.commit()
    client.set_cookie(COOKIE, token)
    response = issue(client, service="teller", form_key="k" * 20)
    # CSRF comes first; without a paired device there is nothing but the pairing screen
    assert response.status_code in (200, 400)
    assert tickets_count() == 0
    assert 'data-testid="pairing-code"' in page(client.get("/kiosk/id/service/teller"))
    client.set_cookie(COOKIE, kiosk.token)
    revoke_device(db.session.get(Device, kiosk.device.id), kiosk.admin, now=_now())
    session.commit()
    assert 'data-testid="pairing-code"' in page(client.get("/kiosk/"))


def test_a_display_token_is_not_a_kiosk(client, kiosk, session):
    display, token = register_device(DeviceKind.DISPLAY, now=_now())
    pair_device(display.pairing_code, kiosk.branch, kiosk.admin, name="TV", now=_now())
    session.commit()
    client.set_cookie(COOKIE, token)
    assert 'data-testid="pairing-code"' in page(client.get("/kiosk/"))


# --- the screens -----------------------------------------------------------------------


def test_the_start_screen_speaks_the_branch_language_and_offers_both(client, kiosk):
    text = page(client.get("/kiosk/"))
    assert html_lang(text) == "id"
    assert "Selamat datang" in visible(text)
    assert 'href="/kiosk/id/"' in text and 'href="/kiosk/en/"' in text
    assert "KCU Jakarta Sudirman" in text


def test_an_english_branch_starts_in_english(client, kiosk, session):
    _device, token = _pair(kiosk.other, kiosk.admin, name="Kiosk MNL")
    session.commit()
    client.set_cookie(COOKIE, token)
    text = page(client.get("/kiosk/"))
    assert html_lang(text) == "en" and "Welcome" in visible(text)


def test_the_start_screen_forgets_the_language_of_the_last_customer(client, kiosk):
    assert html_lang(page(client.get("/kiosk/en/"))) == "en"
    client.get("/?lang=en")  # even a language stored in the session does not stick
    assert html_lang(page(client.get("/kiosk/"))) == "id"


def test_services_are_grouped_by_segment_and_only_active_ones_show(client, kiosk, session):
    services = {s.code: s for s in kiosk.branch.services}
    services["teller"].segment = "transaksi"
    services["cs"].segment = "layanan"
    services["loans"].segment = "layanan"
    services["loans"].active = False
    services["cs"].names = {"id": "Layanan Nasabah", "en": "Customer Service"}
    session.commit()
    text = page(client.get("/kiosk/id/"))
    assert html_lang(text) == "id"
    assert "<h2>Transaksi</h2>" in text
    assert 'data-service="teller"' in text and 'data-service="cs"' in text
    assert 'data-service="loans"' not in text
    assert "Layanan Nasabah" in text
    english = page(client.get("/kiosk/en/"))
    assert html_lang(english) == "en" and "<h2>Transactions</h2>" in english
    assert "Customer Service" in english and "Choose a service" in english


def test_the_identify_screen_offers_phone_customer_number_or_skip(client, kiosk):
    text = page(client.get("/kiosk/en/service/teller"))
    assert "?by=phone" in text and "?by=number" in text
    assert 'data-testid="skip"' in text
    phone = page(client.get("/kiosk/en/service/teller?by=phone"))
    assert 'name="phone"' in phone and "+62" in phone  # the branch's country code
    assert 'data-keypad="entry"' in phone
    # every render has its own form key
    assert form_of(client)["form_key"] != form_of(client)["form_key"]


# --- issuing ---------------------------------------------------------------------------


def test_a_paired_kiosk_issues_a_ticket_and_shows_it(client, kiosk):
    response = issue(client, **form_of(client, "en"), lang="en")
    assert response.status_code == 303
    location = response.headers["Location"]
    ticket = db.session.scalar(select(Ticket))
    assert location.endswith(f"/kiosk/en/ticket/{ticket.id}")
    assert ticket.source == Source.KIOSK and ticket.visit.customer_id is None
    assert ticket.branch_id == kiosk.branch.id and ticket.number == "A001"
    text = page(client.get(location))
    assert html_lang(text) == "en"
    shown = visible(text)
    assert "A001" in shown and "Teller" in shown
    assert "People ahead of you" in shown and "None: you are next" in shown
    # no counter is open: no invented estimate
    assert "Estimated wait not known yet" in shown
    assert 'data-testid="print"' in text and "<svg" in text


def test_the_ticket_screen_counts_people_ahead_and_estimates_the_wait(client, kiosk, make, session):
    counter = make.counter(kiosk.branch, "Loket 1")
    staff = make.user(role=Role.STAFF, branches=[kiosk.branch])
    make.open_counter(counter, staff, now=_now())
    make.ticket(kiosk.branch, "teller", now=_now())
    make.ticket(kiosk.branch, "teller", now=_now())
    session.commit()
    response = issue(client, **form_of(client))
    shown = visible(page(client.get(response.headers["Location"])))
    assert "A003" in shown
    assert "Orang di depan Anda 2" in shown
    # the estimator (waits.live), as of the last change (A003 issued): no history, so exactly
    # 240 s per teller ticket (EWT_PRIOR_CV = 0 in tests); the idle counter takes A001 at once,
    # A002 at 240 s, A003 at 480 s: 8 minutes, shown as the range "8-9 mnt" (waits/text.py)
    assert "Perkiraan waktu tunggu 8-9 mnt" in shown


def test_identifying_by_phone_links_the_customer(client, kiosk):
    response = issue(client, **form_of(client, by="phone"), phone="0812-3456-7890")
    assert response.status_code == 303
    ticket = db.session.scalar(select(Ticket))
    assert ticket.visit.customer.phone == "+6281234567890"
    # the same number later finds the same customer
    issue(client, **form_of(client, service="cs", by="phone"), phone="+62 812 3456 7890")
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1
    assert tickets_count() == 2


def test_identifying_by_customer_number_links_the_customer(client, kiosk, session):
    known = Customer(external_id="CIF-10001", phone="+6281111111111")
    session.add(known)
    session.commit()
    response = issue(client, **form_of(client, by="number"), customer_number=" cif-10001 ")
    assert response.status_code == 303
    assert db.session.scalar(select(Ticket)).visit.customer_id == known.id


def test_a_second_post_of_the_same_form_gives_the_first_ticket(client, kiosk):
    fields = form_of(client)
    first = issue(client, **fields)
    second = issue(client, **fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert tickets_count() == 1
    # a new form is a new ticket
    assert issue(client, **form_of(client)).headers["Location"] != first.headers["Location"]
    assert tickets_count() == 2


def test_a_double_tap_arriving_at_once_gives_one_ticket(app, kiosk):
    """Two requests of the same form at the same moment (both carry the same cookie)."""
    cookie_client = app.test_client()
    cookie_client.set_cookie(COOKIE, kiosk.token)
    with app.app_context():
        fields = form_of(cookie_client)
    db.session.commit()
    barrier = threading.Barrier(2)
    answers = []

    def tap():
        c = app.test_client()
        c.set_cookie(COOKIE, kiosk.token)
        c.set_cookie("session", cookie_client.get_cookie("session").value)
        barrier.wait()
        with app.app_context():
            answers.append(c.post("/kiosk/id/tickets", data=fields))

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [a.status_code for a in answers] == [303, 303], [page(a)[:300] for a in answers]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    db.session.expire_all()
    assert tickets_count() == 1


def test_csrf_is_enforced(client, kiosk):
    fields = form_of(client)
    del fields["csrf_token"]
    response = issue(client, lang="en", **fields)
    assert response.status_code == 400
    assert html_lang(page(response)) == "en"
    assert "This screen has expired. Please start again." in visible(page(response))
    response = issue(client, **{**fields, "csrf_token": "forged"})
    assert response.status_code == 400 and html_lang(page(response)) == "id"
    assert tickets_count() == 0


def test_a_closed_branch_shows_the_closed_screen_and_issues_nothing(client, kiosk, session):
    fields = form_of(client, "en")
    kiosk.branch.opening_hours = {}
    session.commit()
    for path in ("/kiosk/", "/kiosk/id/", "/kiosk/en/service/teller"):
        response = client.get(path)
        assert response.status_code == 200 and 'data-testid="closed"' in page(response), path
    assert "Cabang sedang tutup" in visible(page(client.get("/kiosk/")))
    response = issue(client, lang="en", **fields)
    assert response.status_code == 409
    assert "The branch is closed" in visible(page(response))
    assert tickets_count() == 0


def test_the_kiosk_follows_the_opening_hours_in_the_branch_time_zone(client, kiosk, session):
    kiosk.branch.opening_hours = {d: [["08:00", "15:00"]] for d in ("mon", "tue", "wed")}
    session.commit()
    # Tuesday 3 March 2026: 10:00 in Jakarta is open, 15:30 is closed
    with time_machine.travel(datetime(2026, 3, 3, 3, 0, tzinfo=UTC), tick=False):
        fields = form_of(client)
        assert 'data-testid="closed"' not in page(client.get("/kiosk/"))
    with time_machine.travel(datetime(2026, 3, 3, 8, 30, tzinfo=UTC), tick=False):
        text = page(client.get("/kiosk/id/"))
        assert 'data-testid="closed"' in text
        assert "Jam buka hari ini: 08.00\u201315.00" in visible(text)
        assert issue(client, **fields).status_code == 409
    # Thursday: closed all day
    with time_machine.travel(datetime(2026, 3, 5, 3, 0, tzinfo=UTC), tick=False):
        assert "Closed all day today." in visible(page(client.get("/kiosk/en/")))
    assert tickets_count() == 0


@pytest.mark.parametrize(
    ("lang", "change", "status", "message"),
    [
        ("en", {"service": "nope"}, 404, "This service is not offered at this branch."),
        ("id", {"service": "nope"}, 404, "Layanan ini tidak tersedia di cabang ini."),
        ("en", {"service": ""}, 404, "This service is not offered at this branch."),
        ("en", {"service": "x" * 500}, 404, "This service is not offered at this branch."),
        ("en", {"form_key": ""}, 422, "This screen has expired. Please start again."),
        ("en", {"form_key": "short"}, 422, "This screen has expired. Please start again."),
        ("id", {"form_key": "ü" * 30}, 422, "Layar ini sudah kedaluwarsa. Silakan mulai lagi."),
    ],
)
def test_bad_input_is_a_4xx_page_in_the_kiosk_language(
    client, kiosk, lang, change, status, message
):
    response = issue(client, lang=lang, **{**form_of(client, lang), **change})
    assert response.status_code == status, page(response)[:300]
    assert html_lang(page(response)) == lang
    assert message in visible(page(response))
    assert tickets_count() == 0


def test_an_inactive_service_is_refused(client, kiosk, session):
    fields = form_of(client, "en")
    next(s for s in kiosk.branch.services if s.code == "cs").active = False
    session.commit()
    response = issue(client, lang="en", **{**fields, "service": "cs"})
    assert response.status_code == 409
    assert "This service is not available right now" in visible(page(response))
    assert client.get("/kiosk/en/service/cs").status_code == 409
    assert tickets_count() == 0


@pytest.mark.parametrize("phone", ["12", "abc", "0812", "+1 202", "9" * 40, "08123456789012345"])
def test_a_bad_phone_number_asks_again_in_the_kiosk_language(client, kiosk, phone):
    response = issue(client, lang="en", **form_of(client, "en", by="phone"), phone=phone)
    assert response.status_code == 422
    text = page(response)
    assert "That is not a valid phone number" in visible(text)
    assert 'name="phone"' in text and 'aria-invalid="true"' in text  # the same screen, to fix it
    response = issue(client, **form_of(client, by="phone"), phone=phone)
    assert response.status_code == 422
    assert "Nomor telepon itu tidak valid" in visible(page(response))
    assert tickets_count() == 0


@pytest.mark.parametrize("number", ["x", "#12345", "1" * 40, "ab cd"])
def test_a_bad_customer_number_is_refused(client, kiosk, number):
    response = issue(
        client, lang="en", **form_of(client, "en", by="number"), customer_number=number
    )
    assert response.status_code == 422
    assert "That is not a valid customer number" in visible(page(response))
    assert tickets_count() == 0


def test_another_branchs_service_is_refused(client, kiosk):
    # MNL01 offers remittance, JKT01 does not: the kiosk only issues for its own branch
    response = issue(client, lang="en", **{**form_of(client, "en"), "service": "remit"})
    assert response.status_code == 404
    assert client.get("/kiosk/en/service/remit").status_code == 404
    assert tickets_count() == 0


def test_an_unknown_language_is_a_404_page(client, kiosk):
    for path in ("/kiosk/fr/", "/kiosk/xx/service/teller", "/kiosk/de/ticket/1"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert html_lang(page(response)) == "id"


# --- the ticket screen and its QR code ---------------------------------------------------


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules of a QR code drawn by qrcode's SvgPathImage (one square per module)."""
    return {(int(x), int(y)) for x, y in re.findall(r"M(\d+),(\d+)H", svg)}


def expected_modules(data: str) -> set[tuple[int, int]]:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    return {(x, y) for y, row in enumerate(code.get_matrix()) for x, dark in enumerate(row) if dark}


def test_the_qr_code_encodes_the_tracking_url(client, kiosk, app):
    response = issue(client, **form_of(client))
    text = page(client.get(response.headers["Location"]))
    ticket = db.session.scalar(select(Ticket))
    url = ticket_tracking_url(ticket.visit.token)
    assert url == f"{app.config['PUBLIC_BASE_URL'].rstrip('/')}/t/{ticket.visit.token}"
    assert f'data-url="{url}"' in text
    svg = re.search(r"<svg class=\"qr-code\".*?</svg>", text, re.S).group(0)
    assert qr_modules(svg) == expected_modules(url)
    assert qr_modules(svg) != expected_modules(url + "x")


def test_the_tracking_url_follows_public_base_url(app_ctx, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "PUBLIC_BASE_URL", "https://antri.example.co.id/")
    assert ticket_tracking_url("abc_-1") == "https://antri.example.co.id/t/abc_-1"


def test_the_ticket_screen_shows_only_this_kiosks_recent_tickets(
    client, kiosk, session, app, monkeypatch
):
    location = issue(client, **form_of(client)).headers["Location"]
    # another kiosk (of the same branch) does not show it
    _device, token = _pair(kiosk.branch, kiosk.admin, name="Kiosk 2")
    session.commit()
    client.set_cookie(COOKIE, token)
    response = client.get(location)
    assert response.status_code == 303 and response.headers["Location"].endswith("/kiosk/")
    # this kiosk, once the ticket is old, neither
    client.set_cookie(COOKIE, kiosk.token)
    assert client.get(location).status_code == 200
    monkeypatch.setitem(app.config, "KIOSK_TICKET_SCREEN_TTL_S", -1)
    assert client.get(location).status_code == 303
    assert client.get("/kiosk/id/ticket/999999").status_code == 303


# --- booking check-in hook ---------------------------------------------------------------


def test_booking_check_in_refuses_what_is_no_booking(client, kiosk):
    """The kiosk's booking screen: a code that names no booking, something that is not a
    code, and a form without its token (check-ins themselves: tests/test_checkin.py)."""
    text = page(client.get("/kiosk/en/booking"))
    assert 'name="code"' in text
    csrf = hidden(text, "csrf_token")
    response = client.post("/kiosk/en/booking", data={"csrf_token": csrf, "code": "BK-7Q2X"})
    assert response.status_code == 404
    assert "We cannot find a booking with this code at this branch." in visible(page(response))
    assert tickets_count() == 0
    response = client.post("/kiosk/id/booking", data={"csrf_token": csrf, "code": "??"})
    assert response.status_code == 422
    assert "Itu bukan kode janji temu" in visible(page(response))
    assert client.post("/kiosk/en/booking", data={"code": "BK-7Q2X"}).status_code == 400


@pytest.mark.parametrize(
    ("scanned", "code"),
    [
        ("bk-7q2x", "BK-7Q2X"),
        (" BK 7Q2X ", "BK7Q2X"),
        ("https://antri.example.co.id/b/BK-7Q2X", "BK-7Q2X"),
        ("https://antri.example.co.id/booking?code=bk-7q2x", "BK-7Q2X"),
    ],
)
def test_a_booking_code_is_read_from_what_was_typed_or_scanned(scanned, code):
    assert kiosk_services.booking_code_from_scan(scanned) == code


@pytest.mark.parametrize("bad", ["", "ab", "<script>", "x" * 60, "https://x.example/"])
def test_what_is_not_a_booking_code_is_refused(bad):
    from queue_app.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        kiosk_services.booking_code_from_scan(bad)


def test_issuing_reads_the_kiosk_with_its_branch_once_and_locks_it_once(client, kiosk):
    """The kiosk's cookie finds the device with its branch in one statement (the page speaks
    the branch's language); issuing locks the device row once: no statement reads the device
    or the branch again."""
    from .sqlcount import first_table, statements_sent

    fields = form_of(client)
    db.session.commit()
    db.session.expunge_all()  # as a new request finds it
    with statements_sent() as sent:
        response = issue(client, **fields)
    assert response.status_code == 303, page(response)[:300]
    reads = [first_table(s) for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert reads.count("devices") == 2, "\n".join(sent)  # found by its cookie, then locked
    # the branch's row comes with the device both times (the estimate made at this issue, as
    # the testing profile makes one at every change, reads only its sequence)
    alone = [s for s in sent if s.lstrip().startswith("SELECT branches.id")]
    assert not alone, "\n".join(alone)
