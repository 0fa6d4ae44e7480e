"""Capturing ratings (feedback/services.py), the quoted wait stored at issue, rating invitations
and their contact policy (feedback/invitations.py), the signed link (feedback/links.py) and
the phone pages (feedback/web.py).

Visits are served through the real engine (issue, call, start, finish, transfer) at explicit
times, so every fact a response copies is hand-computed from those times. Invitations go
through the real outbox to a real SMTP server and SMS gateway (tests/outboxes.py).
"""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from queue_app.cases.models import Case, CaseStatus
from queue_app.core.errors import Conflict
from queue_app.core.events import in_transaction_signal, signal
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.feedback import invitations, links
from queue_app.feedback import services as feedback
from queue_app.feedback.models import (
    FeedbackChannel,
    FeedbackInvitation,
    FeedbackResponse,
    InvitationStatus,
    SkipReason,
    SurveyConfig,
)
from queue_app.notify.models import OutboxMessage
from queue_app.tickets import services as engine
from queue_app.tickets.models import Source, TicketStatus

from .outboxes import deliver_outbox
from .sqlcount import statements_sent

COUNTERS = [("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs"])]
M = timedelta(minutes=1)


@pytest.fixture
def floor(make, now):
    b = make.branch("FBK01", counters=COUNTERS)
    budi = make.user("budi_fb", branches=[b])
    sari = make.user("sari_fb", branches=[b])
    c1, c3 = make.counter(b, "Teller 1"), make.counter(b, "CS 1")
    make.open_counter(c1, budi, now=now - 30 * M)
    make.open_counter(c3, sari, now=now - 30 * M)
    db.session.commit()
    return {"branch": b, "budi": budi, "sari": sari, "teller": c1, "cs": c3}


_n = iter(range(100_000))


def person(*, phone=True, email=False, consent=True, locale=None) -> Customer:
    n = next(_n)
    c = Customer(
        phone=f"+62813000{n:05d}" if phone else None,
        email=f"pelanggan{n}@example.co.id" if email else None,
        name=f"Pelanggan {n}",
        locale=locale,
        consent_contact=True,
        consent_survey=consent,
    )
    db.session.add(c)
    db.session.flush()
    return c


def serve(make, floor, at, *, customer=None, called=5, started=6, finished=10, service="teller"):
    """A visit issued at `at`, called, started and finished that many minutes later."""
    b = floor["branch"]
    counter, staff = (
        (floor["teller"], floor["budi"]) if service == "teller" else (floor["cs"], floor["sari"])
    )
    ticket = make.ticket(b, service, now=at, customer=customer)
    db.session.commit()
    engine.call_ticket(ticket, counter, staff, now=at + called * M)
    engine.start(ticket, staff, now=at + started * M)
    db.session.commit()
    engine.finish(ticket, staff, now=at + finished * M)
    db.session.commit()
    return ticket


def survey(branch, **settings) -> SurveyConfig:
    config = SurveyConfig(branch_id=branch.id, service_id=None, **settings)
    db.session.add(config)
    db.session.commit()
    return config


# --- the facts a response copies -------------------------------------------------------------


def test_a_response_copies_the_touchpoint_and_the_steps_facts(make, floor, now):
    who = person()
    ticket = serve(make, floor, now, customer=who, called=7, started=8, finished=13)
    later = now + 20 * M
    response = feedback.record_response(
        ticket,
        channel=FeedbackChannel.QR,
        nps=9,
        csat=4,
        reasons=["staff_attitude", "waiting_time", "waiting_time"],
        comment="  Pelayanan cepat, terima kasih.  ",
        locale="id",
        now=later,
    )
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(FeedbackResponse, response.id)
    assert (row.ticket_id, row.visit_id) == (ticket.id, ticket.visit_id)
    assert (row.branch_id, row.service_id) == (floor["branch"].id, ticket.service_id)
    assert (row.counter_id, row.staff_id, row.customer_id) == (
        floor["teller"].id,
        floor["budi"].id,
        who.id,
    )
    assert row.channel == FeedbackChannel.QR
    assert (row.nps, row.csat, row.ces) == (9, 4, None)
    # in the survey's order, once each
    assert row.reasons == ["waiting_time", "staff_attitude"]
    assert row.comment == "Pelayanan cepat, terima kasih."
    assert row.locale == "id" and row.submitted_at == later
    assert row.business_day == ticket.business_day == now.date()
    assert row.wait_s == 7 * 60  # first call - issue
    assert row.service_s == 5 * 60  # finish - start
    # the estimator (waits.live) at issue: one teller open and idle, nobody waiting, so a ticket
    # issued now is called at once
    assert row.quoted_wait_s == ticket.quoted_wait_s == 0
    assert row.transfers == 0
    assert row.quote_kept is False  # waited 420 s, was told 0 s


def test_a_transferred_visit_rates_its_second_step_with_one_transfer(make, floor, now):
    b, budi, sari = floor["branch"], floor["budi"], floor["sari"]
    first = make.ticket(b, "teller", now=now, customer=person())
    db.session.commit()
    engine.call_ticket(first, floor["teller"], budi, now=now + 2 * M)
    engine.start(first, budi, now=now + 3 * M)
    second = engine.transfer(first, budi, now=now + 10 * M, service=make.service(b, "cs"))
    db.session.commit()
    engine.call_ticket(second, floor["cs"], sari, now=now + 15 * M)
    engine.start(second, sari, now=now + 16 * M)
    engine.finish(second, sari, now=now + 20 * M)
    db.session.commit()

    with pytest.raises(Conflict) as refused:  # the first step was transferred, not served
        feedback.record_response(first, channel=FeedbackChannel.QR, nps=5, now=now + 30 * M)
    assert refused.value.code == "not_finished"
    db.session.rollback()

    chosen = feedback.step_to_rate(first.visit_id)
    assert chosen.id == second.id
    response = feedback.record_response(chosen, channel=FeedbackChannel.QR, nps=8, now=now)
    db.session.commit()
    assert response.transfers == 1
    assert response.wait_s == 5 * 60  # called 5 min after the transfer started this step
    assert response.service_s == 4 * 60
    assert (response.service_id, response.counter_id, response.staff_id) == (
        make.service(b, "cs").id,
        floor["cs"].id,
        sari.id,
    )


def test_an_appointment_is_told_the_time_to_its_start_and_waits_from_check_in(make, floor, now):
    b = floor["branch"]
    ticket = engine.issue_ticket(
        b,
        make.service(b, "teller"),
        now=now,
        source=Source.APPOINTMENT,
        customer=person(),
        appointment_due_at=now + 20 * M,
    )
    db.session.commit()
    assert ticket.quoted_wait_s == 20 * 60  # "we will call you around <start>"
    engine.call_ticket(ticket, floor["teller"], floor["budi"], now=now + 18 * M)
    engine.start(ticket, floor["budi"], now=now + 19 * M)
    engine.finish(ticket, floor["budi"], now=now + 31 * M)
    db.session.commit()
    response = feedback.record_response(ticket, channel=FeedbackChannel.LINK, csat=5, now=now)
    assert (response.wait_s, response.quoted_wait_s, response.service_s) == (18 * 60, 1200, 720)
    assert response.quote_kept is True


def test_a_late_appointment_or_an_early_one_never_gets_a_negative_quote(make, floor, now):
    b = floor["branch"]
    ticket = engine.issue_ticket(
        b,
        make.service(b, "teller"),
        now=now,
        source=Source.APPOINTMENT,
        customer=person(),
        appointment_due_at=now - 5 * M,
    )
    assert ticket.quoted_wait_s == 0


def test_the_quoted_wait_at_issue_counts_the_queue_and_open_counters(make, floor, now):
    """Hand-computed on the ORM path (a customer) and, on PostgreSQL, the one-statement path
    (no customer). The quote is the estimator's (waits.live) wait of a new ticket, made at the
    branch's last change. No history, so a teller takes exactly its expected 240 s (the prior,
    EWT_PRIOR_CV = 0 in tests), no arrivals, no abandonment; an idle open counter takes the
    oldest waiting ticket at once."""
    b = floor["branch"]
    quotes = []
    for i in range(3):
        customer = person() if i % 2 else None
        quotes.append(make.ticket(b, "teller", now=now + i * M, customer=customer).quoted_wait_s)
        db.session.commit()
    # Teller 1 open: nobody ahead -> called at once; one ahead -> 240 s; two -> 480 s
    assert quotes == [0, 240, 480]
    # (opened after the three tickets: the estimate is made at the last change's time)
    engine.open_counter(
        make.counter(b, "Teller 2"), make.user("tiga", branches=[b]), now=now + 5 * M
    )
    db.session.commit()
    # 3 waiting, 2 idle tellers take the 1st and 2nd at once, the 3rd and a new one at 240 s
    assert make.ticket(b, "teller", now=now + 5 * M).quoted_wait_s == 240
    # no counter serves loans: not known, so no quote
    assert make.ticket(b, "loans", now=now + 5 * M).quoted_wait_s is None


# --- the rules -------------------------------------------------------------------------------


def _code(fn) -> tuple[int, str, str | None]:
    try:
        fn()
    except feedback.InvalidAnswer as exc:
        db.session.rollback()
        return exc.status, exc.code, exc.field
    except Conflict as exc:
        db.session.rollback()
        return exc.status, exc.code, None
    raise AssertionError("accepted")


def test_only_a_finished_served_step_can_be_rated(make, floor, now):
    b, budi = floor["branch"], floor["budi"]
    waiting = make.ticket(b, "teller", now=now)
    called = make.ticket(b, "teller", now=now)
    gone = make.ticket(b, "teller", now=now)
    db.session.commit()
    engine.call_ticket(called, floor["teller"], budi, now=now + M)
    db.session.commit()
    engine.cancel(gone, budi, now=now + M)
    db.session.commit()
    for ticket in (waiting, called, gone):
        got = _code(lambda t=ticket: feedback.record_response(t, channel="qr", nps=3, now=now))
        assert got == (409, "not_finished", None), ticket.status
    engine.mark_no_show(called, budi, now=now + 2 * M)
    db.session.commit()
    assert called.status == TicketStatus.NO_SHOW
    got = _code(lambda: feedback.record_response(called, channel="qr", nps=3, now=now))
    assert got == (409, "not_finished", None)
    assert db.session.scalar(select(func.count()).select_from(FeedbackResponse)) == 0


def test_a_step_is_rated_once_whatever_the_channel(make, floor, now):
    ticket = serve(make, floor, now)
    feedback.record_response(ticket, channel=FeedbackChannel.TABLET, nps=10, now=now)
    db.session.commit()
    for channel in FeedbackChannel:
        got = _code(lambda c=channel: feedback.record_response(ticket, channel=c, csat=1, now=now))
        assert got == (409, "already_rated", None)
    with pytest.raises(Conflict) as refused:
        feedback.step_to_rate(ticket.visit_id)
    assert refused.value.code == "already_rated"


@pytest.mark.parametrize(
    ("answer", "code", "field"),
    [
        ({"nps": 11}, "invalid_nps", "nps"),
        ({"nps": -1}, "invalid_nps", "nps"),
        ({"nps": True}, "invalid_nps", "nps"),
        ({"nps": "7"}, "invalid_nps", "nps"),
        ({"nps": 7.0}, "invalid_nps", "nps"),
        ({"csat": 0}, "invalid_csat", "csat"),
        ({"csat": 6}, "invalid_csat", "csat"),
        ({"ces": 3}, "invalid_ces", "ces"),  # the default survey does not ask CES
        ({"nps": 9, "reasons": ["nope"]}, "unknown_reason", "reasons"),
        ({"nps": 9, "reasons": "waiting_time"}, "unknown_reason", "reasons"),
        ({"nps": 9, "reasons": [3]}, "unknown_reason", "reasons"),
        ({}, "empty_response", None),
        ({"comment": "   "}, "empty_response", None),
        ({"comment": "x" * 2001}, "comment_too_long", "comment"),
        ({"comment": 5}, "invalid_comment", "comment"),
    ],
)
def test_answers_out_of_range_or_not_offered_are_refused(make, floor, now, answer, code, field):
    ticket = serve(make, floor, now)
    got = _code(lambda: feedback.record_response(ticket, channel="api", now=now, **answer))
    assert got == (422, code, field)
    assert feedback.existing_response(ticket.id) is None


def test_the_touchpoints_own_survey_decides_questions_and_reasons(make, floor, now):
    b = floor["branch"]
    teller = make.service(b, "teller")
    db.session.add(
        SurveyConfig(
            branch_id=b.id,
            service_id=teller.id,
            ask_nps=False,
            ask_csat=False,
            ask_ces=True,
            ask_comment=False,
            reasons=["waiting_time"],
        )
    )
    db.session.commit()
    ticket = serve(make, floor, now)
    assert _code(lambda: feedback.record_response(ticket, channel="qr", nps=9, now=now))[1] == (
        "invalid_nps"
    )
    got = _code(
        lambda: feedback.record_response(ticket, channel="qr", ces=4, reasons=["product"], now=now)
    )
    assert got == (422, "unknown_reason", "reasons")
    got = _code(lambda: feedback.record_response(ticket, channel="qr", comment="hi", now=now))
    assert got == (422, "invalid_comment", "comment")
    exactly_2000 = "y" * 2000
    assert len(exactly_2000) == feedback.MAX_COMMENT
    ok = feedback.record_response(ticket, channel="qr", ces=1, reasons=["waiting_time"], now=now)
    assert (ok.ces, ok.reasons) == (1, ["waiting_time"])
    # the comment limit is the stripped text's
    other = serve(make, floor, now + 20 * M, service="cs")
    long = feedback.record_response(
        other, channel="qr", comment=f"  {exactly_2000}\n ", nps=0, now=now
    )
    assert long.comment == exactly_2000


def test_signals_tell_the_cases_in_the_transaction_and_the_rest_after_commit(make, floor, now):
    ticket = serve(make, floor, now)
    inside, after = [], []

    def on_received(_sender, *, response, session, now, **_kw):
        # inside the unit of work: the response is flushed, not committed
        inside.append((response.id, response.ticket_id, session is db.session, now))

    def on_recorded(_sender, **payload):
        after.append(payload)

    in_transaction_signal("feedback.received").connect(on_received)
    signal("feedback.recorded").connect(on_recorded)
    try:
        response = feedback.record_response(ticket, channel="qr", nps=10, now=now)
        assert inside == [(response.id, ticket.id, True, now)] and after == []
        db.session.rollback()  # rolled back: nothing is announced
        assert after == []
        again = feedback.record_response(ticket, channel="qr", nps=10, now=now)
        db.session.commit()
        assert after == [{"response_id": again.id, "branch_id": floor["branch"].id}]
    finally:
        in_transaction_signal("feedback.received").disconnect(on_received)
        signal("feedback.recorded").disconnect(on_recorded)


def test_a_lost_race_becomes_already_rated_and_the_unit_of_work_goes_on(
    make, floor, now, monkeypatch
):
    """The insert itself hits the unique index (the pre-check is made to miss the first
    response): the savepoint turns the IntegrityError into the 409, the outer transaction
    stays usable."""
    ticket = serve(make, floor, now)
    first = feedback.record_response(ticket, channel="tablet", nps=9, now=now)
    db.session.commit()
    monkeypatch.setattr(feedback, "existing_response", lambda _id: None)
    other = serve(make, floor, now + 20 * M, service="cs")
    with pytest.raises(Conflict) as refused:
        feedback.record_response(ticket, channel="qr", nps=1, now=now)
    assert refused.value.code == "already_rated"
    # same transaction: still usable, and what it does still commits
    kept = feedback.record_response(other, channel="qr", nps=7, now=now)
    db.session.commit()
    assert db.session.scalars(select(FeedbackResponse.id).order_by(FeedbackResponse.id)).all() == [
        first.id,
        kept.id,
    ]


def test_two_ratings_of_one_step_at_the_same_moment_record_one(app, make, floor, now, is_postgres):
    """Real threads, each its own session. On PostgreSQL a barrier holds both right after the
    pre-check, so both insert: the second waits on the unique index and gets `already_rated`
    through the savepoint. On SQLite writers are serialized (BEGIN IMMEDIATE): the second sees
    the first's row in the pre-check."""
    ticket_id = serve(make, floor, now).id
    db.session.remove()
    barrier = threading.Barrier(2, timeout=10)
    real_check = feedback.existing_response
    results: list = []

    def checked(ticket_id_):
        found = real_check(ticket_id_)
        if is_postgres:
            barrier.wait()
        return found

    def rate(score):
        with app.app_context():
            from queue_app.tickets.models import Ticket

            try:
                t = db.session.get(Ticket, ticket_id)
                feedback.record_response(t, channel="qr", nps=score, now=now)
                db.session.commit()
                results.append("ok")
            except Conflict as exc:
                db.session.rollback()
                results.append(exc.code)
            finally:
                db.session.remove()

    feedback.existing_response = checked
    try:
        threads = [threading.Thread(target=rate, args=(s,)) for s in (2, 10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        feedback.existing_response = real_check
    assert sorted(results) == ["already_rated", "ok"]
    assert db.session.scalar(select(func.count()).select_from(FeedbackResponse)) == 1


# --- invitations -----------------------------------------------------------------------------


def _invitation(ticket) -> FeedbackInvitation:
    db.session.expire_all()
    return db.session.scalar(
        select(FeedbackInvitation).where(FeedbackInvitation.ticket_id == ticket.id)
    )


def _skipped(ticket, reason: SkipReason) -> None:
    invitation = _invitation(ticket)
    assert invitation is not None, "every finished step gets its invitation row"
    assert (invitation.status, invitation.reason) == (InvitationStatus.SKIPPED, reason)
    assert invitation.expires_at is None
    outbox = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.dedupe_key == f"feedback:invite:{ticket.id}")
    )
    assert outbox == 0


def test_no_invitation_without_contact_consent_or_question(make, floor, now):
    _skipped(serve(make, floor, now), SkipReason.NO_CONTACT)  # a walk-in
    _skipped(serve(make, floor, now, customer=person(phone=False)), SkipReason.NO_CONTACT)
    _skipped(serve(make, floor, now, customer=person(consent=False)), SkipReason.NO_CONSENT)
    survey(
        floor["branch"],
        ask_nps=False,
        ask_csat=False,
        ask_ces=False,
        ask_comment=False,
        reasons=[],
    )
    _skipped(serve(make, floor, now + 60 * M, customer=person()), SkipReason.SURVEY_OFF)


def test_no_invitation_while_the_customer_has_an_open_case(make, floor, now):
    who = person()
    earlier = serve(make, floor, now - 24 * 60 * M, customer=who)
    db.session.execute(
        FeedbackInvitation.__table__.delete().where(FeedbackInvitation.ticket_id == earlier.id)
    )
    rated = feedback.record_response(earlier, channel="qr", nps=10, now=now - 23 * 60 * M)
    case = Case(
        response_id=rated.id,
        ticket_id=earlier.id,
        branch_id=earlier.branch_id,
        service_id=earlier.service_id,
        customer_id=who.id,
        level=2,
        status=CaseStatus.ACKNOWLEDGED,
        opened_at=now - 23 * 60 * M,
    )
    db.session.add(case)
    db.session.commit()
    _skipped(serve(make, floor, now, customer=who), SkipReason.OPEN_CASE)
    case.status = CaseStatus.RESOLVED
    db.session.commit()
    # resolved: invited again (nothing was SENT to them within the quiet days)
    assert _invitation(serve(make, floor, now + 30 * M, customer=who)).status == "sent"


def test_a_customer_is_not_invited_again_within_the_quiet_days(make, floor, now):
    survey(floor["branch"], quiet_days=30)
    who = person()
    first = serve(make, floor, now, customer=who)
    assert _invitation(first).status == InvitationStatus.SENT
    _skipped(serve(make, floor, now + 60 * M, customer=who), SkipReason.RECENTLY_INVITED)
    # a skipped invitation does not start a new quiet period; 30 days after the SENT one:
    later = serve(make, floor, now + timedelta(days=30, minutes=1), customer=who)
    assert _invitation(later).status == InvitationStatus.SENT


def test_sampling_is_deterministic_by_the_ticket_id(make, floor, now):
    config = survey(floor["branch"], sample_percent=0)
    _skipped(serve(make, floor, now, customer=person()), SkipReason.SAMPLED_OUT)
    config.sample_percent = 100
    db.session.commit()
    assert _invitation(serve(make, floor, now + 20 * M, customer=person())).status == "sent"
    # the rule, computed independently: SHA-256 of the id, first 8 bytes, mod 100
    for ticket_id in range(1, 400):
        bucket = int.from_bytes(hashlib.sha256(str(ticket_id).encode()).digest()[:8]) % 100
        assert invitations.in_sample(ticket_id, 30) is (bucket < 30)
    share = sum(invitations.in_sample(i, 30) for i in range(1, 5001)) / 5000
    assert 0.27 < share < 0.33


def test_a_step_closed_by_the_end_of_day_job_is_not_invited(make, floor, now):
    b = floor["branch"]
    ticket = make.ticket(b, "teller", now=now, customer=person())
    db.session.commit()
    engine.call_ticket(ticket, floor["teller"], floor["budi"], now=now + M)
    engine.start(ticket, floor["budi"], now=now + 2 * M)
    db.session.commit()
    engine.close_past_business_days(b, now=now + timedelta(days=1))
    db.session.commit()
    assert ticket.status == TicketStatus.FINISHED
    _skipped(ticket, SkipReason.NOT_SERVED)


def test_no_invitation_row_for_a_step_that_was_not_served(make, floor, now):
    ticket = make.ticket(floor["branch"], "teller", now=now, customer=person())
    db.session.commit()
    engine.cancel(ticket, floor["budi"], now=now + M)
    db.session.commit()
    assert _invitation(ticket) is None
    assert db.session.scalar(select(func.count()).select_from(FeedbackInvitation)) == 0


# the tables the invitation's decision reads and writes
INVITATION_TABLES = {"feedback_invitations", "feedback_responses", "survey_configs"}


def _invitation_statements(fn):
    """`fn()`, and the statements of this thread that name a table of `INVITATION_TABLES`."""
    with statements_sent() as sent:
        result = fn()
    return result, [s for s in sent if INVITATION_TABLES & set(re.findall(r"\w+", s.lower()))]


@pytest.mark.parametrize(
    "rows, reason",
    [
        ({}, SkipReason.NO_CONTACT),  # the network's defaults
        ({"branch": False}, SkipReason.SURVEY_OFF),
        ({"branch": False, "teller": True}, SkipReason.NO_CONTACT),  # its own row first
        ({"branch": True, "teller": False}, SkipReason.SURVEY_OFF),
    ],
    ids=["defaults", "branch-off", "own-on-branch-off", "own-off-branch-on"],
)
def test_a_finish_decides_its_invitation_in_one_read_and_one_insert(make, floor, now, rows, reason):
    """A walk-in's finish: whether the step has an invitation, whether it is rated and its
    touchpoint's survey rows come in one SELECT, then the INSERT; whatever rows the touchpoint
    has (none, the branch's, its own over the branch's)."""
    b = floor["branch"]
    teller = make.service(b, "teller")
    asks = {"ask_nps": True, "ask_csat": False, "ask_ces": False, "ask_comment": False}
    silent = {**asks, "ask_nps": False, "reasons": []}
    for touchpoint, on in rows.items():
        service_id = teller.id if touchpoint == "teller" else None
        settings = asks if on else silent
        db.session.add(SurveyConfig(branch_id=b.id, service_id=service_id, **settings))
    ticket = make.ticket(b, "teller", now=now)
    db.session.commit()
    engine.call_ticket(ticket, floor["teller"], floor["budi"], now=now + M)
    engine.start(ticket, floor["budi"], now=now + 2 * M)
    db.session.commit()
    db.session.expire_all()

    def finish():
        engine.finish(ticket, floor["budi"], now=now + 5 * M)
        db.session.commit()

    _, sent = _invitation_statements(finish)
    assert [s.lstrip().split()[0].upper() for s in sent] == ["SELECT", "INSERT"], sent
    assert sent[1].lstrip().upper().startswith("INSERT INTO FEEDBACK_INVITATIONS"), sent
    _skipped(ticket, reason)


def test_a_rated_step_is_skipped_in_one_read_and_a_replay_returns_the_decision(make, floor, now):
    """Rated in the same unit of work (a replay): `already_rated`, before `no_contact`, read
    with the survey in one statement; deciding again returns the recorded row and writes
    nothing."""
    ticket = serve(make, floor, now)  # a walk-in
    db.session.execute(
        FeedbackInvitation.__table__.delete().where(FeedbackInvitation.ticket_id == ticket.id)
    )
    feedback.record_response(ticket, channel="tablet", nps=9, now=now + 11 * M)
    db.session.expire_all()
    decided, sent = _invitation_statements(
        lambda: invitations.invite(db.session, ticket, now=now + 12 * M)
    )
    assert (decided.status, decided.reason) == (InvitationStatus.SKIPPED, SkipReason.ALREADY_RATED)
    assert [s.lstrip().split()[0].upper() for s in sent] == ["SELECT", "INSERT"], sent
    again, sent = _invitation_statements(
        lambda: invitations.invite(db.session, ticket, now=now + 13 * M)
    )
    assert again is decided
    assert not any(s.lstrip().upper().startswith("INSERT") for s in sent), sent
    db.session.commit()
    _skipped(ticket, SkipReason.ALREADY_RATED)


def _link_in(text: str) -> str:
    found = re.search(r"https?://\S+/r/[\w.\-]+", text)
    assert found, text
    return found.group(0)


def test_a_sent_invitation_goes_out_after_the_delay_by_sms_and_e_mail(
    app, make, floor, now, smtp, gateway, client
):
    survey(floor["branch"], link_valid_days=3)
    texting = person(locale="en")
    mailing = person(phone=False, email=True, locale="id")
    by_sms = serve(make, floor, now, customer=texting)
    by_mail = serve(make, floor, now, customer=mailing, service="cs")
    finished = now + 10 * M
    for ticket in (by_sms, by_mail):
        invitation = _invitation(ticket)
        assert (invitation.status, invitation.reason) == (InvitationStatus.SENT, None)
        assert invitation.created_at == finished
        assert invitation.expires_at == finished + timedelta(days=3)
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == f"feedback:invite:{by_sms.id}")
    )
    assert (message.kind, message.locale, message.channel) == ("feedback_invitation", "en", "sms")
    mail_row = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == f"feedback:invite:{by_mail.id}")
    )
    assert (mail_row.locale, mail_row.channel) == ("id", "email")  # the customer's language
    assert message.next_attempt_at == finished + timedelta(seconds=600)
    db.session.rollback()  # the job works in its own session: no write lock held here

    assert deliver_outbox(app, finished + timedelta(seconds=599))["sent"] == 0
    assert gateway.messages == [] and smtp.messages == []
    assert deliver_outbox(app, finished + timedelta(seconds=600))["sent"] == 2
    sms = gateway.wait_for(1)[0]
    assert sms["to"] == texting.phone
    assert "Thank you for visiting Cabang FBK01" in sms["text"]  # the customer's language
    mail = smtp.wait_for(1)[0]
    assert mail["To"] == mailing.email
    assert mail["Subject"].startswith(("How was your visit", "Bagaimana"))
    body = mail.get_body(preferencelist=("plain",)).get_content()

    # both links open the rating page of their own step, and rate it
    for link, ticket in ((_link_in(sms["text"]), by_sms), (_link_in(body), by_mail)):
        path = link[link.index("/r/") :]
        with time_machine.travel(finished + timedelta(hours=1), tick=False):
            page = client.get(path)
            assert page.status_code == 200, page.get_data(as_text=True)[:300]
            assert ticket.number in page.get_data(as_text=True)


def test_a_step_rated_before_the_message_goes_out_answers_already_rated(
    app, make, floor, now, gateway, client
):
    ticket = serve(make, floor, now, customer=person())
    # rated at the tablet a minute after it finished
    feedback.record_response(ticket, channel="tablet", nps=6, now=now + 11 * M)
    db.session.commit()
    assert _invitation(ticket).status == InvitationStatus.SENT  # decided at the finish
    db.session.rollback()
    deliver_outbox(app, now + 10 * M + timedelta(seconds=600))
    path = _link_in(gateway.wait_for(1)[0]["text"])
    path = path[path.index("/r/") :]
    with time_machine.travel(now + 30 * M, tick=False):
        page = client.get(path)
        assert page.status_code == 409
        assert 'data-kind="already_rated"' in page.get_data(as_text=True)
        posted = client.post(path, data={"nps": "10"})
    assert posted.status_code in (400, 409)  # no CSRF token, or already rated: nothing either way
    assert db.session.scalar(select(func.count()).select_from(FeedbackResponse)) == 1


# --- the signed link -------------------------------------------------------------------------


def test_the_link_expires_after_the_surveys_days(app_ctx, make, floor, now, client):
    survey(floor["branch"], link_valid_days=2)
    ticket = serve(make, floor, now, customer=person())
    signed_at = now + 10 * M
    token = links.link_token(ticket, now=signed_at)
    assert links.ticket_of(token, now=signed_at + timedelta(days=2)).id == ticket.id
    with pytest.raises(links.LinkExpired):
        links.ticket_of(token, now=signed_at + timedelta(days=2, seconds=1))
    with time_machine.travel(signed_at + timedelta(days=1), tick=False):
        assert client.get(f"/r/{token}").status_code == 200
    with time_machine.travel(signed_at + timedelta(days=2, minutes=1), tick=False):
        page = client.get(f"/r/{token}")
        assert page.status_code == 410
        assert 'data-kind="link_expired"' in page.get_data(as_text=True)


def test_a_forged_or_altered_link_names_nothing(app_ctx, make, floor, now, client):
    ticket = serve(make, floor, now)
    token = links.link_token(ticket, now=now)
    for bad in (token[:-2] + "xx", "abc", token + "a", "x" * 600):
        with pytest.raises(links.NotFound):
            links.ticket_of(bad, now=now)
        page = client.get(f"/r/{bad}")
        assert page.status_code == 404
        assert 'data-kind="invalid_link"' in page.get_data(as_text=True)
    # another salt (the booking link's) does not open a rating
    from itsdangerous import URLSafeTimedSerializer

    other = URLSafeTimedSerializer(app_ctx.config["SECRET_KEY"], salt="booking.manage")
    with pytest.raises(links.NotFound):
        links.ticket_of(other.dumps(ticket.id), now=now)


# --- the phone pages -------------------------------------------------------------------------


def _csrf(page_text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_text).group(1)


def test_rating_from_the_tracking_page_in_both_languages(make, floor, now, client):
    who = person(locale="en")
    ticket = serve(make, floor, now, customer=who)
    track = client.get(f"/t/{ticket.token}").get_data(as_text=True)
    # the tracking page speaks the branch's language (the visit's); the rating form the customer's
    assert f'href="/t/{ticket.token}/rate"' in track and 'data-testid="rate-link"' in track
    assert '<html lang="id">' in track and "Nilai kunjungan Anda" in track
    form = client.get(f"/t/{ticket.token}/rate")
    text = form.get_data(as_text=True)
    assert form.status_code == 200
    assert "How likely are you to recommend Cabang FBK01 to a friend or colleague?" in text
    assert "How satisfied are you with your visit today?" in text
    assert "How easy was it" not in text  # CES is not asked here
    assert text.count('name="nps"') == 11 and text.count('name="csat"') == 5
    # an out-of-range answer: the form again, the error next to its question, choices kept
    bad = client.post(
        f"/t/{ticket.token}/rate",
        data={"csrf_token": _csrf(text), "step": "1", "nps": "12", "csat": "4"},
    )
    assert bad.status_code == 422
    again = bad.get_data(as_text=True)
    assert 'data-testid="error-nps"' in again and "Choose a number from 0 to 10." in again
    assert re.search(r'value="4" data-testid="csat-4"\s+checked', again)
    done = client.post(
        f"/t/{ticket.token}/rate",
        data={
            "csrf_token": _csrf(again),
            "step": "1",
            "nps": "3",
            "csat": "2",
            "reasons": ["waiting_time", "process"],
            "comment": " Antrean terlalu lama ",
        },
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/rate/thanks")
    assert "Thank you!" in client.get(done.headers["Location"]).get_data(as_text=True)
    response = feedback.existing_response(ticket.id)
    assert (response.channel, response.nps, response.csat) == ("qr", 3, 2)
    assert response.reasons == ["waiting_time", "process"]
    assert (response.comment, response.locale) == ("Antrean terlalu lama", "en")
    # rated: the tracking page no longer offers it, the form says so
    assert "/rate" not in client.get(f"/t/{ticket.token}").get_data(as_text=True)
    already = client.get(f"/t/{ticket.token}/rate")
    assert already.status_code == 409 and 'data-kind="already_rated"' in already.get_data(
        as_text=True
    )
    # the branch's language for a customer who has none, and the switch
    other = serve(make, floor, now + 20 * M, customer=person())
    assert '<html lang="en">' in text  # the customer's own language
    page = client.get(f"/t/{other.token}/rate").get_data(as_text=True)
    assert '<html lang="id">' in page  # the branch's
    switched = client.get(f"/t/{other.token}/rate?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in switched


def test_a_visit_not_finished_has_nothing_to_rate(make, floor, now, client):
    ticket = make.ticket(floor["branch"], "teller", now=now)
    db.session.commit()
    assert "/rate" not in client.get(f"/t/{ticket.token}").get_data(as_text=True)
    page = client.get(f"/t/{ticket.token}/rate")
    assert page.status_code == 409 and 'data-kind="not_finished"' in page.get_data(as_text=True)
    assert client.get("/t/no-such-token/rate").status_code == 404
