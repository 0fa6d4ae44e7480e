"""The customer's phone pages (queue_app/mobile/): the tracking page of a ticket, leaving the
queue, a branch's page, joining its queue remotely with a one-time code, the arrival scan at
the entrance and the poster that carries it. Both languages, friendly 404s, errors shown on
the page (never a 500), CSRF on every form.

The pages take their clock from `utcnow` in each mobile module: the tests fix it to a
Tuesday morning in Jakarta, inside opening hours, so nothing depends on when they run.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.extensions import db
from queue_app.notify.models import OutboxMessage
from queue_app.tickets import remote
from queue_app.tickets import services as engine
from queue_app.tickets.models import Source, Ticket, TicketStatus

from .apihelp import fast_passwords, isolated_client

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta
PASSWORD = "rahasia-123"
PHONE = "0812 3456 7890"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    for module in ("track", "branch", "join"):
        monkeypatch.setattr(f"queue_app.mobile.{module}.utcnow", lambda: NOW)


@pytest.fixture
def shop(make):
    """JKT01 (Indonesian) with a teller counter open and two tickets waiting, MNL01 (English)."""
    branch = make.branch("JKT01", address="Jl. Jend. Sudirman Kav. 1, Jakarta")
    branch.name = "KCU Jakarta Sudirman"
    staff = make.user("teller1", branches=[branch])
    make.open_counter(make.counter(branch, "Loket 1"), staff, now=NOW - timedelta(minutes=30))
    first = make.ticket(branch, now=NOW - timedelta(minutes=10))
    second = make.ticket(branch, now=NOW - timedelta(minutes=5))
    manila = make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
    manila.name = "Makati Ayala Branch"
    db.session.commit()
    return {"branch": branch, "staff": staff, "first": first, "second": second, "mnl": manila}


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def csrf_from(client, path) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def latest_code(recipient: str) -> str:
    db.session.expire_all()
    message = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.recipient == recipient, OutboxMessage.kind == "remote_code")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None, "no code message in the outbox"
    return re.search(r"\b(\d{6})\b", message.body).group(1)


def join_form(client, code="JKT01", **overrides):
    data = {
        "service": "teller",
        "contact": PHONE,
        "consent": "yes",
        "csrf_token": csrf_from(client, f"/b/{code}/join"),
        **overrides,
    }
    return client.post(f"/b/{code}/join", data=data)


def join_with_code(client, code="JKT01"):
    """Ask for a code and type it in: the ticket's tracking path."""
    assert join_form(client, code).status_code == 303
    typed = latest_code("+6281234567890")
    response = client.post(
        f"/b/{code}/join/verify",
        data={"code": typed, "csrf_token": csrf_from(client, f"/b/{code}/join/verify")},
    )
    assert response.status_code == 303, text_of(response)
    return response.headers["Location"]


# --- the tracking page -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "ahead", "wait"),
    [
        # the estimator's range (waits.live, waits/text.py): estimated at the last change (the
        # second ticket, 5 minutes ago) with exactly 240 s per teller ticket (no history,
        # EWT_PRIOR_CV = 0 in tests): the open counter takes the first at once, the second at
        # 240 s, so 4 minutes, read as "4-5 min"
        ("id", "Orang di depan Anda", "4-5 mnt"),
        ("en", "People ahead of you", "4-5 min"),
    ],
)
def test_tracking_page_shows_number_place_and_wait(client, shop, lang, ahead, wait):
    ticket = shop["second"]
    response = client.get(f"/t/{ticket.token}?lang={lang}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    page = text_of(response)
    assert f'<html lang="{lang}">' in html
    assert ticket.number in page and ahead in page and wait in page
    assert re.search(r'data-testid="ahead"[^>]*>1<', html)
    # live over Socket.IO with the visit's token, through the shared floor client
    assert "js/floor.js" in html and "js/track.js" in html
    assert f'"token": "{ticket.token}"' in html
    # without JavaScript the page reloads itself while the ticket is active
    assert '<meta http-equiv="refresh" content="30">' in html
    assert 'data-testid="leave"' in html
    # a kiosk ticket needs no arrival scan
    assert 'data-testid="arrival-notice"' not in html


def test_tracking_page_speaks_the_branch_language_by_default(client, shop, make):
    ticket = make.ticket(shop["mnl"], now=NOW)
    db.session.commit()
    page = text_of(client.get(f"/t/{ticket.token}"))
    assert "People ahead of you" in page
    page = text_of(client.get(f"/t/{shop['first'].token}", headers={"Accept-Language": "id"}))
    assert "Orang di depan Anda" in page


def test_called_ticket_names_the_counter(client, shop):
    counter = next(c for c in shop["branch"].counters if c.name == "Loket 1")
    called = engine.call_next(counter, shop["staff"], now=NOW)
    db.session.commit()
    assert called.id == shop["first"].id
    response = client.get(f"/t/{called.token}?lang=en")
    html = response.get_data(as_text=True)
    assert 'data-status="called"' in html and "state-called" in html
    assert "Please go to Loket 1" in text_of(response)
    assert "<title>Your turn: A" in html and "to Loket 1</title>" in html
    assert 'data-testid="leave"' not in html  # only a waiting ticket can leave


@pytest.mark.parametrize(
    ("action", "text"),
    [
        ("finish", "Your visit is finished"),
        ("no_show", "You were called but did not come"),
        ("cancel", "This ticket is cancelled"),
    ],
)
def test_final_states_read_clearly_and_stop_updating(client, shop, action, text):
    counter = next(c for c in shop["branch"].counters if c.name == "Loket 1")
    ticket = engine.call_next(counter, shop["staff"], now=NOW)
    if action == "finish":
        engine.start(ticket, shop["staff"], now=NOW)
        engine.finish(ticket, shop["staff"], now=NOW + timedelta(minutes=3))
    elif action == "no_show":
        engine.mark_no_show(ticket, shop["staff"], now=NOW)
    else:
        engine.cancel(ticket, shop["staff"], now=NOW)
    db.session.commit()
    response = client.get(f"/t/{ticket.token}?lang=en")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text in text_of(response)
    assert "js/track.js" not in html and 'http-equiv="refresh"' not in html


@pytest.mark.parametrize("lang", ["id", "en"])
def test_unknown_ticket_is_a_friendly_404(client, shop, lang):
    response = client.get(f"/t/not-a-token?lang={lang}")
    assert response.status_code == 404
    assert 'data-testid="not-found"' in response.get_data(as_text=True)
    assert client.get("/t/" + "x" * 65).status_code == 404
    assert client.get("/b/NOPE01").status_code == 404
    assert client.get("/b/NOPE01/join").status_code == 404
    assert client.get("/t/not-a-token/leave").status_code == 404


# --- leaving ----------------------------------------------------------------------------


def test_leave_asks_first_then_leaves_with_csrf(client, shop):
    ticket = shop["first"]
    path = f"/t/{ticket.token}/leave"
    confirm = client.get(path + "?lang=en")
    assert confirm.status_code == 200
    assert "Leave the queue?" in text_of(confirm)
    # no token, a forged token: refused, nothing changed
    assert client.post(path).status_code == 400
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert db.session.get(Ticket, ticket.id).status == TicketStatus.WAITING
    response = client.post(path, data={"csrf_token": csrf_from(client, path)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/t/{ticket.token}")
    assert db.session.get(Ticket, ticket.id).status == TicketStatus.CANCELLED
    page = client.get(f"/t/{ticket.token}?lang=en")
    assert "You have left the queue." in text_of(page)
    assert "This ticket is cancelled" in text_of(page)
    # the one behind moved up
    assert re.search(
        r'data-testid="ahead"[^>]*>None: you are next<',
        client.get(f"/t/{shop['second'].token}?lang=en").get_data(as_text=True),
    )
    # asking again: back to the ticket; posting again: said on the page, not a 500
    assert client.get(path).status_code == 303
    again = client.post(path, data={"csrf_token": csrf_from(client, "/b/JKT01/join")})
    assert again.status_code == 409
    assert "This ticket can no longer leave the queue." in text_of(again)


# --- the branch page ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Open now", "Hours today", "8:00", "Join the queue now", "Book a visit"]),
        ("id", ["Buka sekarang", "Jam buka hari ini", "08.00"]),
    ],
)
def test_branch_page(client, shop, lang, words):
    response = client.get(f"/b/JKT01?lang={lang}")
    assert response.status_code == 200
    page = text_of(response)
    html = response.get_data(as_text=True)
    assert "KCU Jakarta Sudirman" in page and "Jl. Jend. Sudirman Kav. 1" in page
    for word in words:
        assert word in page, word
    # live counts: two wait for the teller; the estimator (as of the last change, 240 s per
    # ticket) calls them at 0 and 240 s, a ticket taken now at 480 s: "8-9 min"
    assert re.search(r'data-testid="waiting-teller">2 ', html)
    assert re.search(r'data-testid="wait-teller">[^<]*8-9 m', html)
    assert 'href="/b/JKT01/join"' in html
    assert 'href="/b/JKT01/book"' in html


def test_branch_page_without_remote_intake(client, shop):
    shop["branch"].remote_intake = False
    db.session.commit()
    response = client.get("/b/JKT01?lang=en")
    html = response.get_data(as_text=True)
    assert 'data-testid="join-link"' not in html
    assert "This branch does not take remote tickets." in text_of(response)
    join_page = client.get("/b/JKT01/join?lang=en")
    assert 'data-testid="intake-closed"' in join_page.get_data(as_text=True)


# --- joining remotely ------------------------------------------------------------------------


def test_join_with_a_code_then_follow_the_ticket(client, shop):
    page = client.get("/b/JKT01/join?lang=en")
    assert page.status_code == 200
    assert "Join the queue" in text_of(page)
    location = join_with_code(client)
    assert location.startswith("/t/")
    ticket = db.session.scalar(select(Ticket).where(Ticket.source == Source.MOBILE))
    assert ticket is not None and not ticket.arrival_confirmed
    assert location == f"/t/{ticket.token}"
    tracking = client.get(location + "?lang=en")
    html = tracking.get_data(as_text=True)
    assert 'data-testid="arrival-notice"' in html
    assert "scan the QR poster at the entrance" in text_of(tracking)
    assert "moves back 3 places, at most 2 times" in text_of(tracking)
    # the code page is done with: it sends back to the start of the join
    assert client.get("/b/JKT01/join/verify").status_code == 303


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"service": ""}, "Choose a service."),
        ({"contact": "  "}, "Give your phone number or your e-mail address."),
        ({"consent": ""}, "Please agree that we may send you messages"),
        ({"contact": "12"}, "That is not a valid phone number"),
        ({"contact": "someone@nowhere"}, "That is not a valid e-mail address"),
        ({"service": "nope"}, "This service is not offered at this branch."),
    ],
)
def test_join_form_errors_are_shown_inline(client, shop, overrides, message):
    client.get("/b/JKT01?lang=en")
    response = join_form(client, **overrides)
    assert 400 <= response.status_code < 500
    page = text_of(response)
    assert message in page
    assert 'data-testid="error"' in response.get_data(as_text=True)
    # what was typed stays on the form
    if overrides.get("contact", "").strip():
        assert overrides["contact"] in response.get_data(as_text=True)
    assert db.session.scalar(select(OutboxMessage)) is None


def test_join_errors_in_indonesian(client, shop):
    client.get("/b/JKT01?lang=id")
    response = join_form(client, consent="")
    assert response.status_code == 422
    assert '<html lang="id">' in response.get_data(as_text=True)


def test_wrong_code_is_said_and_counted_then_the_right_one_works(client, shop):
    client.get("/b/JKT01?lang=en")
    assert join_form(client).status_code == 303
    verify = "/b/JKT01/join/verify"
    page = client.get(verify)
    assert "3456" not in text_of(page) and "7890" in text_of(page)  # masked
    right = latest_code("+6281234567890")
    wrong = "000000" if right != "000000" else "111111"
    response = client.post(verify, data={"code": wrong, "csrf_token": csrf_from(client, verify)})
    assert response.status_code == 422
    assert "That code is not right." in text_of(response)
    response = client.post(verify, data={"code": "", "csrf_token": csrf_from(client, verify)})
    assert response.status_code == 422
    assert client.post(verify, data={"code": right}).status_code == 400  # no CSRF token
    response = client.post(verify, data={"code": right, "csrf_token": csrf_from(client, verify)})
    assert response.status_code == 303
    assert db.session.scalar(select(Ticket).where(Ticket.source == Source.MOBILE)) is not None


def test_a_second_ticket_for_the_same_contact_is_refused_inline(client, shop):
    client.get("/b/JKT01?lang=en")
    join_with_code(client)
    response = join_form(client)
    assert response.status_code == 409
    assert "You already have a ticket in this branch's queue." in text_of(response)


def test_join_posts_are_rate_limited_per_address(client, shop, app):
    app.config["REMOTE_CODE_RATE_LIMIT"] = "2 per minute"
    try:
        client.get("/b/MNL01")
        statuses = [join_form(client, "MNL01", consent="").status_code for _ in range(3)]
        assert statuses == [422, 422, 429]
        response = join_form(client, "MNL01", consent="")
        assert "Too many tries from this network" in text_of(response)
    finally:
        app.config["REMOTE_CODE_RATE_LIMIT"] = "1000 per minute"


# --- arriving ------------------------------------------------------------------------------


def test_arrival_scan_confirms_the_ticket_this_phone_joined(client, shop):
    location = join_with_code(client)
    ticket = db.session.scalar(select(Ticket).where(Ticket.source == Source.MOBILE))
    key = remote.arrival_key(shop["branch"])
    # another branch's key: refused, said on the page
    bad = client.get(f"/b/JKT01/here?k={remote.arrival_key(shop['mnl'])}&lang=en")
    assert bad.status_code == 403
    assert "This QR code is not the one at this branch's entrance." in text_of(bad)
    assert not db.session.get(Ticket, ticket.id).arrival_confirmed
    assert client.get("/b/JKT01/here?lang=en").status_code == 403  # no key at all
    response = client.get(f"/b/JKT01/here?k={key}")
    assert response.status_code == 303
    assert response.headers["Location"] == location
    assert db.session.get(Ticket, ticket.id).arrival_confirmed
    page = client.get(location + "?lang=en")
    assert "Thank you: you are here." in text_of(page)
    assert 'data-testid="arrival-notice"' not in page.get_data(as_text=True)
    # scanning again just shows the ticket
    assert client.get(f"/b/JKT01/here?k={key}").headers["Location"] == location


@pytest.mark.parametrize("lang", ["id", "en"])
def test_arrival_scan_without_a_ticket_says_so(app, shop, lang):
    phone = isolated_client(app)
    response = phone.get(f"/b/JKT01/here?k={remote.arrival_key(shop['branch'])}&lang={lang}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="no-ticket"' in html and 'href="/b/JKT01"' in html
    assert client_free_of_tickets()


def client_free_of_tickets() -> bool:
    return db.session.scalar(select(Ticket).where(Ticket.source == Source.MOBILE)) is None


# --- the poster ----------------------------------------------------------------------------


def signed_in(app, username):
    phone = isolated_client(app)
    response = phone.post(
        "/auth/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_from(phone, "/auth/login"),
        },
    )
    assert response.status_code == 302
    return phone


def test_poster_for_managers_in_the_branch_language(app, client, shop, make, monkeypatch):
    fast_passwords(monkeypatch)
    make.user("manager1", role=Role.BRANCH_MANAGER, branches=[shop["branch"]])
    make.user("manager2", role=Role.BRANCH_MANAGER, branches=[shop["mnl"]])
    make.user("admin1", role=Role.ADMIN)
    db.session.commit()
    assert client.get("/b/JKT01/poster").status_code == 302  # sign in first
    assert signed_in(app, "teller1").get("/b/JKT01/poster").status_code == 403
    assert signed_in(app, "manager2").get("/b/JKT01/poster").status_code == 403
    response = signed_in(app, "manager1").get("/b/JKT01/poster?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('class="qr-code"') == 2
    assert 'lang="id"' in html  # the branch's language, whatever the reader chose
    key = re.search(r'data-url="[^"]*/b/JKT01/here\?k=([^"]+)"', html).group(1)
    assert remote.check_arrival_key(shop["branch"], key)
    assert re.search(r'data-url="http[^"]*/b/JKT01/join"', html)
    english = signed_in(app, "admin1").get("/b/MNL01/poster")
    assert english.status_code == 200
    assert "Join the queue from your phone" in text_of(english)


# --- a remote ticket not confirmed in time ---------------------------------------------------


def _counter(shop, name="Loket 1"):
    return next(c for c in shop["branch"].counters if c.name == name)


def test_unconfirmed_remote_ticket_moved_back_then_expired(client, shop, make):
    # nobody waits before it: the two walk-ins are served first
    counter = _counter(shop)
    engine.call_next(counter, shop["staff"], now=NOW)
    location = join_with_code(client)
    behind = make.ticket(shop["branch"], now=NOW + timedelta(minutes=1))
    shop["branch"].remote_move_back_limit = 1
    db.session.commit()
    ticket = db.session.scalar(select(Ticket).where(Ticket.source == Source.MOBILE))

    def serve_and_call_next(at):
        active = engine.active_ticket(counter)
        if active.status == TicketStatus.CALLED:
            engine.start(active, shop["staff"], now=at)
        engine.finish(active, shop["staff"], now=at)
        called = engine.call_next(counter, shop["staff"], now=at)
        db.session.commit()
        return called

    assert serve_and_call_next(NOW + timedelta(minutes=2)).id == shop["second"].id
    # its turn, not confirmed: the one behind goes first, it moves back
    assert serve_and_call_next(NOW + timedelta(minutes=3)).id == behind.id
    page = client.get(location + "?lang=en")
    html = page.get_data(as_text=True)
    assert re.search(r'data-testid="moved-back"(?![^>]*hidden)', html)
    assert db.session.get(Ticket, ticket.id).status == TicketStatus.WAITING
    # its turn again, past the limit: it expires, and the page says why
    assert serve_and_call_next(NOW + timedelta(minutes=4)) is None
    assert db.session.get(Ticket, ticket.id).status == TicketStatus.CANCELLED
    page = client.get(location + "?lang=en")
    assert "Your ticket expired: your turn came before you confirmed" in text_of(page)


def test_a_ticket_that_left_does_not_read_as_expired(client, shop):
    location = join_with_code(client)
    token = location.rsplit("/", 1)[1]
    path = f"/t/{token}/leave"
    assert client.post(path, data={"csrf_token": csrf_from(client, path)}).status_code == 303
    page = text_of(client.get(location + "?lang=en"))
    assert "This ticket is cancelled" in page and "expired" not in page


# --- busy hours, the start page --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/b/JKT01", "/b/JKT01/join"])
def test_busy_hours_on_the_branch_and_join_pages(client, shop, path):
    html = client.get(path + "?lang=en").get_data(as_text=True)
    assert 'data-testid="busy"' in html and "How busy is it?" in html
    # one service at a time, the others a tap away
    assert 'href="?service=cs#busy"' in html
    other = client.get(path + "?lang=en&service=cs").get_data(as_text=True)
    assert re.search(r'href="\?service=cs#busy" aria-current="true"', other)


def test_the_start_page_links_to_the_branch_pages(client, shop):
    html = client.get("/?lang=en").get_data(as_text=True)
    assert 'href="/b/JKT01"' in html and 'href="/b/MNL01"' in html


def test_opening_the_tracking_link_elsewhere_lets_that_browser_confirm_arrival(app, client, shop):
    location = join_with_code(client)
    other = isolated_client(app)  # the SMS link opened in the phone's other browser
    assert other.get(location).status_code == 200
    key = remote.arrival_key(shop["branch"])
    response = other.get(f"/b/JKT01/here?k={key}")
    assert response.status_code == 303 and response.headers["Location"] == location
    assert db.session.scalar(select(Ticket).where(Ticket.source == Source.MOBILE)).arrival_confirmed
