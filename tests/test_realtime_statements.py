"""How many statements the realtime pusher's one thread sends per journal entry: the branch
with its counters, their staff and links and its services read once, in two statements, and
what was read not read again (`realtime/payloads.py` `_floor`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from queue_app.branches.models import Branch
from queue_app.core.db import read_only
from queue_app.extensions import db
from queue_app.realtime.payloads import change_steps, estimate_steps
from queue_app.tickets import services as engine
from queue_app.tickets.queries import waiting_tickets
from queue_app.waits import live

from .sqlcount import statements_sent

# statements of `change_steps` for a `called` entry with a display, the staff and phones
# listening: 5 for the entry's own pushes (its journal row, the branch with its counters, its
# services, the entry's ticket, the waiting counts), 1 for the places (the waiting tickets;
# the open counters and the sequence are the first step's). Before `_floor`: 10 and 8 here
# (the second step read the branch's sequence again for each phone with an estimate); before
# the second step took the first's open counters: 5 and 2 (it read the branch again)
CALLED_FIRST_STEP = 5
CALLED_SECOND_STEP = 1


def counted(steps):
    """Run the steps as `pushes.Pusher` does (a reader's transaction, ended between the
    steps): the pushes of each step and the statements it sent (this thread's only: an
    after-commit worker may be reading meanwhile)."""
    pushes, statements = [], []
    with statements_sent() as current:
        try:
            if not db.session().in_transaction():
                read_only(db.session)
            for step in steps:
                db.session.rollback()
                read_only(db.session)
                pushes.append(step)
                statements.append(list(current))
                current.clear()
        finally:
            db.session.rollback()
    return pushes, statements


def _called(floor, now, make):
    """Two counters open, six tickets waiting in three queues, Teller 1 calls the first: the
    branch id, the entry's sequence number, the called ticket's id and the waiting ones' ids
    by service code."""
    branch = floor.branch
    for k, code in enumerate(("teller", "teller", "cs", "teller", "loans", "teller")):
        make.ticket(branch, code, now=now + timedelta(seconds=k))
    engine.open_counter(floor.counters["Teller 1"], floor.staff, now=now)
    engine.open_counter(floor.counters["CS 1"], floor.staff2, now=now)
    called = engine.call_next(
        floor.counters["Teller 1"], floor.staff, now=now + timedelta(seconds=60)
    )
    db.session.commit()
    bid, tid = branch.id, called.id
    seq = db.session.scalar(select(Branch.event_seq).where(Branch.id == bid))
    waiting: dict[str, list[int]] = {}
    for t in waiting_tickets(bid):
        waiting.setdefault(t.service.code, []).append(t.id)
    db.session.commit()
    db.session.expunge_all()  # the pusher reads in a session of its own
    return bid, seq, tid, waiting


def test_a_called_entry_is_pushed_in_few_statements(floor, now, make):
    live.clear_cache()
    bid, seq, tid, waiting = _called(floor, now, make)
    phones = {f"ticket:{i}" for ids in waiting.values() for i in ids}
    rooms = {f"display:{bid}", f"staff:{bid}", f"ticket:{tid}", *phones}
    made = live.runs_made
    _pushes, (making, _later) = counted(
        change_steps(db.session, bid, [seq], rooms.__contains__)
    )  # makes the estimate, of the moment of the entry it holds: not read again
    assert live.runs_made == made + 1 and live.last_estimates(bid).seq == seq
    assert not [s for s in making if s.lstrip().startswith("SELECT journey_events.at")], making
    db.session.expunge_all()

    (own, places), (first, second) = counted(
        change_steps(db.session, bid, [seq], rooms.__contains__)
    )

    assert {room for room, _ in own} == {f"display:{bid}", f"staff:{bid}", f"ticket:{tid}"}
    # the teller queue moved; the CS and loans tickets keep their places and hear nothing
    assert [room for room, _ in places] == [f"ticket:{i}" for i in waiting["teller"]]
    teller = [p["ticket"] for _, p in places]
    assert [t["position"] for t in teller] == [1, 2, 3]
    assert all(t["estimated_wait_s"] is not None for t in teller)
    assert len(first) <= CALLED_FIRST_STEP, first
    assert len(second) <= CALLED_SECOND_STEP, "\n".join(second)


def test_an_estimate_push_is_built_in_few_statements(floor, now, make):
    live.clear_cache()
    bid, seq, _tid, waiting = _called(floor, now, make)
    branch = db.session.get(Branch, bid)
    estimate = live.branch_estimates(branch)  # as `Pusher._push_estimates` makes it
    assert estimate.seq == seq
    phones = {f"ticket:{i}" for ids in waiting.values() for i in ids}
    rooms = {f"display:{bid}", f"kiosk:{bid}", f"staff:{bid}", *phones}

    (queues, places), (first, second) = counted(
        estimate_steps(db.session, branch, estimate, rooms.__contains__)
    )

    assert {room for room, _ in queues} == {f"display:{bid}", f"kiosk:{bid}", f"staff:{bid}"}
    assert {room for room, _ in places} == phones
    # the branch with its counters, its services, the waiting counts; the waiting tickets (4
    # and 10 here before `_floor`; 3 and 2 while the second step read the branch again)
    assert len(first) <= 3, first
    assert len(second) <= 1, second


def test_the_estimate_is_keyed_by_the_committed_sequence_not_the_object_in_the_session(
    floor, now, make
):
    """The pushes key the estimate by the branch row they read, never by what an object kept in
    the session says (read afresh: `populate_existing`)."""
    live.clear_cache()
    bid, seq, _tid, _waiting = _called(floor, now, make)
    branch = db.session.get(Branch, bid)
    set_committed_value(branch, "event_seq", seq - 1)  # as an object kept across commits

    list(change_steps(db.session, bid, [seq], {f"display:{bid}"}.__contains__))

    assert live.last_estimates(bid).seq == seq


def test_a_counter_screen_snapshot_reads_nothing_per_counter_or_ticket(floor, now, make):
    """What a counter screen gets on (re)connecting: the counters with their staff and
    services, their tickets and the waiting list with each customer's masked name, in a fixed
    number of statements however many counters and tickets (after a Redis restart every
    counter screen of the network asks at once)."""
    from queue_app.customers.models import Customer
    from queue_app.realtime.payloads import staff_snapshot

    live.clear_cache()
    branch = floor.branch
    names = ("Siti Rahmawati", "Budi Santoso", "Dewi Lestari", "Agus Wijaya", "Rina Putri")
    for k, name in enumerate(names):
        customer = Customer(name=name, phone=f"+62812000000{k}")
        db.session.add(customer)
        code = ("teller", "cs")[k % 2]
        make.ticket(branch, code, now=now + timedelta(seconds=k), customer=customer)
    engine.open_counter(floor.counters["Teller 1"], floor.staff, now=now)
    engine.open_counter(floor.counters["CS 1"], floor.staff2, now=now)
    engine.call_next(floor.counters["Teller 1"], floor.staff, now=now + timedelta(seconds=60))
    engine.call_next(floor.counters["CS 1"], floor.staff2, now=now + timedelta(seconds=60))
    db.session.commit()
    bid = branch.id
    live.branch_estimates(db.session.get(Branch, bid))  # the estimate is not what is counted
    db.session.commit()
    db.session.expunge_all()  # as the handler's session finds it: nothing of the branch in it

    found = db.session.get(Branch, bid)  # the socket handler's lookup
    with statements_sent() as sent:
        snapshot = staff_snapshot(db.session, found)
    db.session.rollback()

    served = [c for c in snapshot["counters"] if c["ticket"] is not None]
    assert [c["staff"] is not None for c in served] == [True, True]
    assert {c["ticket"]["customer"]["name"] for c in served} == {"Si•• R••••••••", "Bu•• S••••••"}
    assert len(snapshot["waiting"]) == 3
    assert all(w["customer"]["name"] for w in snapshot["waiting"])
    assert [c["services"] for c in snapshot["counters"]][:1] == [["teller"]]
    # the branch's sequence; the counters with their staff and services; their tickets with
    # visits and customers; the waiting tickets with theirs; the waiting counts; the services
    # (24 statements here before: one per counter, its staff, each ticket's visit and customer)
    assert len(sent) <= 6, "\n".join(sent)
