"""The queue's notifications, for real: "you are next in N" written once in the transaction
that moves the queue, "it is your turn" delivered right after the commit to a real local SMS
gateway (falling back to a real SMTP server), and the urgent sender racing the outbox job.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import event, select

from queue_app.core.events import in_transaction_signal
from queue_app.core.types import utcnow
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.kiosk.links import ticket_tracking_url
from queue_app.notify import queue_alerts
from queue_app.notify.models import Channel, OutboxMessage, OutboxStatus
from queue_app.notify.services import channel_chain, enqueue, urgent_sender
from queue_app.tickets import queries
from queue_app.tickets import services as engine
from queue_app.tickets.models import Source, Ticket

from .outboxes import deliver_outbox

TELLERS = [("Loket 1", ["teller"]), ("Loket 2", ["teller"]), ("Loket 3", ["cs"])]


@pytest.fixture
def floor(make, now):
    b = make.branch("QAL01", counters=TELLERS)
    budi = make.user("budi_qa", branches=[b])
    sari = make.user("sari_qa", branches=[b])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    make.open_counter(c1, budi, now=now)
    make.open_counter(c2, sari, now=now)
    db.session.commit()
    return {"branch": b, "budi": budi, "sari": sari, "c1": c1, "c2": c2}


_phones = iter(range(10_000))


def customer(*, phone=True, email=False, consent=True, locale=None) -> Customer:
    n = next(_phones)
    person = Customer(
        phone=f"+62812000{n:05d}" if phone else None,
        email=f"nasabah{n}@example.co.id" if email else None,
        name=f"Nasabah {n}",
        locale=locale,
        consent_contact=consent,
    )
    db.session.add(person)
    db.session.flush()
    return person


def queue(make, floor, now, specs):
    """Tickets issued a minute apart, in order; each spec: None (a walk-in without contact)
    or the keyword arguments of `customer` (plus `source`)."""
    tickets = []
    for i, spec in enumerate(specs):
        spec = dict(spec) if spec is not None else None
        source = spec.pop("source", Source.KIOSK) if spec is not None else Source.KIOSK
        person = customer(**spec) if spec is not None else None
        tickets.append(
            make.ticket(
                floor["branch"],
                now=now + timedelta(minutes=i),
                customer=person,
                source=source,
            )
        )
    db.session.commit()
    return tickets


def serve_next(floor, now, counter="c1"):
    """The counter finishes what it has and calls the next ticket; committed."""
    c = floor[counter]
    staff = floor["budi"] if counter == "c1" else floor["sari"]
    active = engine.active_ticket(c)
    if active is not None:
        engine.start(active, staff, now=now)
        engine.finish(active, staff, now=now)
    called = engine.call_next(c, staff, now=now)
    db.session.commit()
    return called


def outbox(kind=None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    rows = db.session.scalars(query).all()
    for row in rows:
        db.session.expunge(row)
    db.session.rollback()  # SQLite: no lock held while another session sends
    return rows


def tr(locale, msgid, **values):
    with force_locale(locale):
        return gettext(msgid, **values)


def later(now, minutes):
    return now + timedelta(minutes=10 + minutes)


# --- you are next in N -----------------------------------------------------------------------


def test_next_in_n_is_written_once_when_others_being_called_bring_a_ticket_to_place_n(
    app, make, now, floor, gateway
):
    # four walk-ins without a contact, then Siti (phone, consent) at place 5
    *_walk_ins, siti = queue(make, floor, now, [None, None, None, None, {"locale": "en"}])
    assert outbox() == []

    serve_next(floor, later(now, 1))  # Siti at place 4: nothing yet
    assert outbox() == []
    serve_next(floor, later(now, 2), "c2")  # place 3 = QUEUE_NEXT_IN_N
    [message] = outbox(queue_alerts.NEXT_IN_LINE)
    assert message.dedupe_key == f"queue:next:{siti.id}"
    assert (message.channel, message.recipient) == (Channel.SMS, siti.visit.customer.phone)
    assert queries.standing(db.session.get(Ticket, siti.id))[0] == 3
    assert message.locale == "en"
    url = ticket_tracking_url(siti.visit.token)
    assert message.body.startswith(
        tr(
            "en",
            "Ticket %(number)s is number %(place)s in line for %(service)s at %(branch)s.",
            number=siti.number,
            place=3,
            service="Teller",
            branch="Cabang QAL01",
        )
    )
    assert url in message.body

    serve_next(floor, later(now, 3))  # place 2, then 1: still the one message
    serve_next(floor, later(now, 4), "c2")
    assert len(outbox(queue_alerts.NEXT_IN_LINE)) == 1
    assert queries.standing(db.session.get(Ticket, siti.id))[0] == 1
    db.session.rollback()

    # the outbox job delivers it to the gateway (not urgent: it waits for the job)
    assert gateway.messages == []
    assert deliver_outbox(app, later(now, 5))["sent"] == 1
    [sms] = gateway.messages
    assert sms["to"] == siti.visit.customer.phone and url in sms["text"]


def test_a_cancelled_ticket_moves_the_queue_forward_too(make, now, floor):
    first, *_others, fourth = queue(make, floor, now, [None, None, None, {}])
    engine.cancel(first, floor["budi"], now=later(now, 1))
    db.session.commit()
    # the fourth was at place 4, is now at place 3
    [message] = outbox(queue_alerts.NEXT_IN_LINE)
    assert message.dedupe_key == f"queue:next:{fourth.id}"


def test_nobody_is_told_without_a_contact_or_consent_but_a_remote_ticket_is(make, now, floor):
    tickets = queue(
        make,
        floor,
        now,
        [
            None,  # walk-in: no customer
            {"consent": False},  # known by phone, did not agree to be contacted
            {"phone": False, "email": False},  # known, no way to reach
            {"consent": False, "source": Source.MOBILE},  # joined remotely: verified contact
        ],
    )
    serve_next(floor, later(now, 1))
    written = outbox()
    assert [m.dedupe_key for m in written] == [f"queue:next:{tickets[3].id}"]


def test_a_remote_customer_not_yet_here_is_asked_to_come_and_confirm(make, now, floor):
    walk_ins = queue(make, floor, now, [None, None, None])
    person = customer(phone=False, email=True, consent=False, locale="en")
    remote = make.ticket(
        floor["branch"],
        now=now + timedelta(minutes=5),
        customer=person,
        source=Source.MOBILE,
        awaiting_arrival=True,
    )
    db.session.commit()
    serve_next(floor, later(now, 1))
    [message] = outbox(queue_alerts.NEXT_IN_LINE)
    assert (message.channel, message.recipient) == (Channel.EMAIL, person.email)
    assert message.dedupe_key == f"queue:next:{remote.id}"
    assert tr("en", "Please stay close: your number will be called soon.") not in message.body
    assert "I'm here" in message.body
    assert len(walk_ins) == 3


def test_places_are_those_of_the_tracking_page_for_every_affected_queue(make, now, floor):
    # two in the cs queue, five in teller's; a call at Loket 1 moves teller's only
    cs = [make.ticket(floor["branch"], "cs", now=now, customer=customer()) for _ in range(2)]
    tellers = queue(make, floor, now, [{}, {}, {}, {}, {}])
    serve_next(floor, later(now, 1))
    keys = {m.dedupe_key for m in outbox(queue_alerts.NEXT_IN_LINE)}
    assert keys == {f"queue:next:{t.id}" for t in tellers[1:4]}
    for t in tellers[1:4]:
        assert queries.standing(db.session.get(Ticket, t.id))[0] <= 3
    assert queries.standing(db.session.get(Ticket, tellers[4].id))[0] == 4
    assert not keys & {f"queue:next:{t.id}" for t in cs}
    db.session.rollback()


# --- it is your turn -------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["id", "en"])
def test_your_turn_arrives_at_the_gateway_with_the_counter_in_the_customers_language(
    make, now, floor, gateway, smtp, locale
):
    [ticket] = queue(make, floor, now, [{"locale": locale, "email": True}])
    phone = ticket.visit.customer.phone
    serve_next(floor, later(now, 1))
    # urgent: sent after the commit, without any run of the outbox job (testing: NOTIFY_URGENT
    # "sync", the sender runs in the committing thread right after the commit)
    [sms] = gateway.messages
    expected = tr(
        locale,
        "It is your turn: ticket %(number)s, please go to %(counter)s now.",
        number=ticket.number,
        counter="Loket 1",
    )
    assert sms == {
        "to": phone,
        "text": f"{expected} {ticket_tracking_url(ticket.visit.token)}",
        "channel": "sms",
    }
    assert smtp.messages == []  # e-mail is the fallback, not a second copy
    [message] = outbox(queue_alerts.YOUR_TURN)
    assert (message.status, message.locale) == (OutboxStatus.SENT, locale)
    assert message.fallbacks == [{"channel": "email", "recipient": ticket.visit.customer.email}]


def test_a_failing_gateway_falls_back_to_e_mail_at_once(make, now, floor, gateway, smtp):
    [ticket] = queue(make, floor, now, [{"email": True, "locale": "id"}])
    gateway.status = 503
    serve_next(floor, later(now, 1))
    assert len(gateway.requests) == 1 and gateway.messages == []
    [mail] = smtp.messages
    assert mail["To"] == ticket.visit.customer.email
    assert mail["Subject"] == tr(
        "id",
        "Ticket %(number)s: it is your turn, go to %(counter)s",
        number=ticket.number,
        counter="Loket 1",
    )
    [message] = outbox(queue_alerts.YOUR_TURN)
    assert (message.status, message.channel) == (OutboxStatus.SENT, Channel.EMAIL)


def test_a_recall_tells_again_once_per_call(make, now, floor, gateway):
    [ticket] = queue(make, floor, now, [{}])
    serve_next(floor, later(now, 1))
    engine.recall(db.session.get(Ticket, ticket.id), floor["budi"], now=later(now, 2))
    db.session.commit()
    keys = [m.dedupe_key for m in outbox(queue_alerts.YOUR_TURN)]
    assert keys == [f"queue:turn:{ticket.id}:0", f"queue:turn:{ticket.id}:1"]
    assert len(gateway.messages) == 2


def test_whatsapp_first_when_configured_then_sms_then_e_mail(app, app_ctx, monkeypatch, gateway):
    assert channel_chain(phone="+628", email="a@b.id") == [
        (Channel.SMS, "+628"),
        (Channel.EMAIL, "a@b.id"),
    ]
    monkeypatch.setitem(app.config, "WHATSAPP_GATEWAY_URL", gateway.whatsapp_url)
    assert channel_chain(phone="+628", email="a@b.id") == [
        (Channel.WHATSAPP, "+628"),
        (Channel.SMS, "+628"),
        (Channel.EMAIL, "a@b.id"),
    ]
    assert channel_chain(phone=None, email="a@b.id") == [(Channel.EMAIL, "a@b.id")]
    monkeypatch.setitem(app.config, "WHATSAPP_GATEWAY_URL", None)
    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", None)
    # nothing configured for a phone: the SMS is written and fails as "not configured"
    assert channel_chain(phone="+628", email=None) == [(Channel.SMS, "+628")]


# --- urgent delivery -------------------------------------------------------------------------


def _urgent(n: int, now) -> OutboxMessage:
    return enqueue(
        "test_urgent",
        channel=Channel.SMS,
        recipient=f"+6281300000{n:03d}",
        subject=None,
        body=f"kode {n}",
        locale="id",
        dedupe_key=f"test:urgent:{n}",
        now=now,
        urgent=True,
    )


@pytest.fixture
def threaded(app, monkeypatch):
    """The production way: a background sender thread per process."""
    monkeypatch.setitem(app.config, "NOTIFY_URGENT", "thread")
    sender = urgent_sender(app)
    submitted = []
    original = sender.submit

    def spy(ids, now):
        submitted.append(list(ids))
        original(ids, now)

    monkeypatch.setattr(sender, "submit", spy)
    yield sender, submitted
    assert sender.wait_idle(10)


def test_urgent_delivery_happens_after_the_commit_and_never_for_a_rollback(
    app_ctx, gateway, threaded
):
    sender, submitted = threaded
    now = utcnow()
    _urgent(1, now)
    db.session.flush()
    assert submitted == []  # inside the unit of work: nothing handed over yet
    db.session.rollback()
    assert submitted == []  # rolled back: never

    kept = _urgent(2, now).id
    assert submitted == []
    db.session.commit()
    assert submitted == [[kept]]
    assert sender.wait_idle(10)
    assert [m["text"] for m in gateway.messages] == ["kode 2"]
    assert [(m.dedupe_key, m.status) for m in outbox()] == [("test:urgent:2", OutboxStatus.SENT)]


def test_the_urgent_sender_and_a_job_run_at_once_send_each_message_exactly_once(
    app, app_ctx, gateway, threaded
):
    sender, submitted = threaded
    now = utcnow()
    for n in range(30):
        _urgent(n, now)
    errors = []
    start = threading.Barrier(3)

    def job():
        try:
            start.wait(10)
            deliver_outbox(app, now + timedelta(seconds=1))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    jobs = [threading.Thread(target=job) for _ in range(2)]
    for thread in jobs:
        thread.start()
    start.wait(10)
    db.session.commit()  # hands the 30 ids to the sender thread while both jobs run
    for thread in jobs:
        thread.join(60)
    assert sender.wait_idle(30)
    assert errors == []
    assert len(submitted) == 30
    keys = [r["headers"]["Idempotency-Key"] for r in gateway.requests]
    assert len(keys) == 30 and len(set(keys)) == 30
    assert sorted(m["text"] for m in gateway.messages) == sorted(f"kode {n}" for n in range(30))
    assert {(m.status, m.attempts) for m in outbox()} == {(OutboxStatus.SENT, 1)}


# --- the cost on every call ------------------------------------------------------------------


def statements_of(fn):
    """The statements `fn` sends on this thread (BEGIN/COMMIT/SAVEPOINT not counted)."""
    sent = []
    me = threading.get_ident()

    def before(conn, cursor, statement, *args):
        if threading.get_ident() == me and not statement.lstrip().upper().startswith(
            ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
        ):
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    return sent


def commit():
    db.session.commit()


def _call_cost(floor, now, *, alerts: bool) -> list[str]:
    staff, counter = floor["budi"], floor["c1"]

    def call():
        active = engine.active_ticket(counter)
        if active is not None:
            engine.cancel(active, staff, now=now)
            db.session.commit()
        db.session.expire_all()
        return statements_of(
            lambda: (engine.call_next(counter, staff, now=now), db.session.commit())
        )

    if alerts:
        # the webhooks hear the same entries (their own cost: tests/test_webhooks.py); this
        # counts the queue alerts' alone
        from queue_app.webhooks.receivers import on_journal_recorded as webhooks_hear

        journal = in_transaction_signal("journal.recorded")
        journal.disconnect(webhooks_hear)
        try:
            return call()
        finally:
            journal.connect(webhooks_hear)
    with in_transaction_signal("journal.recorded").muted():
        return call()


def test_a_call_costs_one_statement_more_when_nobody_can_be_told(make, now, floor):
    queue(make, floor, now, [None] * 12)
    without = _call_cost(floor, later(now, 1), alerts=False)
    with_alerts = _call_cost(floor, later(now, 2), alerts=True)
    assert len(with_alerts) == len(without) + 1, with_alerts[len(without) :]


def test_the_cost_does_not_grow_with_the_waiting_list(app, make, now, floor, monkeypatch):
    """With contacts: the gate, the places (one query for every affected queue), what the
    called customer is told, and one insert per new message: the same for 8 or 40 waiting.
    (Urgent delivery is off here: in tests it runs on this thread after the commit.)"""
    monkeypatch.setitem(app.config, "NOTIFY_URGENT", "off")
    queue(make, floor, now, [{} for _ in range(8)])
    _call_cost(floor, later(now, 1), alerts=True)  # the first places 1..3 are told
    small = _call_cost(floor, later(now, 2), alerts=True)  # one new "next in 3", one turn
    queue(make, floor, later(now, 3), [{} for _ in range(32)])
    large = _call_cost(floor, later(now, 4), alerts=True)
    assert len(small) == len(large), (small, large)
    baseline = _call_cost(floor, later(now, 5), alerts=False)
    # gate + places + the called customer's contact + 2 inserts (one "next", one "turn")
    assert len(small) - len(baseline) == 5, small[len(baseline) :]
