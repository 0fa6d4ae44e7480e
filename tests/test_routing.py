"""Routing: which ticket a counter calls next.

First the pure ordering rules of queue_app/routing/policy.py on plain data, then the same
rules through `call_next` on the database, where competence, the branch's policy, appointments,
the interleave cycle, hold/resume, transfers and closing a counter come into play.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_app.accounts.models import Role
from queue_app.branches.models import PriorityPolicy
from queue_app.core.errors import InvalidInput
from queue_app.routing import policy as routing
from queue_app.routing.policy import Candidate, Policy
from queue_app.tickets import services as engine
from queue_app.tickets.models import Priority, Source, TicketStatus

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 09:00 in Jakarta
TELLER, CS, LOANS = 10, 20, 30


def cand(id, *, service=TELLER, rank=0, at=None, due=None, target=None) -> Candidate:
    """A candidate that arrived `at` minutes after T0 (default: its id)."""
    return Candidate(
        id=id,
        service_id=service,
        rank=rank,
        queue_since=T0 + timedelta(minutes=id if at is None else at),
        appointment_due_at=due,
        target_counter_id=target,
    )


STRICT = Policy()


def ids(candidates, policy=STRICT, *, counter=1, services=(TELLER,), now=None, pos=0):
    ordered = routing.order(
        list(candidates),
        counter_id=counter,
        service_order=list(services),
        policy=policy,
        now=now or T0 + timedelta(hours=1),
        interleave_pos=pos,
    )
    return [c.id for c in ordered]


# --- strict ----------------------------------------------------------------------------------


def test_strict_takes_the_higher_class_first_then_arrival():
    tickets = [cand(1), cand(2, rank=2), cand(3, rank=1), cand(4), cand(5, rank=1, at=0)]
    assert ids(tickets) == [2, 5, 3, 1, 4]


def test_arrival_ties_are_broken_by_id():
    assert ids([cand(7, at=1), cand(3, at=1), cand(5, at=1)]) == [3, 5, 7]


def test_the_counters_service_order_comes_before_class_and_arrival():
    tickets = [
        cand(1, service=TELLER),
        cand(2, service=CS),
        cand(3, service=TELLER, rank=2),
        cand(4, service=CS, rank=1),
        cand(5, service=LOANS, rank=2),  # not served by this counter
    ]
    assert ids(tickets, services=[CS, TELLER]) == [4, 2, 3, 1]
    assert ids(tickets, services=[TELLER, CS]) == [3, 1, 4, 2]
    assert ids(tickets, services=[LOANS]) == [5]
    assert ids(tickets, services=[]) == []


# --- tickets sent to one counter -------------------------------------------------------------


def test_targeted_tickets_come_first_and_only_at_their_counter():
    tickets = [
        cand(1, rank=2),
        cand(2, target=7, at=30),
        cand(3, service=LOANS, target=7, at=20),  # a service counter 7 does not serve
        cand(4, target=8),
    ]
    assert ids(tickets, counter=7) == [3, 2, 1]
    assert ids(tickets, counter=8) == [4, 1]
    assert ids(tickets, counter=9) == [1]


def test_targeted_tickets_come_before_due_appointments():
    now = T0 + timedelta(hours=1)
    tickets = [cand(1, due=now), cand(2, target=1, at=50)]
    assert ids(tickets, now=now) == [2, 1]


# --- appointments ----------------------------------------------------------------------------


def test_appointments_go_first_only_inside_their_window():
    policy = Policy(appointment_early_s=300, appointment_grace_s=900)
    now = T0 + timedelta(hours=1)
    s = timedelta(seconds=1)
    tickets = [
        cand(1, rank=2),  # a VIP walk-in, the oldest of all
        cand(2, due=now + timedelta(minutes=5)),  # just inside "early"
        cand(3, due=now + timedelta(minutes=5) + s),  # not yet due
        cand(4, due=now - timedelta(minutes=15)),  # just inside the grace
        cand(5, due=now - timedelta(minutes=15) - s),  # too late: an ordinary ticket now
        cand(6, due=now),
    ]
    # due ones by appointment time, then the rest under strict: VIP, then by arrival
    assert ids(tickets, policy, now=now) == [4, 6, 2, 1, 3, 5]


def test_an_appointment_is_ordinary_before_and_after_its_window():
    policy = Policy(appointment_early_s=0, appointment_grace_s=0)
    due = T0 + timedelta(hours=1)
    tickets = [cand(1, at=0), cand(2, at=10, due=due), cand(3, at=20)]
    assert ids(tickets, policy, now=due - timedelta(minutes=1)) == [1, 2, 3]
    assert ids(tickets, policy, now=due) == [2, 1, 3]
    assert ids(tickets, policy, now=due + timedelta(minutes=1)) == [1, 2, 3]


def test_due_appointments_of_services_the_counter_does_not_serve_stay_hidden():
    now = T0 + timedelta(hours=1)
    assert ids([cand(1, service=LOANS, due=now), cand(2)], now=now) == [2]


# --- interleave N:M --------------------------------------------------------------------------


def test_interleave_turns():
    policy = Policy(kind=PriorityPolicy.INTERLEAVE, interleave_priority=1, interleave_normal=2)
    assert [routing.interleave_turn_is_priority(policy, p) for p in range(6)] == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    policy = Policy(kind=PriorityPolicy.INTERLEAVE, interleave_priority=2, interleave_normal=1)
    assert [routing.interleave_turn_is_priority(policy, p) for p in range(6)] == [
        True,
        True,
        False,
        True,
        True,
        False,
    ]


def test_interleave_advances_only_when_the_call_matched_the_turn():
    policy = Policy(kind=PriorityPolicy.INTERLEAVE, interleave_priority=1, interleave_normal=2)
    assert routing.next_interleave_pos(policy, 0, 1) == 1  # priority turn, priority called
    assert routing.next_interleave_pos(policy, 0, 0) == 0  # nobody of priority waited
    assert routing.next_interleave_pos(policy, 1, 0) == 2
    assert routing.next_interleave_pos(policy, 1, 2) == 1  # no normal ticket waited
    assert routing.next_interleave_pos(policy, 2, 0) == 0  # the cycle wraps
    assert routing.next_interleave_pos(policy, 5, 0) == 0  # positions are kept in the cycle


def _serve_all(tickets, policy, services=(TELLER,)):
    """Call the first ticket of the order until none is left; the ranks in call order."""
    waiting, pos, called = list(tickets), 0, []
    while waiting:
        first = routing.order(
            waiting,
            counter_id=1,
            service_order=list(services),
            policy=policy,
            now=T0 + timedelta(hours=2),
            interleave_pos=pos,
        )[0]
        called.append(first)
        waiting.remove(first)
        pos = routing.next_interleave_pos(policy, pos, first.rank)
    return called


@pytest.mark.parametrize(
    ("n", "m", "expected"),
    [
        (1, 2, "PNNPNNPNNNN"),
        (2, 1, "PPNPNNNNNNN"),
        (1, 1, "PNPNPNNNNNN"),
    ],
)
def test_interleave_cycle_of_a_counter(n, m, expected):
    policy = Policy(kind=PriorityPolicy.INTERLEAVE, interleave_priority=n, interleave_normal=m)
    # normal customers came first; three priority customers came later
    tickets = [cand(i) for i in range(1, 9)] + [cand(i, rank=1) for i in range(20, 23)]
    called = _serve_all(tickets, policy)
    assert "".join("P" if c.rank else "N" for c in called) == expected
    # within each kind, arrival order holds
    assert [c.id for c in called if c.rank] == [20, 21, 22]
    assert [c.id for c in called if not c.rank] == list(range(1, 9))


def test_interleave_applies_to_the_first_service_with_tickets_only():
    policy = Policy(kind=PriorityPolicy.INTERLEAVE, interleave_priority=1, interleave_normal=2)
    tickets = [
        cand(1, service=CS),
        cand(2, service=CS, rank=1),
        cand(3, service=TELLER, rank=1),
        cand(4, service=TELLER),
    ]
    # the turn decides within teller; the cs tickets behind stay in strict order
    assert ids(tickets, policy, services=[TELLER, CS], pos=0) == [3, 4, 2, 1]
    assert ids(tickets, policy, services=[TELLER, CS], pos=1) == [4, 3, 2, 1]
    # with no teller ticket left, cs is the first service and the turn applies there
    assert ids(tickets[:2], policy, services=[TELLER, CS], pos=1) == [1, 2]


# --- aging -----------------------------------------------------------------------------------


def test_aging_adds_a_head_start_per_class():
    policy = Policy(kind=PriorityPolicy.AGING, aging_boost_s=600)
    now = T0 + timedelta(minutes=60)

    def at(minutes_waited):
        return 60 - minutes_waited

    # a normal customer waiting 11 minutes beats an elderly one who just came (0 + 10 min)
    assert ids([cand(1, at=at(11)), cand(2, rank=1, at=at(0))], policy, now=now) == [1, 2]
    # but not one waiting 9 minutes
    assert ids([cand(1, at=at(9)), cand(2, rank=1, at=at(0))], policy, now=now) == [2, 1]
    # a VIP (rank 2) starts 20 minutes ahead
    assert ids([cand(1, at=at(19)), cand(2, rank=2, at=at(0))], policy, now=now) == [2, 1]
    assert ids([cand(1, at=at(21)), cand(2, rank=2, at=at(0))], policy, now=now) == [1, 2]
    # the counter's service order still comes first
    tickets = [cand(1, service=CS, rank=2, at=0), cand(2, service=TELLER, at=59)]
    assert ids(tickets, policy, services=[TELLER, CS], now=now) == [2, 1]


def test_aging_with_equal_classes_is_arrival_order():
    policy = Policy(kind=PriorityPolicy.AGING)
    assert ids([cand(3, at=5), cand(1, at=9), cand(2, at=1)], policy) == [2, 3, 1]


# --- through call_next on the database -------------------------------------------------------


def _serve(ticket, staff, now):
    engine.start(ticket, staff, now=now)
    engine.finish(ticket, staff, now=now)


def test_staff_get_only_services_they_are_competent_in(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller", "cs"]), ("Loket 2", ["loans"])])
    cs_only = make.user("ani", branches=[b], services=[make.service(b, "cs")])
    loans_only = make.user("eko", branches=[b], services=[make.service(b, "loans")])
    teller = make.ticket(b, "teller", now=now)
    cs = make.ticket(b, "cs", now=now + timedelta(minutes=1))
    make.ticket(b, "loans", now=now)
    counter = make.counter(b, "Loket 1")
    make.open_counter(counter, cs_only, now=now)
    later = now + timedelta(minutes=5)

    # the older teller ticket is skipped: ani does not do teller work
    assert engine.call_next(counter, cs_only, now=later).id == cs.id
    _serve(cs, cs_only, later)
    assert engine.call_next(counter, cs_only, now=later) is None
    # eko knows loans, but Loket 1 does not serve it
    engine.close_counter(counter, cs_only, now=later)
    make.open_counter(counter, loans_only, now=later)
    assert engine.call_next(counter, loans_only, now=later) is None
    # a branch manager stands in for anyone
    engine.close_counter(counter, loans_only, now=later)
    manager = make.user("bu_sri", role=Role.BRANCH_MANAGER, branches=[b], services=[])
    make.open_counter(counter, manager, now=later)
    assert engine.call_next(counter, manager, now=later).id == teller.id
    session.commit()


def test_competence_is_the_signed_in_staff_members_not_the_supervisors(make, session, now):
    """A manager pressing "call next" at ani's counter calls what ani can serve."""
    b = make.branch(counters=[("Loket 1", ["teller", "cs"])])
    ani = make.user("ani", branches=[b], services=[make.service(b, "cs")])
    manager = make.user("bu_sri", role=Role.BRANCH_MANAGER, branches=[b])
    make.ticket(b, "teller", now=now)
    cs = make.ticket(b, "cs", now=now + timedelta(minutes=1))
    counter = make.counter(b, "Loket 1")
    make.open_counter(counter, ani, now=now)
    called = engine.call_next(counter, manager, now=now + timedelta(minutes=2))
    assert called.id == cs.id and called.staff_id == ani.id


def _policy_branch(make, now, policy):
    """A normal customer waiting 20 minutes and an elderly one waiting 5 minutes."""
    b = make.branch(policy=policy, aging_boost_s=600, interleave_priority=1, interleave_normal=1)
    staff = make.user(branches=[b])
    counter = make.counter(b, "Loket 1")
    make.open_counter(counter, staff, now=now)
    normal = make.ticket(b, now=now)
    elderly = make.ticket(b, now=now + timedelta(minutes=15), priority=Priority.ELDERLY)
    return counter, staff, normal, elderly


@pytest.mark.parametrize(
    ("policy", "first", "second"),
    [
        (PriorityPolicy.STRICT, "elderly", "normal"),
        # 20 min waited against 5 min + 10 min head start
        (PriorityPolicy.AGING, "normal", "elderly"),
        (PriorityPolicy.INTERLEAVE, "elderly", "normal"),
    ],
)
def test_each_branch_has_its_own_priority_policy(make, session, now, policy, first, second):
    counter, staff, normal, elderly = _policy_branch(make, now, policy)
    by_name = {"normal": normal.id, "elderly": elderly.id}
    later = now + timedelta(minutes=20)
    called = engine.call_next(counter, staff, now=later)
    assert called.id == by_name[first]
    _serve(called, staff, later)
    assert engine.call_next(counter, staff, now=later).id == by_name[second]


def test_policies_of_two_branches_do_not_mix(make, session, now):
    strict = _policy_branch(make, now, PriorityPolicy.STRICT)
    aging = _policy_branch(make, now, PriorityPolicy.AGING)
    later = now + timedelta(minutes=20)
    assert engine.call_next(strict[0], strict[1], now=later).id == strict[3].id
    assert engine.call_next(aging[0], aging[1], now=later).id == aging[2].id


def test_appointment_tickets_go_first_inside_their_window(make, session, now):
    b = make.branch(appointment_early_s=300, appointment_grace_s=900)
    staff = make.user(branches=[b])
    counter = make.counter(b, "Loket 1")
    make.open_counter(counter, staff, now=now)
    due = now + timedelta(minutes=30)
    walk_ins = [make.ticket(b, now=now + timedelta(minutes=i)) for i in range(3)]
    vip = make.ticket(b, now=now + timedelta(minutes=3), priority=Priority.VIP)
    appointment = make.ticket(
        b, now=now + timedelta(minutes=10), source=Source.APPOINTMENT, appointment_due_at=due
    )
    late = make.ticket(
        b,
        now=now + timedelta(minutes=11),
        source=Source.APPOINTMENT,
        appointment_due_at=now - timedelta(minutes=20),  # missed its window long ago
    )

    # 10 minutes before the appointment: not due yet, the VIP goes first
    t = now + timedelta(minutes=20)
    assert engine.call_next(counter, staff, now=t).id == vip.id
    _serve(vip, staff, t)
    # 5 minutes before: due, ahead of everyone who walked in earlier
    t = due - timedelta(minutes=5)
    assert engine.call_next(counter, staff, now=t).id == appointment.id
    _serve(appointment, staff, t)
    # the late appointment queues like anyone, by its check-in time
    order = []
    while (called := engine.call_next(counter, staff, now=t)) is not None:
        order.append(called.id)
        _serve(called, staff, t)
    assert order == [w.id for w in walk_ins] + [late.id]
    session.commit()


def test_an_appointment_ticket_needs_its_appointment_time(make, session, now):
    b = make.branch()
    with pytest.raises(InvalidInput):
        make.ticket(b, now=now, source=Source.APPOINTMENT)


def test_interleave_cycle_advances_across_calls_per_counter(make, session, now):
    b = make.branch(
        policy=PriorityPolicy.INTERLEAVE,
        interleave_priority=1,
        interleave_normal=2,
        counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])],
    )
    one, two = make.user(branches=[b]), make.user(branches=[b])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    make.open_counter(c1, one, now=now)
    make.open_counter(c2, two, now=now)
    for i in range(6):
        make.ticket(b, now=now + timedelta(minutes=i))
    for i in range(6, 9):
        make.ticket(b, now=now + timedelta(minutes=i), priority=Priority.DISABLED)
    session.commit()

    later = now + timedelta(minutes=30)
    kinds = []
    for _ in range(6):  # Loket 1 alone, one committed call at a time
        called = engine.call_next(c1, one, now=later)
        kinds.append("P" if called.priority != Priority.NORMAL else "N")
        _serve(called, one, later)
        session.commit()
    assert "".join(kinds) == "PNNPNN"
    session.refresh(c1)
    assert c1.interleave_pos == 0
    # Loket 2 has its own cycle and starts with a priority turn
    called = engine.call_next(c2, two, now=later)
    assert called.priority == Priority.DISABLED
    session.commit()
    session.refresh(c2)
    assert (c1.interleave_pos, c2.interleave_pos) == (0, 1)


def test_hold_and_resume_route_back_to_the_holding_counter(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    one, two = make.user(branches=[b]), make.user(branches=[b])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    make.open_counter(c1, one, now=now)
    make.open_counter(c2, two, now=now)
    held = make.ticket(b, now=now)
    second = make.ticket(b, now=now + timedelta(minutes=1))
    t = now + timedelta(minutes=2)

    assert engine.call_next(c1, one, now=t).id == held.id
    engine.start(held, one, now=t)
    engine.hold(held, one, now=t, note="fetching the passbook")
    # while held, nobody calls it; Loket 1 serves the next customer meanwhile
    assert engine.call_next(c1, one, now=t).id == second.id
    engine.resume(held, one, now=t)
    assert (held.status, held.target_counter_id, held.counter_id) == (
        TicketStatus.WAITING,
        c1.id,
        None,
    )
    vip = make.ticket(b, now=t, priority=Priority.VIP)
    session.commit()
    # Loket 2 does not see the resumed ticket, and gets the VIP
    assert engine.call_next(c2, two, now=t).id == vip.id
    _serve(vip, two, t)
    assert engine.call_next(c2, two, now=t) is None
    # Loket 1 gets it back first, ahead of a new VIP
    make.ticket(b, now=t, priority=Priority.VIP)
    _serve(second, one, t)
    t2 = t + timedelta(minutes=7)
    again = engine.call_next(c1, one, now=t2)
    assert again.id == held.id and again.target_counter_id is None
    assert (again.called_at, again.last_called_at) == (t, t2)  # the wait ended at the first
    session.commit()


def test_transfer_to_a_counter(make, session, now):
    b = make.branch(
        counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"]), ("Loket 3", ["loans"])]
    )
    one, two, three = (make.user(branches=[b]) for _ in range(3))
    c1, c2, c3 = (make.counter(b, f"Loket {i}") for i in (1, 2, 3))
    for c, u in ((c1, one), (c2, two), (c3, three)):
        make.open_counter(c, u, now=now)
    ticket = make.ticket(b, now=now)
    loans = make.ticket(b, "loans", now=now)
    t = now + timedelta(minutes=5)
    engine.call_next(c1, one, now=t)
    nxt = engine.transfer(ticket, one, now=t, counter=c3, note="needs the supervisor's stamp")
    session.commit()

    assert (nxt.service_id, nxt.target_counter_id) == (ticket.service_id, c3.id)
    assert nxt.handover_note == "needs the supervisor's stamp"
    # other teller counters do not see it; Loket 3 takes it first although it serves loans
    assert engine.call_next(c2, two, now=t) is None
    assert engine.call_next(c3, three, now=t).id == nxt.id
    _serve(nxt, three, t)
    assert engine.call_next(c3, three, now=t).id == loans.id


@pytest.mark.parametrize(
    ("keep_place", "branch_default", "expected"),
    [
        (True, False, ["transferred", "b", "c"]),
        (False, True, ["b", "c", "transferred"]),
        (None, True, ["transferred", "b", "c"]),
        (None, False, ["b", "c", "transferred"]),
    ],
)
def test_transfer_keeps_its_place_by_original_arrival_or_goes_to_the_back(
    make, session, now, keep_place, branch_default, expected
):
    b = make.branch(
        counters=[("Loket 1", ["teller"]), ("Loket 2", ["cs"])],
        transfer_keeps_place=branch_default,
    )
    one, two = make.user(branches=[b]), make.user(branches=[b])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    make.open_counter(c1, one, now=now)
    make.open_counter(c2, two, now=now)
    first = make.ticket(b, "teller", now=now)
    names = {
        make.ticket(b, "cs", now=now + timedelta(minutes=1)).id: "b",
        make.ticket(b, "cs", now=now + timedelta(minutes=2)).id: "c",
    }
    t = now + timedelta(minutes=10)
    engine.call_next(c1, one, now=t)
    nxt = engine.transfer(first, one, now=t, service=make.service(b, "cs"), keep_place=keep_place)
    names[nxt.id] = "transferred"
    assert nxt.queue_since == (now if expected[0] == "transferred" else t)
    order = []
    while (called := engine.call_next(c2, two, now=t)) is not None:
        order.append(names[called.id])
        _serve(called, two, t)
    assert order == expected
    session.commit()


def test_closing_a_counter_releases_the_tickets_sent_to_it(make, session, now):
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    one, two = make.user(branches=[b]), make.user(branches=[b])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    make.open_counter(c1, one, now=now)
    make.open_counter(c2, two, now=now)
    ticket = make.ticket(b, now=now)
    t = now + timedelta(minutes=1)
    engine.call_next(c1, one, now=t)
    nxt = engine.transfer(ticket, one, now=t, counter=c2, service=make.service(b, "teller"))
    session.commit()
    assert engine.call_next(c1, one, now=t) is None  # it waits for Loket 2 only

    engine.close_counter(c2, two, now=t)
    session.commit()
    session.refresh(nxt)
    assert nxt.target_counter_id is None and nxt.status == TicketStatus.WAITING
    assert engine.call_next(c1, one, now=t).id == nxt.id


def test_a_held_ticket_of_a_closed_counter_goes_back_to_its_queue(make, session, now):
    """The counter that held a ticket closed meanwhile: resuming must not send it there."""
    b = make.branch(counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    one, two = make.user(branches=[b]), make.user(branches=[b])
    c1, c2 = make.counter(b, "Loket 1"), make.counter(b, "Loket 2")
    make.open_counter(c1, one, now=now)
    make.open_counter(c2, two, now=now)
    ticket = make.ticket(b, now=now)
    t = now + timedelta(minutes=1)
    engine.call_next(c1, one, now=t)
    engine.hold(ticket, one, now=t)
    engine.close_counter(c1, one, now=t)
    session.commit()

    engine.resume(ticket, two, now=t)  # nobody holds it any more: anyone on the floor may
    assert ticket.status == TicketStatus.WAITING and ticket.target_counter_id is None
    assert engine.call_next(c2, two, now=t).id == ticket.id
    session.commit()
