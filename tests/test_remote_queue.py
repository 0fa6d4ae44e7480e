"""The virtual mobile queue (tickets/remote.py): one-time codes, per-contact limits, remote
intake, joining (and the race of two phones joining with one contact), arrival on the poster's
key, the move-back of a remote ticket whose customer is not here, leaving, and the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from queue_app.booking.models import BranchClosure
from queue_app.branches.models import Branch, Service
from queue_app.core.errors import Conflict, DomainError, IllegalTransition, NotAllowed
from queue_app.customers import verification
from queue_app.customers.models import ContactVerification
from queue_app.customers.verification import CodeRejected, TooManyRequests
from queue_app.extensions import db, limiter
from queue_app.notify.models import OutboxMessage
from queue_app.tickets import queries, remote
from queue_app.tickets import services as engine
from queue_app.tickets.models import JourneyEvent, Source, Ticket, TicketStatus

from .apihelp import assert_error
from .test_races import run_threads

API = "/api/v1"
NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta, branch open
PHONE = "0812-3456-7890"
E164 = "+6281234567890"


@pytest.fixture
def branch(make):
    b = make.branch("JKT21", counters=[("Loket 1", ["teller"]), ("Loket 2", ["cs"])])
    db.session.commit()
    return b


@pytest.fixture
def teller(branch, make):
    return make.service(branch, "teller")


@pytest.fixture
def staff(branch, make, monkeypatch):
    from .apihelp import fast_passwords

    fast_passwords(monkeypatch)
    return make.user(branches=[branch])


def sent_code(recipient: str) -> str:
    """The code in the latest message to `recipient` in the outbox."""
    message = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.recipient == recipient)
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None, f"no message to {recipient}"
    return re.search(r"\b(\d{6})\b", message.body).group(1)


def ask(branch, service, contact=PHONE, *, now=NOW, locale="en"):
    """Ask for a code and commit, as the request does (the code message goes out after the
    commit: the testing profile sends urgent messages synchronously)."""
    sent = remote.request_code(branch, service, contact=contact, locale=locale, ip=None, now=now)
    db.session.commit()
    return sent


def join(branch, service, code, contact=PHONE, *, now=NOW):
    return remote.join(branch, service, contact=contact, code=code, locale="en", ip=None, now=now)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- codes -----------------------------------------------------------------------------------


def test_a_code_is_sent_stored_hashed_and_joins_once(branch, teller, session):
    sent = remote.request_code(branch, teller, contact=PHONE, locale="en", ip=None, now=NOW)
    assert (sent.contact, sent.channel) == (E164, "sms")
    assert sent.masked.endswith("7890") and "3456" not in sent.masked
    assert sent.expires_at == NOW + timedelta(minutes=10)
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.recipient == E164))
    assert message.kind == remote.CODE_MESSAGE_KIND and message.locale == "en"
    assert message.channel == "sms"
    code = sent_code(E164)
    assert "10 minutes" in message.body and branch.name in message.body
    row = session.scalar(select(ContactVerification).where(ContactVerification.contact == E164))
    assert row.code_hash and code not in row.code_hash and len(row.code_hash) == 64
    session.commit()

    ticket = join(branch, teller, code, now=NOW + timedelta(minutes=2))
    session.commit()
    assert ticket.source == Source.MOBILE and ticket.status == TicketStatus.WAITING
    assert ticket.arrival_confirmed is False
    assert ticket.visit.customer.phone == E164
    # the code is used up
    with pytest.raises(DomainError) as used:
        join(branch, teller, code, now=NOW + timedelta(minutes=3))
    assert used.value.code == "no_code"


def test_an_email_contact_gets_the_code_by_email(branch, teller, session):
    sent = remote.request_code(
        branch, teller, contact=" Budi@Example.COM ", locale="id", ip=None, now=NOW
    )
    assert (sent.contact, sent.channel) == ("budi@example.com", "email")
    message = session.scalar(select(OutboxMessage))
    assert (message.channel, message.recipient, message.locale) == ("email", sent.contact, "id")
    assert message.subject
    session.commit()
    ticket = join(branch, teller, sent_code(sent.contact), "budi@example.com")
    assert ticket.visit.customer.email == "budi@example.com"


@pytest.mark.parametrize("contact", ["", "12", "not a phone", "a@b", "budi@", "0812"])
def test_a_contact_that_is_neither_phone_nor_email_is_refused(branch, teller, session, contact):
    with pytest.raises(DomainError) as refused:
        ask(branch, teller, contact)
    assert refused.value.status == 422
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_code_expires(branch, teller):
    ask(branch, teller)
    code = sent_code(E164)
    with pytest.raises(DomainError) as late:
        join(branch, teller, code, now=NOW + timedelta(minutes=10))
    assert late.value.code == "code_expired"


def test_five_wrong_tries_kill_the_code(branch, teller, session):
    ask(branch, teller)
    code = sent_code(E164)
    for _ in range(5):
        with pytest.raises(CodeRejected):
            join(branch, teller, wrong(code))
        session.commit()  # what the view does: the try counts
    with pytest.raises(DomainError) as dead:
        join(branch, teller, code)
    assert dead.value.code == "too_many_tries"
    # a new code works again
    ask(branch, teller, now=NOW + timedelta(minutes=1))
    assert join(branch, teller, sent_code(E164), now=NOW + timedelta(minutes=1)).id


def test_a_code_is_for_the_queue_it_was_asked_for(branch, teller, make):
    ask(branch, teller)
    with pytest.raises(DomainError) as other:
        join(branch, make.service(branch, "cs"), sent_code(E164))
    assert other.value.code == "code_other_queue"


def test_codes_per_contact_are_limited_per_window(branch, teller, session):
    for minute in range(3):
        ask(branch, teller, now=NOW + timedelta(minutes=minute))
    with pytest.raises(TooManyRequests) as limited:
        ask(branch, teller, now=NOW + timedelta(minutes=5))
    assert limited.value.status == 429
    # the same number written differently is the same contact
    with pytest.raises(TooManyRequests):
        ask(branch, teller, "+62 812 3456 7890", now=NOW + timedelta(minutes=6))
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 3
    # another contact is not affected, and the window passes
    ask(branch, teller, "0813-1111-2222", now=NOW + timedelta(minutes=6))
    ask(branch, teller, now=NOW + timedelta(minutes=15))


def test_one_active_remote_ticket_per_contact_and_branch(branch, teller, make):
    ask(branch, teller)
    ticket = join(branch, teller, sent_code(E164))
    with pytest.raises(Conflict) as twice:
        ask(branch, teller, now=NOW + timedelta(minutes=1))
    assert twice.value.code == "already_in_queue"
    with pytest.raises(Conflict):
        ask(branch, make.service(branch, "cs"), now=NOW + timedelta(minutes=1))
    # once it has left, the contact may join again
    remote.leave(ticket, now=NOW + timedelta(minutes=2))
    ask(branch, teller, now=NOW + timedelta(minutes=3))


def test_two_phones_joining_with_one_contact_at_once_get_one_ticket(app, branch, teller):
    """Threads with their own sessions (PostgreSQL: real row locks) join with the same
    contact and code at the same instant: exactly one ticket."""
    ask(branch, teller)
    code = sent_code(E164)
    branch_id, service_id = branch.id, teller.id
    db.session.commit()

    def phone(_n):
        b = db.session.get(Branch, branch_id)
        s = db.session.get(Service, service_id)
        try:
            join(b, s, code, now=NOW + timedelta(seconds=30))
            db.session.commit()
            return "ticket"
        except DomainError as exc:
            db.session.rollback()
            return exc.code
        finally:
            db.session.remove()

    outcomes = run_threads(app, phone, [(n,) for n in range(8)])
    assert outcomes.count("ticket") == 1, outcomes
    assert set(outcomes) <= {"ticket", "no_code", "already_in_queue"}, outcomes
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


# --- intake ----------------------------------------------------------------------------------


def test_intake_closes_when_the_capacity_before_closing_is_used(branch, teller, staff, make):
    # 14:30 in Jakarta: 30 minutes left, one open teller counter, 4 minutes a customer
    late = datetime(2026, 3, 3, 7, 30, tzinfo=UTC)
    make.open_counter(make.counter(branch, "Loket 1"), staff, now=late)
    # the estimate is what a ticket issued now is quoted (waits.live, 240 s per ticket without
    # history): nobody waits and the counter is idle, so it is called at once
    state = remote.intake(branch, teller, now=late)
    assert state.open and state.capacity_left == 7 and state.estimated_wait_s == 0
    for i in range(6):
        make.ticket(branch, "teller", now=late + timedelta(seconds=i))
    db.session.commit()  # estimates are made from committed changes (per event sequence)
    # estimated at the 6th ticket: the six are called at 0, 240, ... 1200 s, a new one at 1440
    state = remote.intake(branch, teller, now=late + timedelta(seconds=10))
    assert state.open and state.capacity_left == 1 and state.estimated_wait_s == 6 * 240
    make.ticket(branch, "teller", now=late + timedelta(seconds=11))
    state = remote.intake(branch, teller, now=late + timedelta(seconds=12))
    assert (state.open, state.reason) == (False, remote.CAPACITY_USED)
    with pytest.raises(Conflict) as closed:
        ask(branch, teller, now=late + timedelta(seconds=13))
    assert closed.value.code == "intake_capacity_used"
    # the cs queue of the same branch is still open
    assert remote.intake(branch, make.service(branch, "cs"), now=late).open


def test_intake_is_closed_for_a_service_no_counter_serves(branch, make):
    # JKT21's counters serve teller and cs; loans is offered but nobody serves it
    loans = make.service(branch, "loans")
    state = remote.intake(branch, loans, now=NOW)
    assert (state.open, state.reason, state.estimated_wait_s) == (False, remote.NO_COUNTER, None)
    with pytest.raises(Conflict) as closed:
        ask(branch, loans)
    assert closed.value.code == "intake_no_counter"


def test_intake_is_closed_outside_hours_on_closures_and_when_turned_off(branch, teller, session):
    saturday = datetime(2026, 3, 7, 3, 0, tzinfo=UTC)
    evening = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 16:00 in Jakarta
    assert remote.intake(branch, teller, now=saturday).reason == remote.CLOSED_HOURS
    assert remote.intake(branch, teller, now=evening).reason == remote.CLOSED_HOURS
    session.add(BranchClosure(branch_id=branch.id, day=NOW.date(), reason="renovation"))
    session.flush()
    assert remote.intake(branch, teller, now=NOW).reason == remote.CLOSED_DAY
    branch.remote_intake = False
    assert remote.intake(branch, teller, now=NOW).reason == remote.REMOTE_OFF
    with pytest.raises(Conflict) as off:
        ask(branch, teller)
    assert off.value.code == "intake_remote_off"


def test_joining_checks_the_intake_again(branch, teller, session):
    ask(branch, teller)
    branch.remote_intake = False
    with pytest.raises(Conflict) as off:
        join(branch, teller, sent_code(E164))
    assert off.value.code == "intake_remote_off"


# --- arrival, moving back, leaving -----------------------------------------------------------


def remote_ticket(branch, service, contact=PHONE, *, now=NOW) -> Ticket:
    ask(branch, service, contact, now=now)
    return join(
        branch, service, sent_code(verification.parse_contact(contact).value), contact, now=now
    )


def serve_next(counter, staff, now):
    ticket = engine.call_next(counter, staff, now=now)
    if ticket is not None:
        engine.start(ticket, staff, now=now)
        engine.finish(ticket, staff, now=now)
    return ticket


def test_an_unconfirmed_ticket_goes_back_then_expires(branch, teller, staff, make, session):
    counter = make.counter(branch, "Loket 1")
    make.open_counter(counter, staff, now=NOW)
    mine = remote_ticket(branch, teller)
    walk_ins = [make.ticket(branch, "teller", now=NOW + timedelta(seconds=i + 1)) for i in range(5)]
    k1, k2, k3, k4, k5 = walk_ins

    assert serve_next(counter, staff, NOW + timedelta(minutes=1)) == k1
    assert mine.status == TicketStatus.WAITING and mine.moved_back_count == 1
    # three places back: behind k3
    order = [t.number for t in queries.waiting_tickets(branch.id)]
    assert order == [k2.number, k3.number, mine.number, k4.number, k5.number]
    assert queries.standing(mine)[0] == 3

    assert serve_next(counter, staff, NOW + timedelta(minutes=2)) == k2
    assert serve_next(counter, staff, NOW + timedelta(minutes=3)) == k3
    # its turn again: back behind k5, the last of the two left behind it
    assert serve_next(counter, staff, NOW + timedelta(minutes=4)) == k4
    assert mine.moved_back_count == 2 and mine.status == TicketStatus.WAITING
    assert [t.number for t in queries.waiting_tickets(branch.id)] == [k5.number, mine.number]
    assert serve_next(counter, staff, NOW + timedelta(minutes=5)) == k5
    # nobody left to go first: it keeps its place, not counted, nothing is called
    assert engine.call_next(counter, staff, now=NOW + timedelta(minutes=6)) is None
    assert mine.moved_back_count == 2
    # a newcomer: the third turn of the remote ticket expires it, the newcomer is called
    k6 = make.ticket(branch, "teller", now=NOW + timedelta(minutes=7))
    assert engine.call_next(counter, staff, now=NOW + timedelta(minutes=8)) == k6
    assert mine.status == TicketStatus.CANCELLED
    session.commit()
    journal = session.scalars(
        select(JourneyEvent).where(JourneyEvent.ticket_id == mine.id).order_by(JourneyEvent.seq)
    ).all()
    assert [e.kind for e in journal] == ["issued", "moved_back", "moved_back", "cancel"]
    assert journal[1].data["places"] == 3 and journal[2].data["places"] == 2
    assert journal[-1].data == {"reason": "not_arrived"}


def test_the_move_back_follows_the_branch_settings(branch, teller, staff, make):
    branch.remote_move_back_places = 1
    branch.remote_move_back_limit = 0
    counter = make.counter(branch, "Loket 1")
    make.open_counter(counter, staff, now=NOW)
    mine = remote_ticket(branch, teller)
    k1 = make.ticket(branch, "teller", now=NOW + timedelta(seconds=1))
    assert engine.call_next(counter, staff, now=NOW + timedelta(minutes=1)) == k1
    assert mine.status == TicketStatus.CANCELLED


def test_a_confirmed_remote_ticket_is_called_in_its_turn(branch, teller, staff, make, session):
    counter = make.counter(branch, "Loket 1")
    make.open_counter(counter, staff, now=NOW)
    mine = remote_ticket(branch, teller)
    make.ticket(branch, "teller", now=NOW + timedelta(seconds=1))
    key = remote.arrival_key(branch)
    confirmed = remote.confirm_arrival(mine, key=key, now=NOW + timedelta(seconds=30))
    assert confirmed.arrival_confirmed and confirmed.arrival_confirmed_at == NOW + timedelta(
        seconds=30
    )
    # idempotent: a second scan changes nothing and writes nothing
    remote.confirm_arrival(mine, key=key, now=NOW + timedelta(seconds=40))
    assert mine.arrival_confirmed_at == NOW + timedelta(seconds=30)
    assert engine.call_next(counter, staff, now=NOW + timedelta(minutes=1)) == mine
    session.commit()
    kinds = session.scalars(
        select(JourneyEvent.kind)
        .where(JourneyEvent.ticket_id == mine.id)
        .order_by(JourneyEvent.seq)
    ).all()
    assert kinds == ["issued", "arrived", "called"]


def test_tickets_issued_any_other_way_are_confirmed(branch, make):
    assert make.ticket(branch, "teller", now=NOW).arrival_confirmed is True


def test_staff_may_call_an_unconfirmed_remote_ticket_by_choice(branch, teller, staff, make):
    counter = make.counter(branch, "Loket 1")
    make.open_counter(counter, staff, now=NOW)
    mine = remote_ticket(branch, teller)
    assert engine.call_ticket(mine, counter, staff, now=NOW).status == TicketStatus.CALLED


def test_a_wrong_arrival_key_is_refused(branch, teller, make, session):
    other = make.branch("JKT22")
    mine = remote_ticket(branch, teller)
    for key in (remote.arrival_key(other), "", "x" * 500, remote.arrival_key(branch) + "x"):
        with pytest.raises(NotAllowed) as refused:
            remote.confirm_arrival(mine, key=key, now=NOW)
        assert refused.value.code == "wrong_arrival_key"
    assert mine.arrival_confirmed is False
    assert remote.check_arrival_key(branch, remote.arrival_key(branch))


def test_leaving_the_queue(branch, teller, staff, make, session):
    mine = remote_ticket(branch, teller)
    left = remote.leave(mine, now=NOW + timedelta(minutes=1))
    assert left.status == TicketStatus.CANCELLED
    with pytest.raises(IllegalTransition) as again:
        remote.leave(mine, now=NOW + timedelta(minutes=2))
    assert again.value.code == "cannot_leave"
    with pytest.raises(IllegalTransition):
        remote.confirm_arrival(mine, key=remote.arrival_key(branch), now=NOW)
    session.commit()
    event = session.scalar(
        select(JourneyEvent).where(JourneyEvent.ticket_id == mine.id, JourneyEvent.kind == "cancel")
    )
    assert event.data == {"reason": "left_by_customer"}
    # a called ticket cannot leave from the phone
    counter = make.counter(branch, "Loket 1")
    make.open_counter(counter, staff, now=NOW)
    walk_in = make.ticket(branch, "teller", now=NOW)
    engine.call_next(counter, staff, now=NOW)
    with pytest.raises(IllegalTransition):
        remote.leave(walk_in, now=NOW)


# --- API -------------------------------------------------------------------------------------


def api_code(client, contact=PHONE, service="teller", code="JKT21"):
    return client.post(
        f"{API}/branches/{code}/remote/codes",
        json={"service": service, "contact": contact, "locale": "en"},
    )


def api_join(client, code_value, contact=PHONE, service="teller"):
    return client.post(
        f"{API}/branches/JKT21/remote/tickets",
        json={"service": service, "contact": contact, "code": code_value},
    )


@time_machine.travel(NOW, tick=False)
def test_the_api_flow(client, branch, session):
    intake = client.get(f"{API}/branches/JKT21/services/teller/intake")
    assert intake.status_code == 200
    assert intake.get_json() == {"open": True, "reason": None, "estimated_wait_s": None}
    sent = api_code(client)
    assert sent.status_code == 202, sent.get_json()
    assert sent.get_json()["channel"] == "sms"
    code = sent_code(E164)
    # a wrong code is counted although the answer is an error
    assert_error(api_join(client, wrong(code)), 422, "wrong_code")
    row = session.scalar(select(ContactVerification))
    assert row.attempts == 1
    joined = api_join(client, code)
    assert joined.status_code == 201, joined.get_json()
    body = joined.get_json()
    assert body["confirmed"] is False and body["position"] == 1 and body["token"]
    assert body["source"] == "mobile"
    token = body["token"]
    assert_error(
        client.post(f"{API}/tickets/{token}/arrival", json={"key": "nope"}),
        403,
        "wrong_arrival_key",
    )
    arrived = client.post(
        f"{API}/tickets/{token}/arrival", json={"key": remote.arrival_key(branch)}
    )
    assert arrived.status_code == 200 and arrived.get_json()["confirmed"] is True
    left = client.post(f"{API}/tickets/{token}/leave")
    assert left.status_code == 200 and left.get_json()["status"] == "cancelled"
    assert_error(client.post(f"{API}/tickets/{token}/leave"), 409, "cannot_leave")


@time_machine.travel(NOW, tick=False)
def test_api_errors_are_4xx(client, branch, session):
    assert_error(api_code(client, code="NOPE"), 404)
    assert_error(api_code(client, service="nope"), 422, "unknown_service")
    assert_error(api_code(client, contact="not a phone"), 422, "invalid_phone")
    assert_error(api_code(client, contact="x@y"), 422, "invalid_email")
    assert_error(client.get(f"{API}/branches/JKT21/services/nope/intake"), 404)
    assert_error(client.get(f"{API}/branches/NOPE/services/teller/intake"), 404)
    for body in ({}, {"service": "teller"}, {"contact": PHONE}, {"service": 1, "contact": 2}):
        response = client.post(f"{API}/branches/JKT21/remote/codes", json=body)
        assert_error(response, 422, ctx=body)
    assert_error(
        client.post(
            f"{API}/branches/JKT21/remote/codes", data="{", content_type="application/json"
        ),
        400,
    )
    assert_error(api_join(client, "123456"), 422, "no_code")
    assert_error(
        client.post(f"{API}/branches/JKT21/remote/tickets", json={"service": "teller"}), 422
    )
    for action, body in (("arrival", {"key": "k"}), ("leave", None)):
        assert_error(client.post(f"{API}/tickets/unknown-token/{action}", json=body), 404)
    branch.remote_intake = False
    session.commit()
    assert client.get(f"{API}/branches/JKT21/services/teller/intake").get_json()["reason"] == (
        "remote_off"
    )
    assert_error(api_code(client), 409, "intake_remote_off")


@time_machine.travel(NOW, tick=False)
def test_api_limits_per_contact_and_per_address(app, client, branch):
    for _ in range(3):
        assert api_code(client).status_code == 202
    assert_error(api_code(client), 429, "too_many_codes")
    app.config["REMOTE_CODE_RATE_LIMIT"] = "2 per minute"
    limiter.reset()
    try:
        assert api_code(client, "0813-1111-2222").status_code == 202
        assert api_code(client, "0813-1111-3333").status_code == 202
        assert_error(api_code(client, "0813-1111-4444"), 429)
    finally:
        app.config["REMOTE_CODE_RATE_LIMIT"] = "1000 per minute"
        limiter.reset()


@time_machine.travel(NOW, tick=False)
def test_the_code_reaches_a_real_gateway_and_mail_server_right_after_the_commit(
    client, branch, gateway, smtp
):
    """No outbox job runs here: the code is an urgent message, sent after the commit."""
    assert api_code(client).status_code == 202
    [sms] = gateway.wait_for(1)
    assert sms["to"] == E164 and sms["channel"] == "sms"
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    assert api_join(client, code).status_code == 201

    assert api_code(client, "Siti@Example.com").status_code == 202
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "siti@example.com"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    joined = api_join(client, re.search(r"\b(\d{6})\b", body).group(1), "siti@example.com")
    assert joined.status_code == 201, joined.get_json()
