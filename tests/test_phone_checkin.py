"""Checking in a booked appointment on the phone at the branch (queue_app/mobile/arrival.py,
the `here` views of queue_app/mobile/branch.py): the booking pages remember the appointment
in the session, the entrance poster's link (with the branch's arrival key) offers to check it
in, the POST checks it in with the kiosk's rules (window, late rule, one ticket) and leads to
the tracking page; the manage page says how and when to check in on the day. A phone holding a
remote ticket too gets both choices. Both languages; the clock is fixed with time_machine.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import time_machine
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.booking import checkin, links
from queue_app.booking import services as booking
from queue_app.booking.models import Appointment, AppointmentStatus
from queue_app.branches.models import LateArrival
from queue_app.customers.services import identify_customer
from queue_app.extensions import db
from queue_app.mobile.common import APPOINTMENTS_KEY, APPOINTMENTS_MAX
from queue_app.tickets import remote
from queue_app.tickets import services as engine
from queue_app.tickets.models import Source, Ticket

from .apihelp import fast_passwords, isolated_client

# six counters serve teller, half of their time is bookable: three places a slot
TELLERS = [(f"Loket {i}", ["teller", "cs"]) for i in range(1, 7)]
# Wednesday 4 March 2026, 09:00 in Jakarta (02:00 UTC); booked the day before
START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
BOOKED_AT = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
EARLY = timedelta(seconds=1800)  # the branch defaults: 08:30 to 09:15
LATE = timedelta(seconds=900)
SECOND = timedelta(seconds=1)
ON_TIME = START - timedelta(minutes=10)  # 08:50 WIB

TEXT = {
    "en": {
        "button": "Check in for your appointment at 9:00 AM (Teller)",
        "window": "You can check in from 8:30 AM to 9:15 AM Western Indonesia Time.",
        "too_early": "It is too early to check in. You can check in from 8:30 AM.",
    },
    "id": {
        # the new sentences are not translated yet: their values are checked
        "button": "09.00 (Teller)",
        "window": "09.15 WIB",
        "too_early": "Masih terlalu awal untuk lapor kedatangan. "
        "Anda dapat lapor kedatangan mulai 08.30.",
    },
}


@pytest.fixture
def clock():
    with time_machine.travel(BOOKED_AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def branch(make, clock):
    b = make.branch("JKT09", counters=TELLERS)  # 08:00-15:00 on weekdays, Asia/Jakarta
    b.name = "KCU Jakarta Sudirman"
    make.branch("BDG01", counters=TELLERS)
    db.session.commit()
    return b


def book(branch, start=START, *, phone="0812-3456-7890") -> Appointment:
    customer = identify_customer(phone=phone, name="Siti Rahayu", region="ID")
    service = next(s for s in branch.services if s.code == "teller")
    appointment = booking.book(
        branch, service, start, now=BOOKED_AT, customer=customer, name="Siti Rahayu"
    )
    db.session.commit()
    return appointment


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def open_manage(client, appointment, lang="en"):
    """Open the booking's manage link on this phone (which remembers it)."""
    response = client.get(f"/appointments/{links.manage_token(appointment)}?lang={lang}")
    assert response.status_code == 200
    return response


def key_of(branch) -> str:
    return remote.arrival_key(branch)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def csrf(client) -> str:
    """A CSRF token of this client's session (a page with a form gives it)."""
    return csrf_of(client.get("/b/JKT09/book/teller?date=2026-03-30").get_data(as_text=True))


def scan(client, branch, lang="en", key=None):
    return client.get(f"/b/{branch.code}/here?k={key or key_of(branch)}&lang={lang}")


def check_in(client, branch, appointment_id, *, lang="en", key=None, token=None):
    """Scan the poster, then send the check-in form of `appointment_id`."""
    scan(client, branch, lang)
    form = {"k": key or key_of(branch), "appointment": str(appointment_id)}
    form["csrf_token"] = token if token is not None else csrf(client)
    return client.post(f"/b/{branch.code}/here?lang={lang}", data=form)


def fresh(appointment) -> Appointment:
    db.session.expire_all()
    return db.session.get(Appointment, appointment.id)


def tickets_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


# --- on time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "id"])
def test_manage_link_then_poster_checks_in_and_shows_the_ticket(client, branch, clock, lang):
    appointment = book(branch)
    clock.move_to(ON_TIME)
    manage = open_manage(client, appointment, lang)
    html = manage.get_data(as_text=True)
    assert 'data-testid="checkin-today" data-state="open"' in html
    assert TEXT[lang]["window"] in text_of(manage)

    page = scan(client, branch, lang)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-appointment="{appointment.id}" data-state="open"' in html
    assert TEXT[lang]["button"] in text_of(page)
    assert fresh(appointment).status == AppointmentStatus.BOOKED  # scanning changes nothing

    response = check_in(client, branch, appointment.id, lang=lang)
    assert response.status_code == 303
    stored = fresh(appointment)
    assert stored.status == AppointmentStatus.CHECKED_IN
    assert stored.checked_in_at == ON_TIME
    ticket = stored.ticket
    assert ticket.source == Source.APPOINTMENT and ticket.appointment_due_at == START
    assert response.headers["Location"] == f"/t/{ticket.token}"
    tracking = client.get(response.headers["Location"] + f"?lang={lang}")
    assert tracking.status_code == 200
    assert ticket.number in text_of(tracking)
    if lang == "en":
        assert "You are checked in. You will be called around the time" in text_of(tracking)

    # a second tap answers the same ticket; the page then leads to it
    again = check_in(client, branch, appointment.id, lang=lang)
    assert again.headers["Location"] == f"/t/{ticket.token}"
    assert tickets_count() == 1
    page = scan(client, branch, lang)
    html = page.get_data(as_text=True)
    assert 'data-state="checked_in"' in html and f'href="/t/{ticket.token}"' in html
    assert 'data-testid="check-in"' not in html


def test_the_booked_page_remembers_the_booking_too(client, branch, clock):
    path = "/b/JKT09/book/teller"
    slots = client.get(f"{path}?date=2026-03-04&lang=en").get_data(as_text=True)
    held = client.post(
        path, data={"start": "2026-03-04T09:00:00+07:00", "csrf_token": csrf_of(slots)}
    )
    details = held.headers["Location"]
    form = client.get(details).get_data(as_text=True)
    done = client.post(
        details,
        data={"name": "Siti", "phone": "0812-3456-7890", "csrf_token": csrf_of(form)},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/booked")
    booked = client.get(done.headers["Location"] + "?lang=en")
    assert booked.status_code == 200
    # booked the day before: nothing to say about checking in yet
    assert 'data-testid="checkin-today"' not in booked.get_data(as_text=True)
    appointment = db.session.scalar(select(Appointment))
    clock.move_to(ON_TIME)
    response = check_in(client, branch, appointment.id)
    assert response.status_code == 303
    assert fresh(appointment).status == AppointmentStatus.CHECKED_IN


# --- outside the window ----------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "id"])
def test_too_early_says_from_when(client, branch, clock, lang):
    appointment = book(branch)
    clock.move_to(START - EARLY - SECOND)  # 08:29:59
    manage = open_manage(client, appointment, lang)
    assert 'data-testid="checkin-today" data-state="early"' in manage.get_data(as_text=True)
    page = scan(client, branch, lang)
    assert 'data-state="early"' in page.get_data(as_text=True)
    response = check_in(client, branch, appointment.id, lang=lang)
    assert response.status_code == 422
    assert 'data-testid="error"' in response.get_data(as_text=True)
    assert TEXT[lang]["too_early"] in text_of(response)
    assert fresh(appointment).status == AppointmentStatus.BOOKED
    assert tickets_count() == 0
    # the window opens: now it works
    clock.move_to(START - EARLY)
    assert check_in(client, branch, appointment.id, lang=lang).status_code == 303


def test_a_booking_of_another_day_says_when_to_come_back(client, branch, clock):
    appointment = book(branch, START + timedelta(days=1))  # Thursday 09:00
    clock.move_to(ON_TIME)
    manage = open_manage(client, appointment)
    assert 'data-testid="checkin-today"' not in manage.get_data(as_text=True)
    page = scan(client, branch)
    assert 'data-state="later"' in page.get_data(as_text=True)
    assert "Your appointment is on Thursday, March 5, 2026 at 9:00 AM (Teller)" in text_of(page)
    assert 'data-testid="check-in"' not in page.get_data(as_text=True)
    # a form sent anyway: too early, with the day
    form = {"k": key_of(branch), "appointment": str(appointment.id)}
    form["csrf_token"] = csrf(client)
    response = client.post("/b/JKT09/here?lang=en", data=form)
    assert response.status_code == 422
    assert "You can check in from Thursday 5 March, 08:30." in text_of(response)


def test_late_with_walk_in_rule_gives_a_walk_in_ticket(client, branch, clock):
    appointment = book(branch)
    clock.move_to(START + LATE + SECOND)
    manage = open_manage(client, appointment)
    assert 'data-state="late"' in manage.get_data(as_text=True)
    assert "You can still come" in text_of(manage)
    page = scan(client, branch)
    assert 'data-state="late"' in page.get_data(as_text=True)
    assert "you will be queued like a customer without an appointment" in text_of(page)
    response = check_in(client, branch, appointment.id)
    assert response.status_code == 303
    stored = fresh(appointment)
    assert stored.status == AppointmentStatus.CHECKED_IN
    assert stored.ticket.source == Source.KIOSK and stored.ticket.appointment_due_at is None
    tracking = client.get(response.headers["Location"] + "?lang=en")
    assert "You are checked in after your time" in text_of(tracking)


def test_late_after_the_no_show_job_still_follows_the_walk_in_rule(client, branch, clock):
    appointment = book(branch)
    clock.move_to(START + LATE + timedelta(minutes=5))
    checkin.mark_no_shows(now=START + LATE + timedelta(minutes=5))
    db.session.commit()
    assert fresh(appointment).status == AppointmentStatus.NO_SHOW
    open_manage(client, appointment)
    assert 'data-state="late"' in scan(client, branch).get_data(as_text=True)
    response = check_in(client, branch, appointment.id)
    assert response.status_code == 303
    assert fresh(appointment).status == AppointmentStatus.CHECKED_IN


@pytest.mark.parametrize("lang", ["en", "id"])
def test_late_with_refuse_rule_is_refused_clearly(client, branch, clock, lang):
    branch.late_arrival = LateArrival.REFUSE
    db.session.commit()
    appointment = book(branch)
    clock.move_to(START + LATE + SECOND)
    manage = open_manage(client, appointment, lang)
    assert 'data-state="late"' in manage.get_data(as_text=True)
    page = scan(client, branch, lang)
    html = page.get_data(as_text=True)
    assert 'data-state="missed"' in html and 'data-testid="check-in"' not in html
    # the form sent just before the window closed arrives after it: refused, said why
    form = {"k": key_of(branch), "appointment": str(appointment.id), "csrf_token": csrf(client)}
    response = client.post(f"/b/JKT09/here?lang={lang}", data=form)
    assert response.status_code == 422
    assert 'data-testid="error"' in response.get_data(as_text=True)
    if lang == "en":
        assert "The time to check in for this booking has passed." in text_of(response)
    assert fresh(appointment).status == AppointmentStatus.BOOKED
    assert tickets_count() == 0


def test_a_cancelled_booking_is_not_offered(client, branch, clock):
    appointment = book(branch)
    booking.cancel(appointment, now=BOOKED_AT)
    db.session.commit()
    clock.move_to(ON_TIME)
    open_manage(client, appointment)
    page = scan(client, branch)
    assert 'data-testid="no-ticket"' in page.get_data(as_text=True)
    form = {"k": key_of(branch), "appointment": str(appointment.id)}
    form["csrf_token"] = csrf(client)
    response = client.post("/b/JKT09/here?lang=en", data=form)
    assert response.status_code == 409
    assert "This booking cannot be checked in" in text_of(response)
    assert tickets_count() == 0


# --- being at the branch, and this phone's bookings only -------------------------------------


def test_a_wrong_key_is_refused(client, branch, clock):
    appointment = book(branch)
    clock.move_to(ON_TIME)
    open_manage(client, appointment)
    other = db.session.scalar(select(type(branch)).where(type(branch).code == "BDG01"))
    page = scan(client, branch, key=key_of(other))
    assert page.status_code == 403
    html = page.get_data(as_text=True)
    assert "This QR code is not the one at this branch" in text_of(page)
    assert 'data-testid="check-in"' not in html
    assert client.get("/b/JKT09/here?lang=en").status_code == 403  # no key at all
    # the form with another branch's key (or none)
    for key in (key_of(other), "", "forged.key"):
        form = {"k": key, "appointment": str(appointment.id), "csrf_token": csrf(client)}
        response = client.post("/b/JKT09/here?lang=en", data=form)
        assert response.status_code == 403
        assert "This QR code is not the one at this branch" in text_of(response)
        assert 'data-testid="check-in"' not in response.get_data(as_text=True)
    assert fresh(appointment).status == AppointmentStatus.BOOKED
    assert tickets_count() == 0


def test_only_this_phones_bookings_of_this_branch(app, client, branch, clock):
    mine = book(branch)
    theirs = book(branch, phone="0813-1111-2222")
    other = db.session.scalar(select(type(branch)).where(type(branch).code == "BDG01"))
    elsewhere = book(other, phone="0813-3333-4444")
    clock.move_to(ON_TIME)
    open_manage(client, mine)
    open_manage(client, elsewhere)
    page = scan(client, branch)
    html = page.get_data(as_text=True)
    assert f'data-appointment="{mine.id}"' in html
    assert f'data-appointment="{theirs.id}"' not in html
    assert f'data-appointment="{elsewhere.id}"' not in html
    token = csrf(client)
    # someone else's booking id, or the other branch's one: not checked in
    for appointment_id in (theirs.id, elsewhere.id, "abc", "99999999999999"):
        form = {"k": key_of(branch), "appointment": str(appointment_id), "csrf_token": token}
        response = client.post("/b/JKT09/here?lang=en", data=form)
        assert response.status_code == 404
        assert "This phone has no such booking at this branch." in text_of(response)
    assert fresh(theirs).status == fresh(elsewhere).status == AppointmentStatus.BOOKED
    # a phone that never opened the booking is told what to do
    stranger = isolated_client(app)
    page = scan(stranger, branch)
    assert page.status_code == 200
    assert 'data-testid="no-ticket"' in page.get_data(as_text=True)
    assert "Booked a visit? Open the link of your booking on this phone" in text_of(page)


def test_the_form_needs_its_csrf_token(client, branch, clock):
    appointment = book(branch)
    clock.move_to(ON_TIME)
    open_manage(client, appointment)
    response = check_in(client, branch, appointment.id, token="")
    assert response.status_code == 400
    assert fresh(appointment).status == AppointmentStatus.BOOKED


def test_the_session_keeps_the_newest_bookings_only(client, branch, clock):
    appointments = [book(branch, START + timedelta(minutes=30 * i)) for i in range(7)]
    for appointment in appointments:
        open_manage(client, appointment)
    open_manage(client, appointments[-1])  # opened again: still once
    with client.session_transaction() as session:
        remembered = session[APPOINTMENTS_KEY]
    assert remembered == [a.id for a in appointments[-APPOINTMENTS_MAX:]]


def test_unknown_branch_and_empty_form(client, branch, clock):
    assert client.get("/b/NOPE/here?k=x").status_code == 404
    assert 'data-testid="no-ticket"' in scan(client, branch).get_data(as_text=True)
    response = client.post(
        "/b/JKT09/here?lang=en", data={"k": key_of(branch), "csrf_token": csrf(client)}
    )
    assert response.status_code == 404  # neither a booking nor a ticket: said, never a 500
    assert 'data-testid="error"' in response.get_data(as_text=True)


# --- a remote ticket and a booking on the same phone -----------------------------------------


def test_a_remote_ticket_and_a_booking_give_both_choices(client, branch, clock):
    appointment = book(branch)
    clock.move_to(ON_TIME)
    teller = next(s for s in branch.services if s.code == "teller")
    remote_ticket = engine.issue_ticket(
        branch, teller, now=ON_TIME, source=Source.MOBILE, awaiting_arrival=True
    )
    db.session.commit()
    client.get(f"/t/{remote_ticket.token}")  # the message's link remembers the ticket
    open_manage(client, appointment)
    page = scan(client, branch)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="choose"' in html
    assert 'data-testid="check-in"' in html and 'data-testid="confirm-ticket"' in html
    db.session.expire_all()
    assert not db.session.get(Ticket, remote_ticket.id).arrival_confirmed  # not before asked

    # "I'm here" for the remote ticket
    form = {"k": key_of(branch), "ticket": remote_ticket.token, "csrf_token": csrf(client)}
    response = client.post("/b/JKT09/here?lang=en", data=form)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/t/{remote_ticket.token}"
    db.session.expire_all()
    assert db.session.get(Ticket, remote_ticket.id).arrival_confirmed
    assert fresh(appointment).status == AppointmentStatus.BOOKED
    # the booking is still offered, and checks in on its own
    page = scan(client, branch)
    assert 'data-testid="confirm-ticket"' not in page.get_data(as_text=True)
    assert 'data-testid="ticket-link"' in page.get_data(as_text=True)
    response = check_in(client, branch, appointment.id)
    assert response.status_code == 303
    assert fresh(appointment).status == AppointmentStatus.CHECKED_IN
    # a ticket this phone does not hold cannot be confirmed from it
    stranger_ticket = engine.issue_ticket(
        branch, teller, now=ON_TIME, source=Source.MOBILE, awaiting_arrival=True
    )
    db.session.commit()
    form["ticket"] = stranger_ticket.token
    assert client.post("/b/JKT09/here?lang=en", data=form).status_code == 404
    db.session.expire_all()
    assert not db.session.get(Ticket, stranger_ticket.id).arrival_confirmed


def test_a_remote_ticket_alone_is_confirmed_at_once_as_before(client, branch, clock):
    clock.move_to(ON_TIME)
    teller = next(s for s in branch.services if s.code == "teller")
    ticket = engine.issue_ticket(
        branch, teller, now=ON_TIME, source=Source.MOBILE, awaiting_arrival=True
    )
    db.session.commit()
    client.get(f"/t/{ticket.token}")
    response = scan(client, branch)
    assert response.status_code == 303 and response.headers["Location"] == f"/t/{ticket.token}"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).arrival_confirmed


# --- the poster ------------------------------------------------------------------------------


def test_the_posters_link_checks_in_the_booking(app, client, branch, clock, make, monkeypatch):
    fast_passwords(monkeypatch)
    make.user("manager9", role=Role.BRANCH_MANAGER, branches=[branch], password="rahasia-123")
    db.session.commit()
    manager = isolated_client(app)
    login = manager.get("/auth/login").get_data(as_text=True)
    signed = manager.post(
        "/auth/login",
        data={"username": "manager9", "password": "rahasia-123", "csrf_token": csrf_of(login)},
    )
    assert signed.status_code == 302
    poster = manager.get("/b/JKT09/poster").get_data(as_text=True)
    assert 'data-testid="poster-booking"' in poster
    here_url = unescape(re.search(r'data-url="([^"]*/b/JKT09/here\?k=[^"]+)"', poster).group(1))
    path = "/" + here_url.split("://", 1)[-1].split("/", 1)[1]

    appointment = book(branch)
    clock.move_to(ON_TIME)
    open_manage(client, appointment)
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    key = re.search(r'name="k" value="([^"]+)"', html).group(1)
    form = {"k": unescape(key), "appointment": str(appointment.id), "csrf_token": csrf(client)}
    response = client.post("/b/JKT09/here", data=form)
    assert response.status_code == 303
    assert fresh(appointment).status == AppointmentStatus.CHECKED_IN
