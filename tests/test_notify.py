"""The outbox and its channels, for real: the booking confirmation is written in the booking's
transaction and delivered to a real SMTP server (aiosmtpd) and a real HTTP SMS gateway
(http.server) from tests/outboxes.py; retries, fallbacks and reminders run with explicit clocks.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import png
import pytest
import qrcode
import time_machine
from flask_babel import force_locale, gettext
from icalendar import Calendar
from sqlalchemy import func, select

from queue_app.booking import links
from queue_app.booking import services as booking
from queue_app.booking.models import Appointment
from queue_app.customers.models import Customer
from queue_app.customers.services import identify_customer
from queue_app.extensions import db
from queue_app.notify import content, jobs
from queue_app.notify.models import Channel, OutboxMessage, OutboxStatus
from queue_app.notify.reminders import parse_offsets
from queue_app.notify.services import deliver_due, enqueue

from .servers import free_port

API = "/api/v1"
TUESDAY_10_WIB = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
NINE_WIB = "2026-03-04T09:00:00+07:00"  # Wednesday 02:00 UTC
TELLERS = [  # 4 counters serve teller, half of their time is bookable: 2 places a slot
    ("Loket 1", ["teller"]),
    ("Loket 2", ["teller", "cs"]),
    ("Loket 3", ["teller"]),
    ("Loket 4", ["teller"]),
]
SIMPLE_EMAIL = {"name": "Budi Santoso", "email": "budi@example.co.id"}
PHONE = {"name": "Siti Rahayu", "phone": "0812-3456-7890"}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def branch(make):
    b = make.branch("JKT09", counters=TELLERS, address="Jl. Sudirman No. 1", city="Jakarta")
    db.session.commit()
    return b


def book(client, start=NINE_WIB, *, code="JKT09", customer=SIMPLE_EMAIL, locale=None, status=201):
    body = {"service": "teller", "start": start, "customer": customer}
    if locale:
        body["locale"] = locale
    response = client.post(f"{API}/branches/{code}/appointments", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def book_directly(branch, start, *, now, phone="+6281234567890", email="siti@example.co.id"):
    """A booking for a customer known by phone and e-mail (from the bank's CRM: a booking
    form stores the e-mail only of a customer without a phone number), committed."""
    customer = Customer(phone=phone, email=email, name="Siti Rahayu")
    db.session.add(customer)
    service = next(s for s in branch.services if s.code == "teller")
    code = booking.book(branch, service, start, now=now, customer=customer).code
    db.session.commit()
    return code


def release(value):
    """End the test's own transaction (SQLite: it holds the write lock a job's session needs);
    what was read stays readable."""
    for row in value if isinstance(value, list) else [value]:
        if isinstance(row, db.Model):
            db.session.expunge(row)
    db.session.rollback()
    return value


def tr(locale: str, msgid: str, **values) -> str:
    """`msgid` as the catalogue of `locale` gives it (the date and time formats are the
    locale's own whatever the catalogue holds)."""
    with force_locale(locale):
        return gettext(msgid, **values)


def outbox(**filters) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for key, value in filters.items():
        query = query.where(getattr(OutboxMessage, key) == value)
    return release(db.session.scalars(query).all())


def appointment(code: str) -> Appointment:
    return release(db.session.scalar(select(Appointment).where(Appointment.code == code)))


def count_outbox() -> int:
    return release(db.session.scalar(select(func.count()).select_from(OutboxMessage)))


def parts(message):
    """text, html, {filename: (content type, bytes, content id)}"""
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    files = {}
    for part in message.walk():
        if part.get_filename():
            files[part.get_filename()] = (
                part.get_content_type(),
                part.get_payload(decode=True),
                part["Content-ID"],
            )
    return text, html, files


# --- the confirmation is written with the booking --------------------------------------------


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_a_booking_writes_one_confirmation_in_its_own_transaction(client, branch):
    answer = book(client)
    [message] = outbox()
    assert message.kind == "appointment_confirmation"
    assert message.channel == Channel.EMAIL and message.recipient == "budi@example.co.id"
    assert message.status == OutboxStatus.PENDING and message.attempts == 0
    assert message.locale == "id" and message.next_attempt_at == TUESDAY_10_WIB
    assert message.dedupe_key == f"appointment:{answer['code']}:confirmation:email"
    assert "Cabang JKT09" in message.subject and answer["code"] in message.body

    # a booking refused (slot full after two more) writes no message
    book(client, customer={"name": "A", "email": "a@example.co.id"})
    book(client, customer={"name": "B", "email": "b@example.co.id"}, status=409)
    assert count_outbox() == 2

    # a booking whose unit of work rolls back leaves no message behind
    service = next(s for s in branch.services if s.code == "teller")
    customer = identify_customer(email="c@example.co.id", name="C", region="ID")
    start = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    booking.book(branch, service, start, now=TUESDAY_10_WIB, customer=customer)
    assert count_outbox() == 3  # written in the transaction ...
    db.session.rollback()
    assert count_outbox() == 2  # ... and gone with it
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 2


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_the_same_dedupe_key_is_written_once(app_ctx):
    kwargs = {
        "channel": "email",
        "recipient": "x@example.co.id",
        "subject": "s",
        "body": "b",
        "locale": "id",
        "dedupe_key": "k1",
        "now": TUESDAY_10_WIB,
    }
    assert enqueue("test", **kwargs) is not None
    assert enqueue("test", **kwargs) is None
    db.session.commit()
    assert count_outbox() == 1


# --- delivery --------------------------------------------------------------------------------


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_the_confirmation_e_mail_arrives_with_its_calendar_file_and_qr_code(
    app, client, branch, smtp
):
    code = book(client)["code"]
    assert jobs.deliver_outbox(app, TUESDAY_10_WIB) == {
        "claimed": 1,
        "sent": 1,
        "retry": 0,
        "fallback": 0,
        "failed": 0,
    }
    [mail] = smtp.messages
    assert smtp.envelopes[0].rcpt_tos == ["budi@example.co.id"]
    assert mail["To"] == "budi@example.co.id"
    assert mail["From"] == app.config["MAIL_DEFAULT_SENDER"]
    assert mail["Content-Language"] == "id"
    assert mail["Subject"] == tr(
        "id",
        "Your appointment at %(branch)s: %(date)s, %(time)s",
        branch="Cabang JKT09",
        date="Rabu, 04 Maret 2026",
        time="09.00 WIB",
    )
    text, html, files = parts(mail)
    for body in (text, html):
        assert tr("id", "Hello %(name)s,", name="Budi Santoso") in body
        assert "Jl. Sudirman No. 1, Jakarta" in body
        assert "Rabu, 04 Maret 2026" in body and "09.00 WIB" in body
        assert code in body and "Teller" in body
    assert 'src="cid:booking-qr@queue-app"' in html

    # the calendar file: the visit in UTC, its booking code as UID, the branch as location
    kind, data, _cid = files[f"{code}.ics"]
    assert kind == "text/calendar"
    [event] = Calendar.from_ical(data).walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2026, 3, 4, 2, 10, tzinfo=UTC)
    assert event.to_ical().decode().count("DTSTART:20260304T020000Z") == 1
    assert str(event["uid"]).startswith(f"{code}@")
    assert str(event["location"]) == "Cabang JKT09, Jl. Sudirman No. 1, Jakarta"
    assert code in str(event["description"])

    # the QR code: a PNG whose dark squares are exactly the QR code of the booking code
    kind, data, cid = files[f"{code}.png"]
    assert kind == "image/png" and cid == "<booking-qr@queue-app>"
    width, height, rows, _info = png.Reader(bytes=data).asRGBA8()
    pixels = [list(row) for row in rows]
    expected = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    expected.add_data(code)
    expected.make(fit=True)
    matrix = expected.get_matrix()
    box = width // len(matrix)
    assert width == height == box * len(matrix)
    seen = [
        [pixels[y * box + box // 2][(x * box + box // 2) * 4] < 128 for x in range(len(matrix))]
        for y in range(len(matrix))
    ]
    assert seen == matrix

    [message] = outbox()
    assert message.status == OutboxStatus.SENT and message.sent_at == TUESDAY_10_WIB
    assert message.attempts == 1
    # sent once: the next run finds nothing to do
    assert deliver_due(now=TUESDAY_10_WIB + timedelta(hours=1))["claimed"] == 0
    assert len(smtp.messages) == 1


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_english_confirmation_and_a_zone_without_an_abbreviation(app, client, make, smtp):
    make.branch("MNL09", timezone="Asia/Manila", country="PH", locale="en", counters=TELLERS)
    db.session.commit()
    book(client, "2026-03-04T09:00:00+08:00", code="MNL09", locale="en")
    jobs.deliver_outbox(app, TUESDAY_10_WIB)
    [mail] = smtp.messages
    assert mail["Subject"] == (
        "Your appointment at Cabang MNL09: Wednesday, March 4, 2026, 9:00 AM "
        "Philippine Standard Time"
    )
    text, _html, files = parts(mail)
    assert "Hello Budi Santoso," in text and "Booking code" in text
    assert len(files) == 2


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_sms_goes_through_the_gateway(app, client, branch, smtp, gateway):
    code = book(client, customer=PHONE)["code"]
    appointment = db.session.scalar(select(Appointment).filter_by(code=code))
    [sms] = outbox()
    assert sms.channel == Channel.SMS and sms.recipient == "+6281234567890"
    assert sms.fallbacks == []  # nothing else to try
    assert jobs.deliver_outbox(app, TUESDAY_10_WIB)["sent"] == 1
    [request] = gateway.requests
    assert request["path"] == "/send"
    assert request["headers"]["Authorization"] == "Bearer rahasia-gateway"
    assert request["headers"]["Idempotency-Key"] == f"outbox-{sms.id}-sms"
    assert request["json"] == {
        "to": "+6281234567890",
        "channel": "sms",
        "text": tr(
            "id",
            "%(branch)s: your appointment for %(service)s is on %(short_date)s at %(time)s. "
            "Booking code: %(code)s.",
            branch="Cabang JKT09",
            service="Teller",
            short_date="4 Mar 2026",
            time="09.00 WIB",
            code=code,
        )
        + " "
        + tr("id", "Change or cancel: %(url)s", url=links.manage_url(appointment)),
    }
    assert smtp.messages == []
    assert outbox()[0].status == OutboxStatus.SENT


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_a_customer_with_phone_and_e_mail_gets_both(app, app_ctx, branch, smtp, gateway):
    book_directly(branch, datetime(2026, 3, 4, 2, 0, tzinfo=UTC), now=TUESDAY_10_WIB)
    email, sms = outbox()
    assert (email.channel, sms.channel) == (Channel.EMAIL, Channel.SMS)
    assert sms.recipient == "+6281234567890"
    assert sms.fallbacks == [{"channel": "email", "recipient": "siti@example.co.id"}]
    counts = jobs.deliver_outbox(app, TUESDAY_10_WIB)
    assert counts["sent"] == 2
    assert len(gateway.requests) == 1
    assert len(smtp.messages) == 1  # the e-mail confirmation, not a fallback
    assert {m.status for m in outbox()} == {OutboxStatus.SENT}


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_a_failing_gateway_is_retried_with_backoff_then_falls_back_to_e_mail(
    app, app_ctx, branch, smtp, gateway
):
    gateway.status = 503
    book_directly(branch, datetime(2026, 3, 4, 2, 0, tzinfo=UTC), now=TUESDAY_10_WIB)
    t = TUESDAY_10_WIB
    assert deliver_due(now=t) == {"claimed": 2, "sent": 1, "retry": 1, "fallback": 0, "failed": 0}
    [sms] = outbox(channel=Channel.SMS)
    assert sms.status == OutboxStatus.PENDING and sms.attempts == 1
    assert sms.next_attempt_at == t + timedelta(minutes=1)
    assert "503" in sms.last_error
    # not before its time
    assert deliver_due(now=t + timedelta(seconds=59))["claimed"] == 0
    t += timedelta(minutes=1)
    assert deliver_due(now=t)["retry"] == 1
    assert outbox(channel=Channel.SMS)[0].next_attempt_at == t + timedelta(minutes=5)
    t += timedelta(minutes=5)
    assert deliver_due(now=t)["retry"] == 1
    assert outbox(channel=Channel.SMS)[0].next_attempt_at == t + timedelta(minutes=25)
    t += timedelta(minutes=25)
    # the fourth attempt fails too: SMS is exhausted, e-mail takes over at once
    assert deliver_due(now=t)["fallback"] == 1
    assert len(gateway.requests) == 4
    assert outbox(channel=Channel.SMS) == []
    fallen = outbox(kind="appointment_confirmation")[1]
    assert (fallen.channel, fallen.recipient) == (Channel.EMAIL, "siti@example.co.id")
    assert fallen.fallbacks == [] and fallen.attempts == 0 and fallen.next_attempt_at == t
    assert len(smtp.messages) == 1
    assert deliver_due(now=t)["sent"] == 1
    assert len(smtp.messages) == 2
    assert smtp.messages[1]["Subject"] == smtp.messages[0]["Subject"]
    assert "4 Mar 2026" in smtp.messages[1].get_content()
    assert "09.00 WIB" in smtp.messages[1].get_content()
    assert outbox(id=fallen.id)[0].status == OutboxStatus.SENT
    assert len(gateway.requests) == 4


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_an_unreachable_smtp_server_leaves_the_message_pending(app, app_ctx, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_PORT", free_port())  # nothing listens there
    enqueue(
        "test",
        channel="email",
        recipient="x@example.co.id",
        subject="s",
        body="b",
        locale="id",
        now=TUESDAY_10_WIB,
    )
    db.session.commit()
    assert deliver_due(now=TUESDAY_10_WIB)["retry"] == 1
    [message] = outbox()
    assert message.status == OutboxStatus.PENDING and message.attempts == 1
    assert message.next_attempt_at == TUESDAY_10_WIB + timedelta(minutes=1)
    assert "smtp" in message.last_error and message.sent_at is None


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_a_channel_without_configuration_fails_at_once_without_fallback(app, client, branch):
    book(client, customer={"name": "Siti", "phone": "0812-3456-7890"})
    [sms] = outbox()
    assert sms.channel == Channel.SMS and sms.fallbacks == []
    assert deliver_due(now=TUESDAY_10_WIB)["failed"] == 1
    [sms] = outbox()
    assert sms.status == OutboxStatus.FAILED and "not configured" in sms.last_error


@time_machine.travel(TUESDAY_10_WIB, tick=False)
def test_a_claimed_message_is_not_sent_by_another_run_and_comes_back_after_its_lease(
    app, app_ctx, smtp
):
    enqueue(
        "test",
        channel="email",
        recipient="x@example.co.id",
        subject="s",
        body="b",
        locale="id",
        now=TUESDAY_10_WIB,
    )
    db.session.commit()
    from queue_app.notify.services import claim_due

    # a sender claims it and dies before sending: nobody else takes it during the lease ...
    [claimed] = claim_due(now=TUESDAY_10_WIB)
    assert claimed.attempts == 1
    assert deliver_due(now=TUESDAY_10_WIB + timedelta(minutes=4))["claimed"] == 0
    # ... and after it, the message is sent (never lost)
    assert deliver_due(now=TUESDAY_10_WIB + timedelta(minutes=5))["sent"] == 1
    assert len(smtp.messages) == 1
    assert outbox()[0].attempts == 2
    # the dead sender's late outcome does not overwrite what happened since
    from queue_app.notify.services import _record

    assert _record(claimed, {"status": OutboxStatus.FAILED}) is False
    assert outbox()[0].status == OutboxStatus.SENT


# --- reminders -------------------------------------------------------------------------------


def test_reminder_offsets_are_read_from_the_configuration():
    assert parse_offsets("24h,2h") == [("24h", timedelta(hours=24)), ("2h", timedelta(hours=2))]
    assert parse_offsets(" 30m, 1d ") == [("1d", timedelta(days=1)), ("30m", timedelta(minutes=30))]
    assert parse_offsets("") == []
    with pytest.raises(ValueError):
        parse_offsets("2 hours")


def test_reminders_come_at_the_right_moment_in_each_branchs_zone(app, client, make, smtp):
    make.branch("JKT09", counters=TELLERS)  # Asia/Jakarta, +07
    make.branch("JAY09", timezone="Asia/Jayapura", counters=TELLERS)  # +09
    db.session.commit()
    monday = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    with time_machine.travel(monday, tick=False):
        jkt = book(client, "2026-03-04T09:00:00+07:00", code="JKT09")["code"]  # 02:00 UTC
        jay = book(client, "2026-03-04T09:00:00+09:00", code="JAY09")["code"]  # 00:00 UTC
    jobs.deliver_outbox(app, monday)  # the two confirmations
    assert len(smtp.messages) == 2

    def run(moment):
        return jobs.send_reminders(app, moment)

    def reminders():
        return [m.dedupe_key for m in outbox(kind="appointment_reminder")]

    assert run(datetime(2026, 3, 2, 23, 59, tzinfo=UTC)) == 0
    # 24 hours before 09:00 WIT (Jayapura) is 00:00 UTC on Tuesday
    assert run(datetime(2026, 3, 3, 0, 0, tzinfo=UTC)) == 1
    assert reminders() == [f"appointment:{jay}:reminder:24h:email"]
    assert run(datetime(2026, 3, 3, 0, 0, tzinfo=UTC)) == 0  # not twice
    assert run(datetime(2026, 3, 3, 1, 59, tzinfo=UTC)) == 0
    # 24 hours before 09:00 WIB (Jakarta) is 02:00 UTC
    assert run(datetime(2026, 3, 3, 2, 0, tzinfo=UTC)) == 1
    assert run(datetime(2026, 3, 3, 21, 59, tzinfo=UTC)) == 0
    assert run(datetime(2026, 3, 3, 22, 0, tzinfo=UTC)) == 1  # Jayapura, 2 hours before
    assert run(datetime(2026, 3, 4, 0, 0, tzinfo=UTC)) == 1  # Jakarta, 2 hours before
    assert run(datetime(2026, 3, 4, 1, 0, tzinfo=UTC)) == 0
    assert reminders() == [
        f"appointment:{jay}:reminder:24h:email",
        f"appointment:{jkt}:reminder:24h:email",
        f"appointment:{jay}:reminder:2h:email",
        f"appointment:{jkt}:reminder:2h:email",
    ]
    for code in (jkt, jay):
        assert appointment(code).reminders_sent == ["24h", "2h"]

    jobs.deliver_outbox(app, datetime(2026, 3, 4, 0, 0, tzinfo=UTC))
    # Python's parser keeps the space of a header folded before its first word
    subjects = [m["Subject"].strip() for m in smtp.messages[2:]]
    reminder = "Reminder: your appointment at %(branch)s, %(date)s, %(time)s"
    date = "Rabu, 04 Maret 2026"
    assert (
        subjects
        == [
            tr("id", reminder, branch="Cabang JAY09", date=date, time="09.00 WIT"),
            tr("id", reminder, branch="Cabang JKT09", date=date, time="09.00 WIB"),
        ]
        * 2
    )
    assert "09.00 WIT" in smtp.messages[2].get_body(preferencelist=("plain",)).get_content()


def test_a_late_booking_and_a_missed_run_send_only_the_reminder_that_still_matters(
    app, client, branch
):
    # booked 3 hours ahead: inside the 24h window, so no 24h reminder
    with time_machine.travel(datetime(2026, 3, 3, 23, 0, tzinfo=UTC), tick=False):
        late = book(client, "2026-03-04T09:00:00+07:00", customer=PHONE)["code"]
    assert jobs.send_reminders(app, datetime(2026, 3, 3, 23, 30, tzinfo=UTC)) == 0
    # booked long before, but the job did not run until 90 minutes before: one reminder
    with time_machine.travel(datetime(2026, 3, 2, 3, 0, tzinfo=UTC), tick=False):
        early = book(client, "2026-03-04T09:00:00+07:00")["code"]
    assert jobs.send_reminders(app, datetime(2026, 3, 4, 0, 30, tzinfo=UTC)) == 2
    keys = [m.dedupe_key for m in outbox(kind="appointment_reminder")]
    assert sorted(keys) == sorted(
        [f"appointment:{late}:reminder:2h:sms", f"appointment:{early}:reminder:2h:email"]
    )
    for code in (late, early):
        assert appointment(code).reminders_sent == ["24h", "2h"]
    assert jobs.send_reminders(app, datetime(2026, 3, 4, 1, 0, tzinfo=UTC)) == 0


def test_locale_falls_back_to_the_branch(app_ctx, make):
    b = make.branch("MNL10", timezone="Asia/Manila", country="PH", locale="en")
    db.session.flush()
    appointment = Appointment(code="ABC234", branch=b, locale=None)
    assert content.locale_for(appointment) == "en"
    appointment.locale = "id"
    assert content.locale_for(appointment) == "id"
    db.session.rollback()


def test_senders_running_at_once_send_every_message_exactly_once(app, app_ctx, smtp):
    now = TUESDAY_10_WIB
    for n in range(30):
        enqueue(
            "test",
            channel="email",
            recipient=f"c{n}@example.co.id",
            subject=f"s{n}",
            body="b",
            locale="id",
            now=now,
        )
    db.session.commit()
    errors = []

    def sender():
        try:
            with app.app_context():
                while deliver_due(now=now, limit=3)["claimed"]:
                    pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(m["Subject"] for m in smtp.messages) == sorted(f"s{n}" for n in range(30))
    assert len({m["Message-ID"] for m in smtp.messages}) == 30
    assert {(m.status, m.attempts) for m in outbox()} == {(OutboxStatus.SENT, 1)}
