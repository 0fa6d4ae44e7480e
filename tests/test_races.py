"""Real races: threads, each with its own application context, session and connection.

Every thread waits at a barrier so they all start at the same instant. Setup data is
committed before the threads start, and the main thread stays out of the database while they
run (on SQLite every transaction is `BEGIN IMMEDIATE`, so a transaction left open in the main
thread would hold the write lock). An exception in a thread is collected and fails the test.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from queue_app.accounts.models import User
from queue_app.branches.models import Branch, Counter, Service
from queue_app.core.errors import DomainError, IllegalTransition
from queue_app.core.events import signal
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.tickets import fastpath
from queue_app.tickets import services as engine
from queue_app.tickets.models import JourneyEvent, Ticket, TicketSequence, TicketStatus
from queue_app.waits import live

JOIN_TIMEOUT_S = 120


def run_threads(app, target, args_per_thread):
    """Run `target(*args)` once per args tuple, each in its own thread and app context.

    Returns the results in thread order; fails the test if any thread raised or hung.
    """
    barrier = threading.Barrier(len(args_per_thread), timeout=30)
    results: list = [None] * len(args_per_thread)
    errors: list[tuple[int, BaseException]] = []

    def worker(index, args):
        try:
            with app.app_context():
                barrier.wait()
                results[index] = target(*args)
        except BaseException as exc:  # any failure, even an assertion, fails the test
            errors.append((index, exc))
            barrier.abort()

    threads = [
        threading.Thread(target=worker, args=(i, args), name=f"race-{i}")
        for i, args in enumerate(args_per_thread)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
    assert not [t.name for t in threads if t.is_alive()], "a thread hung"
    assert not errors, f"threads failed: {errors!r}"
    return results


# --- 8 kiosks issue 400 tickets --------------------------------------------------------------


def test_concurrent_issuing_gives_one_unbroken_sequence(app, make, session, now):
    b = make.branch()
    branch_id, service_id = b.id, make.service(b, "teller").id
    session.commit()

    workers, per_worker = 8, 50

    def kiosk(worker_no):
        numbers = []
        for i in range(per_worker):
            branch = db.session.get(Branch, branch_id)
            service = db.session.get(Service, service_id)
            moment = now + timedelta(milliseconds=worker_no * per_worker + i)
            ticket = engine.issue_ticket(branch, service, now=moment)
            numbers.append(ticket.number)
            db.session.commit()  # each ticket on its own, as a kiosk would
        return numbers

    per_thread = run_threads(app, kiosk, [(w,) for w in range(workers)])
    session.expire_all()  # read back what the other connections wrote

    issued = [n for numbers in per_thread for n in numbers]
    assert len(issued) == workers * per_worker
    assert len(set(issued)) == len(issued), [n for n, c in Tally(issued).items() if c > 1]
    assert sorted(issued) == [f"A{i:03d}" for i in range(1, 401)]
    for numbers in per_thread:  # each kiosk saw its own numbers grow
        assert numbers == sorted(numbers)

    day = b.business_day(now)
    rows = session.execute(
        select(Ticket.sequence, Ticket.number).where(
            Ticket.service_id == service_id, Ticket.business_day == day
        )
    ).all()
    assert len(rows) == 400
    assert sorted(r.sequence for r in rows) == list(range(1, 401))
    assert {r.number for r in rows} == set(issued)
    assert (
        session.scalar(
            select(TicketSequence.last_value).where(
                TicketSequence.service_id == service_id, TicketSequence.business_day == day
            )
        )
        == 400
    )
    # every issue was journaled, with the branch's event numbers 1..400 used once each
    seqs = session.scalars(
        select(JourneyEvent.seq)
        .where(JourneyEvent.branch_id == branch_id)
        .order_by(JourneyEvent.seq)
    ).all()
    assert seqs == list(range(1, 401))


# --- 4 counters call 200 tickets -------------------------------------------------------------


def test_concurrent_call_next_calls_each_ticket_once(app, make, session, now):
    names = [f"Loket {i}" for i in range(1, 5)]
    b = make.branch(counters=[(name, ["teller"]) for name in names])
    staff_ids, counter_ids = [], []
    for name in names:
        staff = make.user(branches=[b])
        counter = make.counter(b, name)
        make.open_counter(counter, staff, now=now)
        staff_ids.append(staff.id)
        counter_ids.append(counter.id)
    ticket_ids = [make.ticket(b, now=now + timedelta(seconds=i)).id for i in range(200)]
    branch_id = b.id
    session.commit()

    later = now + timedelta(hours=1)

    def counter_loop(counter_id, staff_id):
        called = []
        while True:
            counter = db.session.get(Counter, counter_id)
            staff = db.session.get(User, staff_id)
            ticket = engine.call_next(counter, staff, now=later)
            if ticket is None:
                db.session.commit()
                return called
            called.append(ticket.id)
            engine.start(ticket, staff, now=later)
            engine.finish(ticket, staff, now=later, outcome="served")
            db.session.commit()

    per_thread = run_threads(app, counter_loop, list(zip(counter_ids, staff_ids, strict=True)))
    session.expire_all()

    everything = [i for ids in per_thread for i in ids]
    duplicates = [i for i, c in Tally(everything).items() if c > 1]
    assert not duplicates, f"called more than once: {duplicates}"
    assert set(everything) == set(ticket_ids)
    assert len(everything) == 200
    for ids in per_thread:  # each counter took the queue in order of arrival
        assert ids == sorted(ids)

    statuses = Tally(
        session.scalars(select(Ticket.status).where(Ticket.branch_id == branch_id)).all()
    )
    assert statuses == {TicketStatus.FINISHED: 200}
    called_events = Tally(
        session.scalars(
            select(JourneyEvent.ticket_id).where(
                JourneyEvent.branch_id == branch_id, JourneyEvent.kind == "called"
            )
        ).all()
    )
    assert set(called_events) == set(ticket_ids)
    assert set(called_events.values()) == {1}
    # the ticket's counter is the one that called it
    by_counter = dict(
        session.execute(
            select(Ticket.id, Ticket.counter_id).where(Ticket.branch_id == branch_id)
        ).all()
    )
    for counter_id, ids in zip(counter_ids, per_thread, strict=True):
        assert all(by_counter[i] == counter_id for i in ids)
    seqs = session.scalars(
        select(JourneyEvent.seq)
        .where(JourneyEvent.branch_id == branch_id)
        .order_by(JourneyEvent.seq)
    ).all()
    assert seqs == list(range(1, len(seqs) + 1))


# --- two counters call the same ticket -------------------------------------------------------


def _journal_count(session, ticket_id):
    return session.scalar(
        select(func.count()).select_from(JourneyEvent).where(JourneyEvent.ticket_id == ticket_id)
    )


def test_two_counters_calling_the_same_ticket(app, make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    players = []
    for name in ("Loket 1", "Loket 2"):
        staff = make.user(branches=[b])
        counter = make.counter(b, name)
        make.open_counter(counter, staff, now=now)
        players.append((counter.id, staff.id))
    branch_id = b.id
    session.commit()

    def contender(counter_id, staff_id, ticket_id, moment):
        ticket = db.session.get(Ticket, ticket_id)
        counter = db.session.get(Counter, counter_id)
        staff = db.session.get(User, staff_id)
        try:
            engine.call_ticket(ticket, counter, staff, now=moment)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return exc
        return "won"

    wins = Tally()
    for round_no in range(8):  # several rounds, so the race really happens both ways
        moment = now + timedelta(minutes=round_no)
        ticket_id = make.ticket(b, now=moment).id
        session.commit()
        events_before = session.scalar(select(Branch.event_seq).where(Branch.id == branch_id))
        session.commit()

        outcomes = run_threads(app, contender, [(c, s, ticket_id, moment) for c, s in players])
        session.expire_all()

        winners = [i for i, o in enumerate(outcomes) if o == "won"]
        losers = [o for o in outcomes if o != "won"]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1 and isinstance(losers[0], IllegalTransition), outcomes
        winner_counter, winner_staff = players[winners[0]]
        loser_counter, _ = players[1 - winners[0]]
        wins[winners[0]] += 1

        ticket = session.get(Ticket, ticket_id)
        assert ticket.status == TicketStatus.CALLED
        assert ticket.counter_id == winner_counter and ticket.staff_id == winner_staff
        # nothing of the loser's attempt was written
        assert _journal_count(session, ticket_id) == 2  # issued, called once
        assert session.scalar(select(Branch.event_seq).where(Branch.id == branch_id)) == (
            events_before + 1
        )
        assert engine.active_ticket(session.get(Counter, loser_counter)) is None
        # free the winner's counter for the next round
        staff = session.get(User, winner_staff)
        engine.start(ticket, staff, now=moment)
        engine.finish(ticket, staff, now=moment)
        session.commit()
    assert sum(wins.values()) == 8


# --- the one-statement path (PostgreSQL): 8 kiosks, three ways of issuing at once -------------


def test_concurrent_issuing_through_the_one_statement_path(app, make, session, now, is_postgres):
    """Kiosks issue at the same instant through the lookup-free path (the statement is its
    own transaction), the one-statement path inside a transaction (`issue_ticket`), and the
    ORM path (a ticket with a customer), for two services of one branch: every number is
    given once and each service's numbers run 1..n; every ticket has one journal entry, the
    branch's event numbers are 1..n without a gap, and one event per entry was published."""
    if not is_postgres:
        pytest.skip("the one-statement path is PostgreSQL's")
    fastpath.clear_cache()
    b = make.branch()
    branch_id, branch_code = b.id, b.code
    service_ids = {code: make.service(b, code).id for code in ("teller", "cs")}
    customer = Customer(phone="+6281234567890", name="Pelanggan")
    session.add(customer)
    session.commit()
    customer_id = customer.id

    published = []
    lock = threading.Lock()

    def receiver(_sender, **payload):
        with lock:
            published.append(payload)

    signal("journey").connect(receiver)
    workers, per_worker = 8, 45

    def kiosk(worker_no):
        numbers = []
        for i in range(per_worker):
            code = ("teller", "cs")[i % 2]
            moment = now + timedelta(milliseconds=worker_no * per_worker + i)
            way = (worker_no + i) % 3
            if way == 0:
                issued = engine.issue_plain(branch_code, code, now=moment, locale="id")
                assert issued is not None
                number = issued.number
            else:
                branch = db.session.get(Branch, branch_id)
                service = db.session.get(Service, service_ids[code])
                who = db.session.get(Customer, customer_id) if way == 2 else None
                number = engine.issue_ticket(branch, service, now=moment, customer=who).number
            db.session.commit()
            numbers.append((code, number))
        return numbers

    # the estimator at production's pace: one estimate stands for the interval (pending
    # changes), so the lookup-free path quotes it without reading anything (waits/live.py)
    interval = app.config["EWT_MIN_INTERVAL_S"]
    app.config["EWT_MIN_INTERVAL_S"] = 3600.0
    live.branch_estimates(b)
    try:
        per_thread = run_threads(app, kiosk, [(w,) for w in range(workers)])
    finally:
        signal("journey").disconnect(receiver)
        app.config["EWT_MIN_INTERVAL_S"] = interval
    session.expire_all()

    total = workers * per_worker
    issued = [n for numbers in per_thread for n in numbers]
    assert len(issued) == total
    assert len(set(issued)) == total, [n for n, c in Tally(issued).items() if c > 1]
    day = b.business_day(now)
    for code, service_id in service_ids.items():
        rows = session.execute(
            select(Ticket.sequence, Ticket.number).where(
                Ticket.service_id == service_id, Ticket.business_day == day
            )
        ).all()
        n = sum(1 for c, _ in issued if c == code)
        assert sorted(r.sequence for r in rows) == list(range(1, n + 1))
        assert {r.number for r in rows} == {num for c, num in issued if c == code}
        assert (
            session.scalar(
                select(TicketSequence.last_value).where(
                    TicketSequence.service_id == service_id, TicketSequence.business_day == day
                )
            )
            == n
        )
    seqs = session.scalars(
        select(JourneyEvent.seq).where(JourneyEvent.branch_id == branch_id)
    ).all()
    assert sorted(seqs) == list(range(1, total + 1))
    assert session.scalar(select(Branch.event_seq).where(Branch.id == branch_id)) == total
    assert (
        session.scalar(
            select(func.count())
            .select_from(JourneyEvent)
            .where(JourneyEvent.branch_id == branch_id, JourneyEvent.kind == "issued")
        )
        == total
    )
    assert sorted(p["seq"] for p in published if p["branch_id"] == branch_id) == list(
        range(1, total + 1)
    )
