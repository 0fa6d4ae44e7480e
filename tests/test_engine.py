"""The engine's rules one by one: recall and no-show, busy counters, pausing and closing,
who may open and operate a counter, cancelling, finishing, transferring, the journey log
(numbered per branch, append-only) and the events announced after commit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from queue_app.accounts.models import Role
from queue_app.branches.models import Branch, CounterStatus
from queue_app.core.errors import Conflict, IllegalTransition, InvalidInput, NotAllowed, NotFound
from queue_app.core.events import signal
from queue_app.tickets import services as engine
from queue_app.tickets.models import AppendOnlyViolation, JourneyEvent, Ticket, TicketStatus

from .sqlcount import statements_sent

S = TicketStatus


@pytest.fixture
def floor(make, now):
    """A branch with two teller counters open, staffed by budi and sari, and a manager."""
    b = make.branch(
        "ENG01",
        counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"]), ("Loket 3", ["cs"])],
        recall_limit=2,
    )
    budi, sari = make.user("budi", branches=[b]), make.user("sari", branches=[b])
    manager = make.user("bu_rina", role=Role.BRANCH_MANAGER, branches=[b])
    c1, c2, c3 = (make.counter(b, f"Loket {i}") for i in (1, 2, 3))
    make.open_counter(c1, budi, now=now)
    make.open_counter(c2, sari, now=now)
    return {
        "branch": b,
        "budi": budi,
        "sari": sari,
        "manager": manager,
        "c1": c1,
        "c2": c2,
        "c3": c3,
    }


def journal(session, ticket=None, branch=None):
    """The log as the database holds it (entries are written when the unit of work commits)."""
    query = select(JourneyEvent).order_by(JourneyEvent.seq)
    if ticket is not None:
        query = query.where(JourneyEvent.ticket_id == ticket.id)
    if branch is not None:
        query = query.where(JourneyEvent.branch_id == branch.id)
    return session.scalars(query).all()


def kinds(session, ticket):
    return [e.kind for e in journal(session, ticket=ticket)]


def event_seq(session, branch):
    """The branch's last event number, read from the database (not a cached object)."""
    return session.scalar(select(Branch.event_seq).where(Branch.id == branch.id))


# --- recall and no-show ----------------------------------------------------------------------


def test_recall_up_to_the_branch_limit_then_no_show(make, session, now, floor):
    budi, c1 = floor["budi"], floor["c1"]
    ticket = make.ticket(floor["branch"], now=now)
    t = [now + timedelta(minutes=i) for i in range(5)]
    engine.call_next(c1, budi, now=t[1])

    engine.recall(ticket, budi, now=t[2])
    assert (ticket.status, ticket.recall_count, ticket.last_called_at) == (S.CALLED, 1, t[2])
    engine.recall(ticket, budi, now=t[3])
    assert (ticket.status, ticket.recall_count, ticket.last_called_at) == (S.CALLED, 2, t[3])
    assert ticket.called_at == t[1]  # the first call ended the wait
    # the limit (2) is reached: one more recall is a no-show
    engine.recall(ticket, budi, now=t[4])
    session.commit()
    assert (ticket.status, ticket.recall_count) == (S.NO_SHOW, 2)
    assert ticket.finished_at == t[4] and ticket.visit.closed_at == t[4]
    assert ticket.started_at is None
    assert kinds(session, ticket) == ["issued", "called", "recall", "recall", "no_show"]
    assert journal(session, ticket)[-1].data == {"reason": "recall_limit"}
    # the counter is free again
    with pytest.raises(IllegalTransition):
        engine.recall(ticket, budi, now=t[4])
    assert engine.call_next(c1, budi, now=t[4]) is None


def test_a_recall_limit_of_zero_makes_the_first_recall_a_no_show(make, session, now):
    b = make.branch(recall_limit=0)
    staff = make.user(branches=[b])
    make.open_counter(make.counter(b, "Loket 1"), staff, now=now)
    ticket = make.ticket(b, now=now)
    engine.call_next(make.counter(b, "Loket 1"), staff, now=now)
    engine.recall(ticket, staff, now=now)
    assert (ticket.status, ticket.recall_count) == (S.NO_SHOW, 0)


def test_no_show_directly_and_only_when_called(make, session, now, floor):
    budi = floor["budi"]
    ticket = make.ticket(floor["branch"], now=now)
    with pytest.raises(IllegalTransition):
        engine.mark_no_show(ticket, budi, now=now)
    engine.call_next(floor["c1"], budi, now=now)
    engine.start(ticket, budi, now=now)
    with pytest.raises(IllegalTransition):  # the customer came: no longer a no-show
        engine.mark_no_show(ticket, budi, now=now)
    with pytest.raises(IllegalTransition):
        engine.recall(ticket, budi, now=now)


# --- a counter serves one customer at a time -------------------------------------------------


def test_a_busy_counter_cannot_call_pause_or_close(make, session, now, floor):
    budi, c1 = floor["budi"], floor["c1"]
    first = make.ticket(floor["branch"], now=now)
    second = make.ticket(floor["branch"], now=now)
    engine.call_next(c1, budi, now=now)

    for status in (S.CALLED, S.SERVING):
        assert first.status == status
        for attempt in (
            lambda: engine.call_next(c1, budi, now=now),
            lambda: engine.call_ticket(second, c1, budi, now=now),
            lambda: engine.pause_counter(c1, budi, now=now, reason="lunch"),
            lambda: engine.close_counter(c1, budi, now=now),
        ):
            with pytest.raises(Conflict) as refused:
                attempt()
            assert refused.value.code == "counter_busy"
        if status == S.CALLED:
            engine.start(first, budi, now=now)
    assert second.status == S.WAITING and c1.status == CounterStatus.OPEN
    # holding the ticket frees the counter
    engine.hold(first, budi, now=now)
    assert engine.call_next(c1, budi, now=now).id == second.id


# --- pause and close -------------------------------------------------------------------------


def test_pause_with_a_reason_and_resume_work(make, session, now, floor):
    budi, sari, c1 = floor["budi"], floor["sari"], floor["c1"]
    make.ticket(floor["branch"], now=now)
    engine.pause_counter(c1, budi, now=now + timedelta(minutes=1), reason="prayer")
    session.commit()
    assert (c1.status, c1.pause_reason, c1.staff_id) == (CounterStatus.PAUSED, "prayer", budi.id)
    assert c1.status_since == now + timedelta(minutes=1)
    event = journal(session, branch=floor["branch"])[-1]
    assert (event.kind, event.counter_id, event.data) == (
        "counter_paused",
        c1.id,
        {"reason": "prayer"},
    )

    with pytest.raises(Conflict) as refused:
        engine.call_next(c1, budi, now=now)
    assert refused.value.code == "counter_not_open"
    with pytest.raises(Conflict):
        engine.pause_counter(c1, budi, now=now, reason="again")
    # a paused counter is still budi's: sari cannot take it
    engine.close_counter(floor["c2"], sari, now=now)
    with pytest.raises(Conflict) as refused:
        engine.open_counter(c1, sari, now=now)
    assert refused.value.code == "counter_taken"

    engine.open_counter(c1, budi, now=now + timedelta(minutes=20))
    assert (c1.status, c1.pause_reason, c1.staff_id) == (CounterStatus.OPEN, None, budi.id)
    assert engine.call_next(c1, budi, now=now + timedelta(minutes=20)) is not None


def test_pause_without_a_reason(make, session, now, floor):
    engine.pause_counter(floor["c1"], floor["budi"], now=now)
    session.commit()
    assert floor["c1"].pause_reason is None
    assert journal(session, branch=floor["branch"])[-1].data is None


def test_close_signs_out_and_cannot_close_twice(make, session, now, floor):
    budi, c1 = floor["budi"], floor["c1"]
    engine.pause_counter(c1, budi, now=now, reason="lunch")
    engine.close_counter(c1, budi, now=now + timedelta(hours=1))  # a paused counter closes
    session.commit()
    assert (c1.status, c1.staff_id, c1.pause_reason) == (CounterStatus.CLOSED, None, None)
    assert journal(session, branch=floor["branch"])[-1].kind == "counter_closed"
    with pytest.raises(Conflict) as refused:
        engine.close_counter(c1, budi, now=now)
    assert refused.value.code == "counter_closed"
    for attempt in (engine.pause_counter, engine.call_next):
        # nobody operates a closed counter: it says it is closed, not whose it is
        with pytest.raises(Conflict) as refused:
            attempt(c1, budi, now=now)
        assert refused.value.code == "counter_not_open"
    # budi is free to sign in at another counter now
    engine.open_counter(floor["c3"], budi, now=now)
    assert floor["c3"].staff_id == budi.id


def test_closing_records_how_many_tickets_it_released(make, session, now, floor):
    budi, sari = floor["budi"], floor["sari"]
    ticket = make.ticket(floor["branch"], now=now)
    engine.call_next(floor["c1"], budi, now=now)
    engine.transfer(ticket, budi, now=now, counter=floor["c2"], service=ticket.service)
    engine.close_counter(floor["c2"], sari, now=now)
    session.commit()
    assert journal(session, branch=floor["branch"])[-1].data == {"released": 1}


# --- who may open and operate a counter ------------------------------------------------------


def test_open_counter_conflicts(make, session, now, floor):
    budi, sari, c1, c3 = floor["budi"], floor["sari"], floor["c1"], floor["c3"]
    session.commit()
    events = len(journal(session, branch=floor["branch"]))
    assert events == 2  # the fixture opened two counters
    # someone else is signed in at Loket 1
    with pytest.raises(Conflict) as refused:
        engine.open_counter(c1, sari, now=now)
    assert refused.value.code == "counter_taken"
    # budi is signed in at Loket 1 already, so not at Loket 3 too
    with pytest.raises(Conflict) as refused:
        engine.open_counter(c3, budi, now=now)
    assert refused.value.code == "signed_in_elsewhere"
    # opening one's own open counter again changes nothing
    engine.open_counter(c1, budi, now=now + timedelta(minutes=5))
    session.commit()
    assert c1.status_since == now
    assert len(journal(session, branch=floor["branch"])) == events
    assert (c1.staff_id, c3.staff_id, c3.status) == (budi.id, None, CounterStatus.CLOSED)


def test_a_manager_may_take_over_a_counter(make, session, now, floor):
    manager, c1 = floor["manager"], floor["c1"]
    engine.open_counter(c1, manager, now=now)
    assert (c1.status, c1.staff_id) == (CounterStatus.OPEN, manager.id)
    with pytest.raises(NotAllowed):
        engine.call_next(c1, floor["budi"], now=now)


def test_staff_operate_only_their_own_counter(make, session, now, floor):
    budi, sari, manager = floor["budi"], floor["sari"], floor["manager"]
    ticket = make.ticket(floor["branch"], now=now)
    with pytest.raises(NotAllowed) as refused:
        engine.call_next(floor["c1"], sari, now=now)
    assert refused.value.code == "not_your_counter"
    engine.call_next(floor["c1"], budi, now=now)
    for attempt in (
        lambda: engine.start(ticket, sari, now=now),
        lambda: engine.recall(ticket, sari, now=now),
        lambda: engine.hold(ticket, sari, now=now),
        lambda: engine.mark_no_show(ticket, sari, now=now),
        lambda: engine.transfer(ticket, sari, now=now, service=floor["c3"].services[0]),
        lambda: engine.pause_counter(floor["c1"], sari, now=now),
        lambda: engine.close_counter(floor["c1"], sari, now=now),
    ):
        with pytest.raises(NotAllowed):
            attempt()
    assert ticket.status == S.CALLED
    # the branch manager may act at any counter of the branch
    engine.start(ticket, manager, now=now)
    assert ticket.status == S.SERVING and ticket.staff_id == budi.id


def test_people_of_another_branch_are_refused(make, session, now, floor):
    b = floor["branch"]
    other = make.branch("ENG02")
    stranger = make.user("tono", branches=[other])
    foreign_ticket = make.ticket(other, now=now)
    ticket = make.ticket(b, now=now)
    for attempt in (
        lambda: engine.open_counter(floor["c3"], stranger, now=now),
        lambda: engine.call_next(floor["c1"], stranger, now=now),
        lambda: engine.call_ticket(ticket, floor["c1"], stranger, now=now),
        lambda: engine.cancel(ticket, stranger, now=now),
    ):
        with pytest.raises(NotAllowed):
            attempt()
    engine.call_next(floor["c1"], floor["budi"], now=now)
    engine.hold(ticket, floor["budi"], now=now)
    with pytest.raises(NotAllowed):
        engine.resume(ticket, stranger, now=now)
    # a ticket of another branch cannot be called here, nor a service of it issued here
    with pytest.raises(NotFound):
        engine.call_ticket(foreign_ticket, floor["c2"], floor["sari"], now=now)
    with pytest.raises(NotFound):
        engine.issue_ticket(b, make.service(other, "teller"), now=now)
    assert foreign_ticket.status == S.WAITING


@pytest.mark.parametrize("role", [Role.CX_AGENT, Role.EXECUTIVE])
def test_roles_that_do_not_work_the_floor_are_refused(make, session, now, floor, role):
    b = floor["branch"]
    person = make.user(role=role, branches=[b])
    ticket = make.ticket(b, now=now)
    with pytest.raises(NotAllowed):
        engine.open_counter(floor["c3"], person, now=now)
    with pytest.raises(NotAllowed):
        engine.cancel(ticket, person, now=now)


def test_an_inactive_account_is_refused(make, session, now, floor):
    budi = floor["budi"]
    budi.active = False
    make.ticket(floor["branch"], now=now)
    with pytest.raises(NotAllowed):
        engine.call_next(floor["c1"], budi, now=now)


# --- cancel and finish -----------------------------------------------------------------------


def test_cancel_from_waiting_called_and_held(make, session, now, floor):
    budi, sari, c1 = floor["budi"], floor["sari"], floor["c1"]
    waiting, called, held = (make.ticket(floor["branch"], now=now) for _ in range(3))
    later = now + timedelta(minutes=3)
    # anyone on the floor may take a waiting or a held ticket out of the queue
    engine.cancel(waiting, sari, now=later, reason="left the branch")
    engine.call_ticket(held, c1, budi, now=now)
    engine.hold(held, budi, now=now)
    engine.cancel(held, sari, now=later)
    # a called ticket belongs to the counter that called it
    engine.call_ticket(called, c1, budi, now=now)
    with pytest.raises(NotAllowed):
        engine.cancel(called, sari, now=later)
    assert called.status == S.CALLED
    engine.cancel(called, budi, now=later)
    session.commit()
    for ticket in (waiting, called, held):
        assert ticket.status == S.CANCELLED
        assert ticket.finished_at == later and ticket.visit.closed_at == later
    # the free-text reason is on the ticket (retention blanks it), not in the journal
    assert journal(session, waiting)[-1].data == {"with_note": True}
    assert waiting.notes == "left the branch"
    assert journal(session, called)[-1].data is None
    assert engine.active_ticket(c1) is None  # the cancelled call no longer occupies Loket 1


def test_cannot_cancel_while_serving_or_when_over(make, session, now, floor):
    budi = floor["budi"]
    ticket = make.ticket(floor["branch"], now=now)
    engine.call_next(floor["c1"], budi, now=now)
    engine.start(ticket, budi, now=now)
    with pytest.raises(IllegalTransition):
        engine.cancel(ticket, budi, now=now)
    engine.finish(ticket, budi, now=now)
    for action in (engine.cancel, engine.finish, engine.start, engine.hold, engine.resume):
        with pytest.raises(IllegalTransition):
            action(ticket, budi, now=now)


def test_finish_with_outcome_and_note(make, session, now, floor):
    budi = floor["budi"]
    ticket = make.ticket(floor["branch"], now=now)
    called, started, finished = (now + timedelta(minutes=m) for m in (2, 3, 9))
    engine.call_next(floor["c1"], budi, now=called)
    with pytest.raises(IllegalTransition):  # not served yet
        engine.finish(ticket, budi, now=finished)
    engine.start(ticket, budi, now=started)
    engine.finish(ticket, budi, now=finished, outcome="cash_deposit", note="Rp 2.500.000")
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert (ticket.status, ticket.outcome_code, ticket.notes) == (
        S.FINISHED,
        "cash_deposit",
        "Rp 2.500.000",
    )
    assert (ticket.called_at, ticket.started_at, ticket.finished_at) == (called, started, finished)
    assert ticket.visit.closed_at == finished
    assert ticket.staff_id == budi.id and ticket.counter_id == floor["c1"].id
    last = journal(session, ticket)[-1]
    assert (last.kind, last.from_status, last.to_status, last.data) == (
        "finish",
        "serving",
        "finished",
        {"outcome": "cash_deposit"},
    )


def test_finish_without_outcome(make, session, now, floor):
    budi = floor["budi"]
    ticket = make.ticket(floor["branch"], now=now)
    engine.call_next(floor["c1"], budi, now=now)
    engine.start(ticket, budi, now=now)
    engine.finish(ticket, budi, now=now)
    session.commit()
    assert (ticket.outcome_code, ticket.notes) == (None, None)
    assert journal(session, ticket)[-1].data is None


# --- transfer --------------------------------------------------------------------------------


def test_transfer_starts_a_new_step_of_the_same_visit(make, session, now, floor):
    budi = floor["budi"]
    b = floor["branch"]
    ticket = make.ticket(b, now=now)
    t = now + timedelta(minutes=4)
    engine.call_next(floor["c1"], budi, now=now)
    engine.start(ticket, budi, now=now)
    nxt = engine.transfer(ticket, budi, now=t, service=make.service(b, "cs"), note="KYC update")
    session.commit()
    assert (ticket.status, ticket.finished_at, ticket.started_at) == (S.TRANSFERRED, t, now)
    assert ticket.visit.closed_at is None  # the visit goes on
    assert (nxt.visit_id, nxt.step, nxt.number, nxt.status) == (
        ticket.visit_id,
        2,
        "A001",
        S.WAITING,
    )
    assert (nxt.previous_id, nxt.handover_note, nxt.sequence) == (ticket.id, "KYC update", None)
    assert nxt.service.code == "cs" and nxt.priority == ticket.priority
    assert nxt.token == ticket.token  # the customer follows the same visit on the phone
    assert kinds(session, ticket)[-1] == "transfer"
    assert kinds(session, nxt) == ["transferred_in"]
    assert journal(session, nxt)[0].data == {"from_ticket": ticket.id}
    assert engine.active_ticket(floor["c1"]) is None


def test_transfer_refusals(make, session, now, floor):
    budi, b = floor["budi"], floor["branch"]
    other = make.branch("ENG03")
    ticket = make.ticket(b, now=now)
    with pytest.raises(IllegalTransition):  # only a called or served ticket moves on
        engine.transfer(ticket, budi, now=now, service=make.service(b, "cs"))
    engine.call_next(floor["c1"], budi, now=now)
    cases = [
        ({}, InvalidInput, "missing_target"),
        ({"service": ticket.service}, InvalidInput, "same_target"),
        ({"service": ticket.service, "counter": floor["c1"]}, InvalidInput, "same_target"),
        ({"service": make.service(other, "cs")}, InvalidInput, "bad_service"),
        ({"counter": make.counter(other, "Loket 1")}, InvalidInput, "bad_counter"),
        # nobody would ever call it at a closed counter
        ({"counter": floor["c3"]}, Conflict, "counter_closed"),
    ]
    for kwargs, error, code in cases:
        with pytest.raises(error) as refused:
            engine.transfer(ticket, budi, now=now, **kwargs)
        assert refused.value.code == code, kwargs
    assert ticket.status == S.CALLED
    assert (
        session.scalar(select(Ticket).where(Ticket.visit_id == ticket.visit_id, Ticket.step == 2))
        is None
    )


# --- the journey log -------------------------------------------------------------------------


def test_the_journey_log_records_every_action_numbered_per_branch(make, session, now, floor):
    b, budi, sari = floor["branch"], floor["budi"], floor["sari"]
    other = make.branch("ENG04")
    other_staff = make.user(branches=[other])
    make.open_counter(make.counter(other, "Loket 1"), other_staff, now=now)
    t = iter(now + timedelta(minutes=i) for i in range(100))

    a = make.ticket(b, now=next(t))
    make.ticket(other, now=next(t))  # the other branch counts on its own
    engine.call_next(floor["c1"], budi, now=next(t))
    engine.recall(a, budi, now=next(t))
    engine.start(a, budi, now=next(t))
    engine.hold(a, budi, now=next(t), note="copy of ID")
    engine.resume(a, budi, now=next(t))
    engine.call_next(floor["c1"], budi, now=next(t))
    nxt = engine.transfer(a, budi, now=next(t), counter=floor["c2"])
    engine.call_next(floor["c2"], sari, now=next(t))
    engine.start(nxt, sari, now=next(t))
    engine.finish(nxt, sari, now=next(t), outcome="done")
    engine.pause_counter(floor["c2"], sari, now=next(t), reason="break")
    engine.close_counter(floor["c1"], budi, now=next(t))
    session.commit()

    log = journal(session, branch=b)
    # the fixture opened two counters first
    assert [(e.kind, e.ticket_id) for e in log] == [
        ("counter_opened", None),
        ("counter_opened", None),
        ("issued", a.id),
        ("called", a.id),
        ("recall", a.id),
        ("start", a.id),
        ("hold", a.id),
        ("resume", a.id),
        ("called", a.id),
        ("transfer", a.id),
        ("transferred_in", nxt.id),
        ("called", nxt.id),
        ("start", nxt.id),
        ("finish", nxt.id),
        ("counter_paused", None),
        ("counter_closed", None),
    ]
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert event_seq(session, b) == len(log)
    assert [e.seq for e in journal(session, branch=other)] == [1, 2]
    times = [e.at for e in log[2:]]
    assert times == sorted(times)
    by_kind = {e.kind: e for e in log}
    assert (by_kind["hold"].from_status, by_kind["hold"].to_status) == ("serving", "held")
    assert by_kind["hold"].data == {"with_note": True}  # the text is on the ticket only
    assert (by_kind["resume"].actor_id, by_kind["resume"].to_status) == (budi.id, "waiting")
    assert by_kind["finish"].counter_id == floor["c2"].id
    assert by_kind["counter_paused"].counter_id == floor["c2"].id
    assert all(e.visit_id == a.visit_id for e in log if e.ticket_id is not None)


def test_each_branch_numbers_and_writes_its_entries_in_one_statement(
    make, session, now, floor, is_postgres
):
    """Entries of two branches in one unit of work: each branch's run of numbers follows its
    last one, in the order the changes were made, with what was recorded. On PostgreSQL the
    branch's row and its entries are one round trip per branch (a data-modifying WITH)."""
    b, budi, sari = floor["branch"], floor["budi"], floor["sari"]
    other = make.branch("ENG05")
    other_staff = make.user(branches=[other])
    make.open_counter(make.counter(other, "Loket 1"), other_staff, now=now)
    a, c = make.ticket(b, now=now), make.ticket(b, now=now)
    x = make.ticket(other, now=now)
    session.commit()
    before, before_other = event_seq(session, b), event_seq(session, other)
    later = now + timedelta(minutes=1)
    engine.call_next(floor["c1"], budi, now=later)
    engine.call_next(floor["c2"], sari, now=later)
    engine.cancel(x, other_staff, now=later, reason="left")
    engine.start(a, budi, now=later + timedelta(seconds=5))
    with statements_sent() as sent:
        session.commit()
    log = journal(session, branch=b)[before:]
    assert [(e.seq, e.kind, e.ticket_id) for e in log] == [
        (before + 1, "called", a.id),
        (before + 2, "called", c.id),
        (before + 3, "start", a.id),
    ]
    assert (log[0].counter_id, log[0].actor_id, log[0].from_status, log[0].to_status) == (
        floor["c1"].id,
        budi.id,
        "waiting",
        "called",
    )
    assert log[2].at == later + timedelta(seconds=5) and log[2].data is None
    (cancelled,) = journal(session, branch=other)[before_other:]
    assert (cancelled.seq, cancelled.kind, cancelled.data) == (
        before_other + 1,
        "cancel",
        {"with_note": True},
    )
    assert event_seq(session, b) == before + 3
    if is_postgres:
        journal_writes = [s for s in sent if "journey_events" in s or "UPDATE branches" in s]
        assert len(journal_writes) == 2, journal_writes
        assert all(s.lstrip().startswith("WITH b AS") for s in journal_writes), journal_writes


def test_a_refused_action_leaves_no_trace_in_the_log(make, session, now, floor):
    ticket = make.ticket(floor["branch"], now=now)
    session.commit()
    before = event_seq(session, floor["branch"])
    assert before == 3  # two counters opened, one ticket issued
    with pytest.raises(IllegalTransition):
        engine.start(ticket, floor["budi"], now=now)
    session.rollback()
    assert event_seq(session, floor["branch"]) == before
    assert len(journal(session, branch=floor["branch"])) == before


def test_journey_events_cannot_be_changed_or_deleted_through_the_orm(make, session, now):
    b = make.branch()
    make.ticket(b, now=now)
    session.commit()
    event = journal(session, branch=b)[0]

    event.kind = "forged"
    with pytest.raises(AppendOnlyViolation):
        session.flush()
    session.rollback()

    session.delete(event)
    with pytest.raises(AppendOnlyViolation):
        session.flush()
    session.rollback()
    assert [e.kind for e in journal(session, branch=b)] == ["issued"]


def test_journey_events_cannot_be_updated_in_sql_either(make, session, now, is_postgres):
    b = make.branch()
    make.ticket(b, now=now)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE journey_events SET kind = 'forged'"))
    session.rollback()
    if is_postgres:  # the PostgreSQL trigger refuses DELETE as well
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("DELETE FROM journey_events"))
        session.rollback()
    assert [e.kind for e in journal(session, branch=b)] == ["issued"]


# --- events after commit ---------------------------------------------------------------------


@pytest.fixture
def heard():
    """What receivers of the `journey` signal hear while the test runs."""
    received = []

    def receiver(_sender, **payload):
        received.append(payload)

    with signal("journey").connected_to(receiver):
        yield received


def test_events_are_delivered_after_commit_only(make, session, now, floor, heard):
    session.commit()
    heard.clear()  # the fixture's own events
    ticket = make.ticket(floor["branch"], now=now)
    engine.call_next(floor["c1"], floor["budi"], now=now)
    session.flush()
    assert heard == []  # flushed is not committed
    session.commit()
    assert [(e["kind"], e["ticket_id"]) for e in heard] == [
        ("issued", ticket.id),
        ("called", ticket.id),
    ]
    seq = event_seq(session, floor["branch"])
    assert [e["seq"] for e in heard] == [seq - 1, seq]
    assert {e["branch_id"] for e in heard} == {floor["branch"].id}
    assert heard[1]["counter_id"] == floor["c1"].id


def test_no_events_for_a_rolled_back_transaction(make, session, now, floor, heard):
    session.commit()
    heard.clear()
    make.ticket(floor["branch"], now=now)
    session.rollback()
    session.commit()  # an empty commit afterwards delivers nothing either
    assert heard == []
    # nor for one whose commit fails
    make.ticket(floor["branch"], now=now)
    # a branch code that is taken: the flush inside the commit fails
    session.add(Branch(code="ENG01", name="Dup", timezone="Asia/Jakarta", country="ID"))
    with pytest.raises(DBAPIError):
        session.commit()
    session.rollback()
    session.commit()
    assert heard == []
    assert session.scalar(select(Ticket.id)) is None


def test_a_failing_receiver_does_not_undo_the_commit(make, session, now, floor, heard):
    def broken(_sender, **_payload):
        raise RuntimeError("push server down")

    session.commit()
    heard.clear()
    with signal("journey").connected_to(broken):
        ticket = make.ticket(floor["branch"], now=now)
        session.commit()
    assert [e["kind"] for e in heard] == ["issued"]
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == S.WAITING
