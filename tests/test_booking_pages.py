"""The booking pages on a phone (queue_app/booking/web.py), the signed manage link and its API
twins: choose a service, a day and a time; the hold and its lapse; the form; the confirmation
with its QR code and calendar file; cancel and reschedule through the link, with their
messages in the outbox and the old time's reminders withdrawn."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from queue_app.booking import links
from queue_app.booking import services as booking
from queue_app.booking.models import Appointment, AppointmentStatus, BranchClosure
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.notify.models import OutboxMessage, OutboxStatus
from queue_app.notify.reminders import queue_reminders

API = "/api/v1"
# Tuesday 17 March 2026, 10:00 in Jakarta: the strip of 14 days holds a branch closure
# (Wednesday 18th) and a public holiday (Thursday 19th, Nyepi)
NOW = datetime(2026, 3, 17, 3, 0, tzinfo=UTC)
CLOSED = date(2026, 3, 18)
HOLIDAY = date(2026, 3, 19)
FRIDAY = date(2026, 3, 20)
TELLERS = [("Loket 1", ["teller"]), ("Loket 2", ["teller"]), ("Loket 3", ["cs"])]


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def branch(make, clock):
    b = make.branch("JKT09", counters=TELLERS)  # 08:00-15:00 on weekdays, Asia/Jakarta
    b.name = "KCU Jakarta Sudirman"
    b.address = "Jl. Jend. Sudirman Kav. 1"
    b.city = "Jakarta"
    # loans: served by no counter (no place to book); cs: kept for walk-ins
    make.service(b, "cs").bookable_percent = 0
    db.session.add(BranchClosure(branch=b, day=CLOSED, reason="Renovasi"))
    db.session.commit()
    return b


def csrf(client, path) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def token_of(client) -> str:
    """A CSRF token of this client's session (any page with a form gives it)."""
    return csrf(client, "/b/JKT09/book/teller?date=2026-03-30")


def hold(client, start: str, *, service="teller", status=303):
    path = f"/b/JKT09/book/{service}"
    response = client.post(path, data={"start": start, "csrf_token": csrf(client, path)})
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def fill(client, details_path, *, status=303, **fields):
    form = {"name": "Siti Rahayu", "phone": "0812-3456-7890", "email": "", **fields}
    form = {k: v for k, v in form.items() if v is not None}
    response = client.post(details_path, data={**form, "csrf_token": token_of(client)})
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def book_on_pages(client, start: str, **fields) -> tuple[str, str]:
    """Book through the pages; returns (booking code, manage token)."""
    details = hold(client, start).headers["Location"]
    booked = fill(client, details, **fields).headers["Location"]
    token = re.fullmatch(r"/appointments/([^/]+)/booked", booked).group(1)
    page = client.get(booked).get_data(as_text=True)
    code = re.search(r'data-testid="booking-code">([A-Z0-9]+)<', page).group(1)
    return code, token


def appointment(code: str) -> Appointment:
    db.session.expire_all()
    return db.session.scalar(select(Appointment).where(Appointment.code == code))


def outbox(kind: str | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query))


def test_the_services_that_can_be_booked(client, branch):
    page = client.get("/b/JKT09/book?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-service="teller"' in html
    # cs is kept for walk-ins (0 % bookable), loans has no counter: neither can be booked
    assert 'data-service="cs"' not in html and 'data-service="loans"' not in html
    assert "Book a visit" in html and "KCU Jakarta Sudirman" in html
    assert client.get("/b/NOPE/book").status_code == 404
    assert client.get("/b/JKT09/book/cs").status_code == 404
    assert client.get("/b/JKT09/book/loans").status_code == 404


def test_the_strip_of_days_marks_closures_and_holidays(client, branch):
    html = client.get("/b/JKT09/book/teller?lang=en").get_data(as_text=True)
    days = re.findall(r'data-date="(\d{4}-\d\d-\d\d)"', html)
    assert days[0] == "2026-03-17" and len(days) == 14
    assert f'data-date="{CLOSED}" data-closed="Renovasi"' in html
    assert f'data-date="{HOLIDAY}" data-closed="Day of Silence"' in html
    # the weekend is closed too (no opening hours)
    assert 'data-date="2026-03-21" data-closed=' in html
    # today from 10:10 on, in Jakarta time, with the places left
    starts = re.findall(r'name="start" value="([^"]+)"', html)
    assert starts[0] == "2026-03-17T10:10:00+07:00"
    assert starts[-1] == "2026-03-17T14:50:00+07:00"
    assert "1 place<" in html and "(Western Indonesia Time)" in html
    # a holiday: no times, and why
    html = client.get(f"/b/JKT09/book/teller?date={HOLIDAY}&lang=en").get_data(as_text=True)
    assert 'data-testid="closed-reason"' in html and "Day of Silence" in html
    assert 'name="start"' not in html
    # a day outside the strip, or no date at all: the first day with a free place
    for query in ("?date=2027-01-01", "?date=nonsense", ""):
        html = client.get(f"/b/JKT09/book/teller{query}").get_data(as_text=True)
        assert re.search(r'data-date="2026-03-17"\s+aria-current="date"', html), query


def test_booking_a_time_on_the_phone(client, branch):
    start = "2026-03-20T09:00:00+07:00"
    details = hold(client, start).headers["Location"]
    # the hold's id is not in the link: a signed token is
    held = db.session.scalar(select(Appointment))
    assert held.status == AppointmentStatus.HELD and held.locale == "id"
    assert f"/{held.id}" not in details and re.search(r"/details/[\w\-.]{20,}$", details)
    form = client.get(details).get_data(as_text=True)
    assert 'data-seconds="600"' in form and "10:00" in form
    assert "Jumat, 20 Maret 2026" in form
    # a forged or altered token opens nothing
    assert client.get(details[:-3] + "xyz").status_code == 404

    booked = fill(client, details, email="Siti@Example.co.id", consent="yes").headers["Location"]
    a = appointment(held.code)
    assert a.status == AppointmentStatus.BOOKED and a.email == "siti@example.co.id"
    assert a.customer.phone == "+6281234567890" and a.customer.consent_contact is True
    page = client.get(booked).get_data(as_text=True)
    assert f'data-testid="booking-code">{a.code}<' in page
    assert 'class="qr-code"' in page  # the QR code of the booking code, drawn as SVG
    assert "09.00 WIB" in page and "KCU Jakarta Sudirman" in page
    token = booked.split("/")[2]
    assert f"/appointments/{token}/calendar.ics" in page
    assert f"http://localhost/appointments/{token}" in page or f"/appointments/{token}" in page

    # sending the form again (back button) lands on the same confirmation, books nothing more
    assert fill(client, details).headers["Location"] == booked
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1

    # the calendar file
    ics = client.get(f"/appointments/{token}/calendar.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    body = ics.get_data(as_text=True)
    assert "DTSTART:20260320T020000Z" in body and f"UID:{a.code}@" in body

    # the confirmation e-mail and SMS carry the manage link
    messages = outbox("appointment_confirmation")
    assert {m.channel.value for m in messages} == {"email"}  # no SMS gateway configured
    url = links.manage_url(a)
    assert url in messages[0].body


def test_the_confirmation_sms_has_the_manage_link(client, branch, monkeypatch, app):
    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", "http://127.0.0.1:9/send")
    code, token = book_on_pages(client, "2026-03-20T09:00:00+07:00")
    [sms] = outbox("appointment_confirmation")
    assert sms.channel.value == "sms" and sms.recipient == "+6281234567890"
    assert sms.body.endswith(f"/appointments/{token}") and code in sms.body


def test_the_form_says_what_is_missing(client, branch):
    details = hold(client, "2026-03-20T09:00:00+07:00").headers["Location"]
    page = fill(client, details, name="", phone="", status=422).get_data(as_text=True)
    assert 'id="name-error"' in page and 'data-testid="contact-error"' in page
    page = fill(client, details, phone="12", status=422).get_data(as_text=True)
    assert 'id="phone-error"' in page
    page = fill(client, details, phone="", email="siti@", status=422).get_data(as_text=True)
    assert 'id="email-error"' in page
    assert db.session.scalar(select(Appointment.status)) == AppointmentStatus.HELD
    assert outbox() == []


def test_a_lapsed_hold_gives_the_times_again(client, branch, clock):
    details = hold(client, "2026-03-20T09:00:00+07:00").headers["Location"]
    clock.shift(timedelta(seconds=601))
    page = client.get(details + "?lang=en")
    assert page.status_code == 409
    html = page.get_data(as_text=True)
    assert "that time is over" in html and 'name="start" value="2026-03-20T09:00:00+07:00"' in html
    response = fill(client, details, status=409)
    assert 'name="start" value="2026-03-20T09:00:00+07:00"' in response.get_data(as_text=True)
    assert db.session.scalar(select(Appointment.status)) == AppointmentStatus.HELD
    assert outbox() == []


def test_a_time_taken_meanwhile_gives_the_times_again(client, branch):
    start = "2026-03-20T09:00:00+07:00"
    teller = next(s for s in branch.services if s.code == "teller")
    # two teller counters, 50 % bookable: one place, taken while this customer looked
    page = client.get("/b/JKT09/book/teller?date=2026-03-20&lang=en").get_data(as_text=True)
    assert f'value="{start}"' in page
    when = datetime.fromisoformat(start).astimezone(UTC)
    booking.book(branch, teller, when, now=NOW, customer=None, name="Budi")
    db.session.commit()
    response = hold(client, start, status=409)
    html = response.get_data(as_text=True)
    assert 'data-testid="error"' in html and "just taken by someone else" in html
    assert f'data-start="{start}" aria-disabled="true"' in html
    assert 'name="start" value="2026-03-20T09:10:00+07:00"' in html
    hold(client, "not a time", status=422)
    hold(client, "2026-03-20T09:05:00+07:00", status=422)  # not a slot's start


def test_cancel_through_the_signed_link(client, branch, app):
    code, token = book_on_pages(client, "2026-03-20T09:00:00+07:00", email="siti@example.co.id")
    # a reminder already waiting in the outbox (the job ran the day before)
    with time_machine.travel(datetime(2026, 3, 19, 2, 0, tzinfo=UTC), tick=False):
        assert queue_reminders(now=datetime(2026, 3, 19, 2, 0, tzinfo=UTC)) == 1
        db.session.commit()
    assert len(outbox("appointment_reminder")) == 1

    manage = client.get(f"/appointments/{token}?lang=en").get_data(as_text=True)
    assert 'data-status="booked"' in manage and 'data-testid="cancel"' in manage
    # the booking code alone opens nothing
    assert client.get(f"/appointments/{code}").status_code == 404
    confirm = client.get(f"/appointments/{token}/cancel").get_data(as_text=True)
    assert "Cancel this booking?" in confirm
    response = client.post(f"/appointments/{token}/cancel", data={"csrf_token": token_of(client)})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-status="cancelled"' in page and "Your appointment is cancelled." in page
    assert appointment(code).status == AppointmentStatus.CANCELLED
    # its notice went to the outbox; the waiting reminder was withdrawn
    [notice] = outbox("appointment_cancelled")
    assert code in notice.body and notice.locale == "id" and "dibatalkan" in notice.subject
    assert outbox("appointment_reminder") == []
    # cancelled twice: refused, in words
    again = client.post(f"/appointments/{token}/cancel", data={"csrf_token": token_of(client)})
    assert again.status_code == 409 and 'data-code="booking_not_active"' in again.get_data(
        as_text=True
    )


def test_reschedule_through_the_signed_link(client, branch, app):
    code, token = book_on_pages(client, "2026-03-20T09:00:00+07:00", email="siti@example.co.id")
    # the 24h reminder of the old time went out already, the 2h one is waiting
    thursday = datetime(2026, 3, 19, 2, 0, tzinfo=UTC)
    queue_reminders(now=thursday)
    db.session.commit()
    sent = outbox("appointment_reminder")[0]
    sent.status = OutboxStatus.SENT
    queue_reminders(now=datetime(2026, 3, 20, 0, 0, tzinfo=UTC))
    db.session.commit()
    assert len(outbox("appointment_reminder")) == 2

    page = client.get(f"/appointments/{token}/reschedule?date=2026-03-20&lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-start="2026-03-20T09:00:00+07:00">' in html and "Your time" in html
    path = f"/appointments/{token}/reschedule"
    response = client.post(
        path, data={"start": "2026-03-23T13:30:00+07:00", "csrf_token": csrf(client, path)}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    moved = appointment(code)
    assert moved.start == datetime(2026, 3, 23, 6, 30, tzinfo=UTC) and moved.changes == 1
    assert moved.status == AppointmentStatus.BOOKED and moved.reminders_sent == []
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1:30 PM" in page and 'data-testid="done"' in page
    # the notice with the new time and the link; the waiting reminder of the old time is gone
    [notice] = outbox("appointment_rescheduled")
    assert "13.30" in notice.body and links.manage_url(moved) in notice.body
    [ics] = [f for f in notice.attachments if f["content_type"] == "text/calendar"]
    ics = base64.b64decode(ics["data_b64"]).decode()
    assert "DTSTART:20260323T063000Z" in ics and "SEQUENCE:1" in ics and f"UID:{code}@" in ics
    assert [m.id for m in outbox("appointment_reminder")] == [sent.id]
    # the old place is free, the new one taken
    teller = moved.service
    friday = {s.start: s for s in booking.day_slots(branch, teller, FRIDAY, now=NOW)}
    assert friday[datetime(2026, 3, 20, 2, 0, tzinfo=UTC)].taken == 0
    # the reminders start again for the new time (the sent one's key does not stand in the way)
    assert queue_reminders(now=datetime(2026, 3, 22, 6, 30, tzinfo=UTC)) == 1
    db.session.commit()
    assert len(outbox("appointment_reminder")) == 2
    # onto a full time: refused with the times again, the booking stays where it is
    other = booking.book(
        branch, teller, datetime(2026, 3, 24, 2, 0, tzinfo=UTC), now=NOW, customer=None, name="Budi"
    )
    db.session.commit()
    assert other.status == AppointmentStatus.BOOKED
    refused = client.post(
        path, data={"start": "2026-03-24T09:00:00+07:00", "csrf_token": csrf(client, path)}
    )
    assert refused.status_code == 409 and 'data-testid="error"' in refused.get_data(as_text=True)
    assert appointment(code).start == datetime(2026, 3, 23, 6, 30, tzinfo=UTC)


def test_the_api_twins_need_the_manage_token(client, branch):
    created = client.post(
        f"{API}/branches/JKT09/appointments",
        json={
            "service": "teller",
            "start": "2026-03-20T09:00:00+07:00",
            "customer": {"name": "Siti Rahayu", "phone": "0812-3456-7890"},
        },
    )
    assert created.status_code == 201
    body = created.get_json()
    code, token = body["code"], body["manage_token"]
    assert body["manage_url"].endswith(f"/appointments/{token}")
    # the booker hears the whole name; the six-character code alone tells only a masked one
    assert body["name"] == "Siti Rahayu"
    looked_up = client.get(f"{API}/appointments/{code}").get_json()
    assert looked_up["code"] == code and looked_up["name"] not in (None, "Siti Rahayu")
    assert looked_up["name"].startswith("S") and "Rahayu" not in looked_up["name"]
    # the code alone, a forged token, another booking's token: refused
    assert client.post(f"{API}/appointments/{code}/cancel", json={}).status_code == 422
    forged = client.post(f"{API}/appointments/{code}/cancel", json={"token": token[:-2] + "xx"})
    assert forged.status_code == 404 and forged.get_json()["error"]["code"] == "invalid_link"
    other = client.post(
        f"{API}/branches/JKT09/appointments",
        json={
            "service": "teller",
            "start": "2026-03-20T10:00:00+07:00",
            "customer": {"name": "Budi", "phone": "0812-1111-2222"},
        },
    ).get_json()
    wrong = client.post(f"{API}/appointments/{code}/cancel", json={"token": other["manage_token"]})
    assert wrong.status_code == 404
    # reschedule, then cancel
    moved = client.post(
        f"{API}/appointments/{code.lower()}/reschedule",
        json={"token": token, "start": "2026-03-20T11:00:00+07:00"},
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["start"] == "2026-03-20T11:00:00+07:00"
    assert moved.get_json()["code"] == code
    same = client.post(
        f"{API}/appointments/{code}/reschedule",
        json={"token": token, "start": "2026-03-20T11:00:00+07:00"},
    )
    assert same.status_code == 422 and same.get_json()["error"]["code"] == "same_slot"
    full = client.post(
        f"{API}/appointments/{code}/reschedule",
        json={"token": token, "start": "2026-03-20T10:00:00+07:00"},
    )
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "slot_full"
    closed = client.post(
        f"{API}/appointments/{code}/reschedule",
        json={"token": token, "start": "2026-03-19T10:00:00+07:00"},
    )
    assert closed.status_code == 422 and closed.get_json()["error"]["code"] == "closed"
    cancelled = client.post(f"{API}/appointments/{code}/cancel", json={"token": token})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = client.post(f"{API}/appointments/{code}/cancel", json={"token": token})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "booking_not_active"
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_started_appointment_cannot_be_changed(client, branch, clock):
    code, token = book_on_pages(client, "2026-03-17T10:30:00+07:00")
    clock.shift(timedelta(minutes=31))
    manage = client.get(f"/appointments/{token}").get_data(as_text=True)
    assert 'data-testid="cancel"' not in manage and 'data-testid="reschedule"' not in manage
    path = f"/appointments/{token}/cancel"
    response = client.post(path, data={"csrf_token": token_of(client)})
    assert response.status_code == 409
    assert 'data-code="booking_started"' in response.get_data(as_text=True)
    assert appointment(code).status == AppointmentStatus.BOOKED


def test_an_old_manage_link_expires(client, branch, app, monkeypatch):
    _code, token = book_on_pages(client, "2026-03-20T09:00:00+07:00")
    monkeypatch.setitem(app.config, "BOOKING_LINK_MAX_AGE_S", 3600)
    assert client.get(f"/appointments/{token}").status_code == 200
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert client.get(f"/appointments/{token}").status_code == 404


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_speaks_the_language(client, branch, lang):
    """The pages follow the chosen language (the branch's, Indonesian, by default); the
    dates and the words already translated show it (the new words are translated later)."""
    words = {
        "id": ["Selasa", "Jumat, 20 Maret 2026", "Kode pemesanan", "Tanggal"],
        "en": ["Tue", "Friday, March 20, 2026", "Booking code", "Date"],
    }[lang]
    query = "" if lang == "id" else f"?lang={lang}"
    html = client.get(f"/b/JKT09/book{query}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert words[0] in client.get("/b/JKT09/book/teller").get_data(as_text=True)
    details = hold(client, "2026-03-20T09:00:00+07:00").headers["Location"]
    assert words[1] in client.get(details).get_data(as_text=True)
    booked = client.get(fill(client, details).headers["Location"]).get_data(as_text=True)
    assert words[2] in booked and words[3] in booked
