"""Checking in booked appointments (`booking/checkin.py`): the window and its edges under both
late rules, a second check-in, codes typed loosely, other branches' and inactive bookings,
the no-show job, the API and the kiosk's booking screen (forms, without JavaScript)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from babel.dates import format_datetime, format_time
from flask_babel import force_locale
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.booking import checkin
from queue_app.booking import services as booking
from queue_app.booking.models import Appointment, AppointmentStatus
from queue_app.branches.models import WEEKDAYS, Branch, LateArrival
from queue_app.core.errors import Conflict, InvalidInput, NotFound
from queue_app.customers.services import identify_customer
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import pair_device, register_device
from queue_app.extensions import db
from queue_app.i18n import ensure_compiled
from queue_app.kiosk.links import ticket_tracking_url
from queue_app.kiosk.views import MESSAGES
from queue_app.tickets.models import Source, Ticket

from .apihelp import assert_error, fast_passwords

API = "/api/v1"
# six counters serve teller, half of their time is bookable: three places a slot
TELLERS = [(f"Loket {i}", ["teller", "cs"]) for i in range(1, 7)]
# the appointments are on Wednesday 4 March 2026 at 09:00 in Jakarta (02:00 UTC); they are
# booked the day before (the `now` fixture)
START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
EARLY = timedelta(seconds=1800)  # the branch defaults
LATE = timedelta(seconds=900)
SECOND = timedelta(seconds=1)
ALWAYS_OPEN = {day: [["00:00", "23:59:59.999999"]] for day in WEEKDAYS}
KIOSK_COOKIE = "qa_device_kiosk"


@pytest.fixture
def branch(make):
    b = make.branch("JKT09", counters=TELLERS)  # 08:00-15:00 on weekdays, Asia/Jakarta
    db.session.commit()
    return b


def _book(branch, now, start=START, *, service="teller", name="Siti Rahayu", phone=None):
    customer = identify_customer(phone=phone or "0812-3456-7890", name=name, region="ID")
    svc = next(s for s in branch.services if s.code == service)
    appointment = booking.book(branch, svc, start, now=now, customer=customer, name=name)
    db.session.commit()
    return appointment


@pytest.fixture
def appointment(branch, now):
    return _book(branch, now)


def tickets_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


def fresh(appointment) -> Appointment:
    db.session.expire_all()
    return db.session.get(Appointment, appointment.id)


# --- the window ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [LateArrival.WALK_IN, LateArrival.REFUSE])
@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (START - EARLY - SECOND, "too_early"),
        (START - EARLY, "on_time"),
        (START, "on_time"),
        (START + LATE, "on_time"),
        (START + LATE + SECOND, "late"),
    ],
    ids=["one-second-before-the-window", "window-opens", "start", "window-closes", "one-after"],
)
def test_the_window_and_its_edges(branch, appointment, rule, moment, expected):
    branch.late_arrival = rule
    db.session.commit()
    if expected == "too_early":
        with pytest.raises(InvalidInput) as refused:
            checkin.check_in(branch, appointment.code, now=moment)
        assert refused.value.code == "too_early"
        assert refused.value.opens_at == START - EARLY
        assert "08:30:00+07:00" in refused.value.message  # says from when, in branch time
        db.session.rollback()
        assert fresh(appointment).status == AppointmentStatus.BOOKED
        assert tickets_count() == 0
        return
    if expected == "late" and rule == LateArrival.REFUSE:
        with pytest.raises(InvalidInput) as refused:
            checkin.check_in(branch, appointment.code, now=moment)
        assert refused.value.code == "too_late"
        db.session.rollback()
        assert fresh(appointment).status == AppointmentStatus.BOOKED
        assert tickets_count() == 0
        return
    done = checkin.check_in(branch, appointment.code, now=moment)
    db.session.commit()
    stored = fresh(appointment)
    ticket = db.session.get(Ticket, done.ticket.id)
    assert stored.status == AppointmentStatus.CHECKED_IN
    assert stored.checked_in_at == moment
    assert stored.ticket_id == ticket.id and stored.ticket is ticket
    assert ticket.visit.customer_id == stored.customer_id is not None
    assert ticket.service.code == "teller" and ticket.issued_at == moment
    assert done.repeated is False
    if expected == "on_time":
        assert done.late is False
        assert ticket.source == Source.APPOINTMENT
        assert ticket.appointment_due_at == START
    else:  # a late arrival at a walk-in branch: queued like anyone who walks in now
        assert done.late is True
        assert ticket.source == Source.KIOSK
        assert ticket.appointment_due_at is None
    assert tickets_count() == 1


def test_a_second_check_in_answers_the_same_ticket(branch, appointment):
    first = checkin.check_in(branch, appointment.code, now=START - timedelta(minutes=10))
    db.session.commit()
    # a double tap, the same code typed again later, even after the window: the same ticket
    for moment in (START - timedelta(minutes=10), START + timedelta(hours=2)):
        again = checkin.check_in(branch, appointment.code.lower(), now=moment)
        db.session.commit()
        assert again.ticket.id == first.ticket.id
        assert again.repeated is True and again.late is False
    assert tickets_count() == 1
    assert fresh(appointment).checked_in_at == START - timedelta(minutes=10)


def test_a_late_walk_in_checked_in_again_is_still_late(branch, appointment):
    first = checkin.check_in(branch, appointment.code, now=START + LATE + SECOND)
    db.session.commit()
    again = checkin.check_in(branch, appointment.code, now=START + LATE + 5 * SECOND)
    assert (again.ticket.id, again.late, again.repeated) == (first.ticket.id, True, True)
    assert tickets_count() == 1


def test_two_check_ins_at_the_same_moment_issue_one_ticket(app, branch, appointment):
    """Two kiosks (each its own connection) check the same booking in at once."""
    code, branch_id = appointment.code, branch.id
    db.session.remove()
    barrier = threading.Barrier(2, timeout=30)
    answers: list = [None, None]
    errors: list = []

    def kiosk(i):
        try:
            with app.app_context():
                barrier.wait()  # (SQLite: every transaction writes, so none starts before)
                here = db.session.get(Branch, branch_id)
                done = checkin.check_in(here, code, now=START - timedelta(minutes=5))
                db.session.commit()
                answers[i] = (done.ticket.id, done.repeated)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert answers[0][0] == answers[1][0]
    assert sorted(repeated for _, repeated in answers) == [False, True]
    assert tickets_count() == 1


@pytest.mark.parametrize(
    "typed",
    ["{code}", " {lower} ", "{a}-{b}", "{a} {b}", "{lower_a} \u2013 {lower_b}\n", "\t{code}\r\n"],
)
def test_a_code_is_typed_loosely(branch, appointment, typed):
    code = appointment.code
    text = typed.format(
        code=code,
        lower=code.lower(),
        a=code[:3],
        b=code[3:],
        lower_a=code[:3].lower(),
        lower_b=code[3:].lower(),
    )
    done = checkin.check_in(branch, text, now=START)
    assert done.appointment.id == appointment.id


@pytest.mark.parametrize("typed", ["", "   ", "ZZZZZZ", "AB", "<script>", "X" * 40, None])
def test_an_unknown_code_is_not_found(branch, appointment, typed):
    with pytest.raises(NotFound) as refused:
        checkin.check_in(branch, typed, now=START)
    assert refused.value.code == "unknown_booking"
    assert tickets_count() == 0


def test_another_branchs_booking_is_not_found_here(make, branch, appointment):
    other = make.branch("JKT10", counters=TELLERS)
    db.session.commit()
    with pytest.raises(NotFound) as refused:
        checkin.check_in(other, appointment.code, now=START)
    assert refused.value.code == "unknown_booking"
    db.session.rollback()
    assert fresh(appointment).status == AppointmentStatus.BOOKED
    assert tickets_count() == 0


@pytest.mark.parametrize("status", ["cancelled", "held", "expired"])
def test_an_inactive_booking_is_not_checked_in(branch, now, appointment, status):
    teller = next(s for s in branch.services if s.code == "teller")
    if status == "cancelled":
        target = booking.cancel(appointment, now=now)
    else:
        target = booking.hold(branch, teller, START, now=now, hold_s=600)
        if status == "expired":
            booking.expire_holds(now=now + timedelta(seconds=600))
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        checkin.check_in(branch, target.code, now=START)
    assert refused.value.code == "booking_not_active"
    db.session.rollback()
    assert fresh(target).status == AppointmentStatus(status)
    assert tickets_count() == 0


def test_a_booking_of_an_earlier_day_is_over(branch, appointment):
    branch.late_arrival = LateArrival.WALK_IN
    db.session.commit()
    next_day = START + timedelta(days=1)
    with pytest.raises(Conflict) as refused:
        checkin.check_in(branch, appointment.code, now=next_day)
    assert refused.value.code == "booking_not_active"


def test_an_inactive_service_gives_no_ticket(branch, appointment):
    next(s for s in branch.services if s.code == "teller").active = False
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        checkin.check_in(branch, appointment.code, now=START)
    assert refused.value.code == "service_unavailable"
    db.session.rollback()
    assert fresh(appointment).status == AppointmentStatus.BOOKED


# --- the no-show rule -------------------------------------------------------------------------


def test_the_job_marks_only_the_bookings_whose_window_closed(app, make, branch, now):
    from queue_app.booking.checkin import expire_no_shows_job

    refusing = make.branch("JKT11", counters=TELLERS, late_arrival=LateArrival.REFUSE)
    db.session.commit()
    nine = _book(branch, now)  # closes 09:15
    nine_refusing = _book(refusing, now, phone="0812-1111-2222")  # closes 09:15
    ten_past = _book(branch, now, START + timedelta(minutes=10), phone="0812-3333-4444")
    came = _book(branch, now, phone="0812-5555-6666")
    cancelled = _book(refusing, now, phone="0812-7777-8888")
    checkin.check_in(branch, came.code, now=START)
    booking.cancel(cancelled, now=now)
    db.session.commit()
    ids = [a.id for a in (nine, nine_refusing, ten_past, came, cancelled)]

    def statuses():
        db.session.expire_all()
        found = [db.session.get(Appointment, i).status.value for i in ids]
        db.session.rollback()  # SQLite: the job's transaction must not wait for this one
        return found

    assert expire_no_shows_job(app, START + LATE) == 0  # the last moment of the window
    assert statuses() == ["booked", "booked", "booked", "checked_in", "cancelled"]
    assert expire_no_shows_job(app, START + LATE + SECOND) == 2  # both late rules alike
    assert statuses() == ["no_show", "no_show", "booked", "checked_in", "cancelled"]
    assert expire_no_shows_job(app, START + LATE + SECOND) == 0  # nothing twice
    assert expire_no_shows_job(app, START + timedelta(minutes=10) + LATE + SECOND) == 1
    assert statuses() == ["no_show", "no_show", "no_show", "checked_in", "cancelled"]


def test_a_no_show_arriving_later_that_day_gets_the_late_rules_answer(make, branch, now):
    """The answer to a late arrival does not depend on whether the job ran already."""
    refusing = make.branch("JKT11", counters=TELLERS, late_arrival=LateArrival.REFUSE)
    db.session.commit()
    walk_in = _book(branch, now)
    refused = _book(refusing, now, phone="0812-1111-2222")
    assert checkin.mark_no_shows(now=START + LATE + SECOND) == 2
    db.session.commit()
    at = START + timedelta(hours=1)
    with pytest.raises(InvalidInput) as too_late:
        checkin.check_in(refusing, refused.code, now=at)
    assert too_late.value.code == "too_late"
    db.session.rollback()
    assert fresh(refused).status == AppointmentStatus.NO_SHOW
    done = checkin.check_in(branch, walk_in.code, now=at)
    db.session.commit()
    assert done.late is True and done.ticket.source == Source.KIOSK
    assert fresh(walk_in).status == AppointmentStatus.CHECKED_IN
    # the day after, a no-show is over at a walk-in branch too
    other = _book(branch, now, START + timedelta(minutes=20), phone="0812-9999-0000")
    checkin.mark_no_shows(now=START + timedelta(hours=2))
    db.session.commit()
    with pytest.raises(Conflict) as over:
        checkin.check_in(branch, other.code, now=START + timedelta(days=1))
    assert over.value.code == "booking_not_active"


# --- the API -----------------------------------------------------------------------------------


def check_in_url(booking_code, branch_code="JKT09"):
    return f"{API}/branches/{branch_code}/appointments/{booking_code}/check-in"


def test_api_check_in_answers_the_ticket_with_its_token(client, branch, appointment):
    with time_machine.travel(START - timedelta(minutes=20), tick=False):
        response = client.post(check_in_url(appointment.code))
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        again = client.post(check_in_url(appointment.code.lower()))
    assert body["late"] is False
    assert body["source"] == "appointment" and body["status"] == "waiting"
    assert body["service"] == "teller" and body["branch"] == "JKT09"
    assert body["number"].startswith("A") and body["position"] == 1
    ticket = db.session.get(Ticket, body["id"])
    assert body["token"] == ticket.token
    assert ticket.appointment_due_at == START
    assert again.status_code == 201 and again.get_json() == body
    assert tickets_count() == 1
    shown = client.get(f"{API}/appointments/{appointment.code}")
    assert shown.status_code == 200
    assert shown.get_json()["status"] == "checked_in"
    assert shown.get_json()["checked_in_at"] == "2026-03-04T08:40:00+07:00"


def test_api_late_walk_in_says_late(client, branch, appointment):
    with time_machine.travel(START + LATE + SECOND, tick=False):
        response = client.post(check_in_url(appointment.code))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["late"] is True and body["source"] == "kiosk"
    assert db.session.get(Ticket, body["id"]).appointment_due_at is None


def test_api_check_in_errors(client, make, branch, now, appointment):
    make.branch("JKT10", counters=TELLERS)
    cancelled = _book(branch, now, phone="0812-1111-2222")
    booking.cancel(cancelled, now=now)
    db.session.commit()
    with time_machine.travel(START - EARLY - SECOND, tick=False):
        early = assert_error(client.post(check_in_url(appointment.code)), 422, "too_early")
        assert "2026-03-04T08:30:00+07:00" in early["message"]
    with time_machine.travel(START, tick=False):
        assert_error(client.post(check_in_url("ZZZZZZ")), 404, "unknown_booking")
        assert_error(client.post(check_in_url(appointment.code, "JKT10")), 404, "unknown_booking")
        assert_error(client.post(check_in_url(appointment.code, "NOPE")), 404, "not_found")
        assert_error(client.post(check_in_url(cancelled.code)), 409, "booking_not_active")
        assert_error(client.get(check_in_url(appointment.code)), 405)
    branch.late_arrival = LateArrival.REFUSE
    db.session.commit()
    with time_machine.travel(START + LATE + SECOND, tick=False):
        assert_error(client.post(check_in_url(appointment.code)), 422, "too_late")
    assert tickets_count() == 0
    assert fresh(appointment).status == AppointmentStatus.BOOKED


def test_api_shows_an_appointment_by_its_code(client, branch, appointment):
    for written in (appointment.code, appointment.code.lower(), f"{appointment.code[:3]}-x"):
        response = client.get(f"{API}/appointments/{written}")
        if written.endswith("-x"):
            assert_error(response, 404, "unknown_booking")
            continue
        assert response.status_code == 200, response.get_json()
        assert response.get_json() == {
            "code": appointment.code,
            "status": "booked",
            "branch": "JKT09",
            "service": "teller",
            "service_name": "Teller",
            "start": "2026-03-04T09:00:00+07:00",
            "end": "2026-03-04T09:10:00+07:00",
            "name": "Si•• R•••••",  # the code alone never tells who booked
            "checked_in_at": None,
        }
    assert_error(client.get(f"{API}/appointments/ZZZZZZ"), 404, "unknown_booking")
    assert_error(client.get(f"{API}/appointments/{'Z' * 200}"), 404, "unknown_booking")


# --- the kiosk (forms, as a browser without JavaScript sends them) -------------------------------


@pytest.fixture
def kiosk(app, branch, client, monkeypatch):
    ensure_compiled(app)
    fast_passwords(monkeypatch)
    from .factories import user

    branch.opening_hours = ALWAYS_OPEN
    admin = user("admin", role=Role.ADMIN)
    device, token = register_device(DeviceKind.KIOSK, now=datetime.now(UTC))
    pair_device(device.pairing_code, branch, admin, name="Kiosk 1", now=datetime.now(UTC))
    db.session.commit()
    client.set_cookie(KIOSK_COOKIE, token)
    return device


def _post(client, lang, code, at):
    """The booking screen's form sent at `at` (its CSRF token taken at that time too)."""
    import re

    with time_machine.travel(at, tick=False):
        text = client.get(f"/kiosk/{lang}/booking").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]*)"', text).group(1)
        return client.post(f"/kiosk/{lang}/booking", data={"csrf_token": csrf, "code": code})


def _local_time(moment, lang):
    return format_time(moment.astimezone(ZoneInfo("Asia/Jakarta")), "short", locale=lang)


def _message(lang, code, **values):
    with force_locale(lang):
        text = str(MESSAGES[code])
    return text % values if values else text


@pytest.mark.parametrize("lang", ["id", "en"])
def test_kiosk_check_in_shows_the_ticket(client, kiosk, appointment, lang):
    at = START - timedelta(minutes=10)
    response = _post(client, lang, appointment.code.lower(), at)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    again = _post(client, lang, appointment.code, at).get_data(as_text=True)  # a double tap
    ticket = db.session.scalar(select(Ticket))
    assert f'<html lang="{lang}">' in text
    assert 'data-testid="booking-result" data-status="checked_in"' in text
    assert f'data-testid="ticket-number">{ticket.number}<' in text
    assert f'data-url="{ticket_tracking_url(ticket.token)}"' in text  # the QR code's link
    assert "<svg" in text and "data-return-after" in text  # back to the start by itself
    assert _local_time(START, lang) in text  # the booking's time, in the branch's zone
    assert f'data-testid="ticket-number">{ticket.number}<' in again
    assert tickets_count() == 1 and ticket.source == Source.APPOINTMENT


def test_kiosk_late_walk_in_is_told_so(client, kiosk, appointment):
    response = _post(client, "en", appointment.code, START + timedelta(minutes=30))
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-status="late"' in text and "You are late for your booking" in text
    assert db.session.scalar(select(Ticket.source)) == Source.KIOSK


@pytest.mark.parametrize("lang", ["id", "en"])
def test_kiosk_refusals_are_said_in_the_kiosks_language(client, kiosk, branch, now, lang):
    appointment = _book(branch, now)
    cancelled = _book(branch, now, phone="0812-1111-2222")
    booking.cancel(cancelled, now=now)
    db.session.commit()

    def post(code, at):
        response = _post(client, lang, code, at)
        text = response.get_data(as_text=True)
        assert f'<html lang="{lang}">' in text and 'name="code"' in text  # the form again
        return response.status_code, text

    status, text = post("ZZZZZZ", START)
    assert status == 404 and _message(lang, "unknown_booking") in text
    assert 'data-code="unknown_booking"' in text and 'value="ZZZZZZ"' in text
    status, text = post(cancelled.code, START)
    assert status == 409 and _message(lang, "booking_not_active") in text
    status, text = post(appointment.code, START - timedelta(hours=1))
    opens = _local_time(START - EARLY, lang)
    assert status == 422 and _message(lang, "too_early", time=opens) in text
    # the day before: the day is said too
    status, text = post(appointment.code, START - timedelta(days=1))
    day = format_datetime(START.astimezone(ZoneInfo("Asia/Jakarta")), "EEEE d MMMM", locale=lang)
    assert status == 422 and 'data-code="too_early"' in text and day in text
    branch.late_arrival = LateArrival.REFUSE
    db.session.commit()
    status, text = post(appointment.code, START + timedelta(hours=1))
    assert status == 422 and _message(lang, "too_late") in text
    assert tickets_count() == 0
