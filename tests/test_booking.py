"""Appointments: the slots of a day (opening hours, holidays, closures, capacity), booking
through the API, holds that lapse, and the race for the last place of a slot."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from queue_app.booking import services as booking
from queue_app.booking.models import Appointment, AppointmentStatus, BranchClosure
from queue_app.core.errors import Conflict
from queue_app.extensions import db

API = "/api/v1"
WEDNESDAY = date(2026, 3, 4)  # the day after the `now` fixture (Tuesday 10:00 in Jakarta)
TELLERS = [
    ("Loket 1", ["teller"]),
    ("Loket 2", ["teller", "cs"]),
    ("Loket 3", ["teller"]),
    ("Loket 4", ["teller"]),
]


@pytest.fixture
def branch(make):
    b = make.branch("JKT09", counters=TELLERS)  # 08:00-15:00 on weekdays, Asia/Jakarta
    db.session.commit()
    return b


def slots(client, day, code="JKT09", service="teller", status=200):
    response = client.get(f"{API}/branches/{code}/services/{service}/slots?date={day}")
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    return body["error"] if status >= 400 else body


def book(client, start, *, code="JKT09", service="teller", customer=None, status=201):
    body = {
        "service": service,
        "start": start,
        "customer": customer or {"name": "Siti Rahayu", "phone": "0812-3456-7890"},
    }
    response = client.post(f"{API}/branches/{code}/appointments", json=body)
    assert response.status_code == status, response.get_json()
    answer = response.get_json()
    return answer["error"] if status >= 400 else answer


@time_machine.travel(datetime(2026, 3, 3, 3, 0, tzinfo=UTC), tick=False)
def test_a_days_slots_follow_opening_hours_in_the_branchs_zone(client, branch):
    page = slots(client, WEDNESDAY.isoformat())
    assert page["closed"] is None and page["date"] == "2026-03-04"
    starts = [s["start"] for s in page["items"]]
    # teller takes 4 minutes: 10-minute slots from 08:00 to 14:50, local time with its offset
    assert starts[0] == "2026-03-04T08:00:00+07:00"
    assert starts[1] == "2026-03-04T08:10:00+07:00"
    assert starts[-1] == "2026-03-04T14:50:00+07:00"
    assert len(starts) == 42
    assert page["items"][0]["end"] == "2026-03-04T08:10:00+07:00"
    # 4 counters serve teller, half of their time is bookable: 2 places a slot
    assert {(s["capacity"], s["available"]) for s in page["items"]} == {(2, 2)}
    # today: only the slots that have not started (it is 10:00 in Jakarta)
    today = slots(client, "2026-03-03")["items"]
    assert today[0]["start"] == "2026-03-03T10:10:00+07:00" and len(today) == 29
    # a weekend day has no opening hours, hence no slots
    assert slots(client, "2026-03-07") == {"date": "2026-03-07", "closed": None, "items": []}


@time_machine.travel(datetime(2026, 3, 3, 3, 0, tzinfo=UTC), tick=False)
def test_holidays_and_closures_have_no_slots(client, branch, make):
    # Indonesia's Independence Day, a Monday
    assert slots(client, "2026-08-17") == {
        "date": "2026-08-17",
        "closed": "Independence Day",
        "items": [],
    }
    db.session.add(BranchClosure(branch_id=branch.id, day=WEDNESDAY, reason="Renovasi"))
    db.session.commit()
    assert slots(client, WEDNESDAY.isoformat())["closed"] == "Renovasi"
    assert slots(client, WEDNESDAY.isoformat())["items"] == []
    refused = book(client, "2026-03-04T09:00:00+07:00", status=422)
    assert refused["code"] == "closed"
    # the same day is open at a branch in another country (the Philippines)
    manila = make.branch("MNL09", timezone="Asia/Manila", country="PH", counters=TELLERS)
    db.session.commit()
    page = slots(client, "2026-08-17", code=manila.code)
    assert page["closed"] is None
    assert page["items"][0]["start"] == "2026-08-17T08:00:00+08:00"


@time_machine.travel(datetime(2026, 3, 3, 3, 0, tzinfo=UTC), tick=False)
def test_booking_takes_a_place_until_the_slot_is_full(client, branch):
    first = book(client, "2026-03-04T09:00:00+07:00")
    assert first["status"] == "booked" and len(first["code"]) == 6
    assert first["start"] == "2026-03-04T09:00:00+07:00"
    assert first["end"] == "2026-03-04T09:10:00+07:00"
    assert first["service"] == "teller" and first["branch"] == "JKT09"
    # the same instant written in UTC is the same slot
    second = book(
        client, "2026-03-04T02:00:00Z", customer={"name": "Budi", "email": "budi@example.co.id"}
    )
    assert second["code"] != first["code"]
    full = book(client, "2026-03-04T09:00:00+07:00", status=409)
    assert full["code"] == "slot_full"
    page = slots(client, WEDNESDAY.isoformat())["items"]
    nine = next(s for s in page if s["start"] == "2026-03-04T09:00:00+07:00")
    assert nine["available"] == 0
    assert all(s["available"] == 2 for s in page if s is not nine)
    stored = db.session.scalars(select(Appointment).order_by(Appointment.id)).all()
    assert [a.customer.phone for a in stored[:1]] == ["+6281234567890"]
    assert stored[1].customer.email == "budi@example.co.id"
    assert [a.status for a in stored] == [AppointmentStatus.BOOKED] * 2


@time_machine.travel(datetime(2026, 3, 3, 3, 0, tzinfo=UTC), tick=False)
@pytest.mark.parametrize(
    ("start", "customer", "code"),
    [
        ("2026-03-04T09:05:00+07:00", None, "not_a_slot"),  # between two slots
        ("2026-03-04T16:00:00+07:00", None, "not_a_slot"),  # after closing
        ("2026-03-03T09:00:00+07:00", None, "slot_passed"),  # earlier today
        ("2026-03-04T09:00:00+07:00", {"name": "Siti"}, "invalid"),  # no phone, no e-mail
        ("2026-03-04T09:00:00+07:00", {"name": "Siti", "phone": "12"}, "invalid"),
        ("2026-03-04T09:00:00+07:00", {"name": "Siti", "phone": "0812"}, "invalid_phone"),
        ("2026-03-04T09:00:00+07:00", {"name": "Siti", "email": "siti@"}, "invalid"),
        ("2026-03-04T09:00:00", None, "invalid"),  # no offset: which 09:00?
    ],
)
def test_bad_bookings_are_refused_and_write_nothing(client, branch, start, customer, code):
    refused = book(client, start, customer=customer, status=422)
    assert refused["code"] == code, refused
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_unknown_branch_and_service(client, branch):
    assert slots(client, "2026-03-04", code="NOPE", status=404)["code"] == "not_found"
    assert slots(client, "2026-03-04", service="nope", status=404)["code"] == "not_found"
    assert slots(client, "2026-13-40", status=422)["code"] == "invalid"
    assert book(client, "2026-03-04T09:00:00+07:00", code="NOPE", status=404)
    refused = book(client, "2026-03-04T09:00:00+07:00", service="nope", status=422)
    assert refused["code"] == "unknown_service"


def test_a_hold_keeps_a_place_until_it_lapses(app_ctx, branch, now):
    teller = next(s for s in branch.services if s.code == "teller")
    start = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # 09:00 in Jakarta
    held = [booking.hold(branch, teller, start, now=now, hold_s=600) for _ in range(2)]
    db.session.commit()
    with pytest.raises(Conflict) as full:
        booking.hold(branch, teller, start, now=now + timedelta(seconds=599))
    assert full.value.code == "slot_full"
    db.session.rollback()
    # one is confirmed in time, the other lapses: its place is free again
    booking.confirm(held[0], now=now + timedelta(seconds=300), customer=None, name="Siti")
    db.session.commit()
    later = now + timedelta(seconds=601)
    [nine] = [
        s for s in booking.day_slots(branch, teller, WEDNESDAY, now=later) if s.start == start
    ]
    assert (nine.taken, nine.available) == (1, 1)
    with pytest.raises(Conflict) as lapsed:
        booking.confirm(held[1], now=later, customer=None, name="Budi")
    assert lapsed.value.code == "hold_expired"
    db.session.rollback()
    assert booking.expire_holds(now=later) == 1
    db.session.commit()
    assert [a.status for a in db.session.scalars(select(Appointment).order_by(Appointment.id))] == [
        AppointmentStatus.BOOKED,
        AppointmentStatus.EXPIRED,
    ]
    booking.hold(branch, teller, start, now=later)  # the lapsed place is taken again
    db.session.commit()


def _open_day_ahead(branch) -> date:
    """A weekday at least a week from today that is not a holiday (the race runs on the real
    clock: a clock frozen by time-machine is process-wide, not per thread)."""
    day = datetime.now(UTC).date() + timedelta(days=7)
    while day.weekday() >= 5 or booking.closed_reason(branch, day) is not None:
        day += timedelta(days=1)
    return day


def test_twenty_customers_race_for_the_last_place(app, app_ctx, branch):
    """20 clients, each with its own connection, POST the last free place of a slot at the
    same instant: exactly one gets it, the others are told the slot is full."""
    teller = next(s for s in branch.services if s.code == "teller")
    day = _open_day_ahead(branch)
    local = datetime(day.year, day.month, day.day, 9, 0, tzinfo=branch.tz)
    start = local.astimezone(UTC)
    booking.book(branch, teller, start, now=datetime.now(UTC), customer=None, name="Sudah Pesan")
    db.session.commit()
    db.session.remove()  # the main thread stays out of the database while they race

    barrier = threading.Barrier(20, timeout=30)
    answers: list = [None] * 20
    errors: list = []

    def customer(i):
        try:
            client = app.test_client()
            barrier.wait()
            response = client.post(
                f"{API}/branches/JKT09/appointments",
                json={
                    "service": "teller",
                    "start": local.isoformat(),
                    "customer": {"name": f"Nasabah {i}", "phone": f"0812-3456-{7000 + i}"},
                },
            )
            body = response.get_json()
            answers[i] = (response.status_code, (body.get("error") or body).get("code"))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 19, answers
    assert {code for status, code in answers if status == 409} == {"slot_full"}
    booked = db.session.scalar(
        select(func.count())
        .select_from(Appointment)
        .where(Appointment.start == start, Appointment.status == AppointmentStatus.BOOKED)
    )
    assert booked == 2  # the one booked before, and the winner


def test_the_job_expires_lapsed_holds(app, app_ctx, branch, now):
    from queue_app.jobs.tasks import expire_appointment_holds

    teller = next(s for s in branch.services if s.code == "teller")
    start = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    booking.hold(branch, teller, start, now=now, hold_s=600)
    db.session.commit()
    assert expire_appointment_holds(app, now + timedelta(seconds=599)) == 0
    assert expire_appointment_holds(app, now + timedelta(seconds=600)) == 1
    db.session.expire_all()
    assert db.session.scalar(select(Appointment.status)) == AppointmentStatus.EXPIRED


def test_twenty_customers_race_to_move_onto_the_last_place(app, app_ctx, branch):
    """20 booked customers, each with its own connection and manage token, move their booking
    onto the last free place of a slot at the same instant: exactly one gets it (its old place
    is freed), the others keep theirs and are told the slot is full."""
    from queue_app.booking import links

    teller = next(s for s in branch.services if s.code == "teller")
    day = _open_day_ahead(branch)
    at = lambda hour, minute=0: datetime(  # noqa: E731
        day.year, day.month, day.day, hour, minute, tzinfo=branch.tz
    ).astimezone(UTC)
    target = at(9)
    now = datetime.now(UTC)
    booking.book(branch, teller, target, now=now, customer=None, name="Sudah Pesan")
    movers = []
    for i in range(20):  # two per slot (the capacity), 10:00 to 11:30
        start = at(10) + timedelta(minutes=10 * (i // 2))
        a = booking.book(branch, teller, start, now=now, customer=None, name=f"Nasabah {i}")
        movers.append((a.code, links.manage_token(a), a.start))
    db.session.commit()
    db.session.remove()  # the main thread stays out of the database while they race

    barrier = threading.Barrier(20, timeout=30)
    answers: list = [None] * 20
    errors: list = []

    def customer(i):
        try:
            client = app.test_client()
            code, token, _start = movers[i]
            barrier.wait()
            response = client.post(
                f"{API}/appointments/{code}/reschedule",
                json={"token": token, "start": target.isoformat()},
            )
            body = response.get_json()
            answers[i] = (response.status_code, (body.get("error") or body).get("code"))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * 19, answers
    assert {code for status, code in answers if status == 409} == {"slot_full"}
    [winner] = [i for i, (status, _) in enumerate(answers) if status == 200]
    starts = dict(db.session.execute(select(Appointment.code, Appointment.start)).all())
    assert sum(1 for s in starts.values() if s == target) == 2  # the one there before, and one
    assert starts[movers[winner][0]] == target
    for i, (code, _token, start) in enumerate(movers):
        if i != winner:
            assert starts[code] == start  # the losers keep their place
    # the winner's old slot has a free place again; every other slot is as full as before
    old = movers[winner][2]
    taken = {s.start: s.taken for s in booking.day_slots(branch, teller, day, now=now)}
    assert taken[old] == 1 and taken[target] == 2
    assert all(n == 2 for start, n in taken.items() if start not in (old, target) and n)


def test_letting_a_hold_go_frees_it_and_tells_nobody(app_ctx, branch, now):
    from queue_app.notify.models import OutboxMessage

    teller = next(s for s in branch.services if s.code == "teller")
    start = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    held = booking.hold(branch, teller, start, now=now, hold_s=600)
    db.session.commit()
    booking.cancel(held, now=now + timedelta(seconds=10))
    db.session.commit()
    assert held.status == AppointmentStatus.CANCELLED
    [nine] = [s for s in booking.day_slots(branch, teller, WEDNESDAY, now=now) if s.start == start]
    assert nine.taken == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
