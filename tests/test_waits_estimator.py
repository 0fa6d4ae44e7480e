"""The wait estimator on hand-built branch states.

Service times are deterministic (cv 0, no history) and nobody arrives or gives up unless a test
says so, so every wait is computed by hand from the routing rules: a free counter takes the
tickets sent to it, then due appointments, then the oldest ticket of the highest priority class
of the first service in its list that has one waiting.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from queue_app.branches.models import PriorityPolicy
from queue_app.routing.policy import Candidate, Policy, order
from queue_app.waits.estimator import estimate, friendly_range
from queue_app.waits.model import (
    BUSY,
    IDLE,
    PAUSED,
    Abandonment,
    ArrivalRates,
    BranchState,
    CounterState,
    ServiceTimes,
    WaitingTicket,
    WaitModel,
)

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def fixed(**means) -> WaitModel:
    """Deterministic service times: every draw is the service's expected duration."""
    return WaitModel(ServiceTimes(means, prior_weight=1.0, prior_cv=0.0))


def waits(estimates) -> dict:
    return {k: round(e.mean_s) for k, e in estimates.tickets.items()}


def ticket(tid, service, since, **kw) -> WaitingTicket:
    return WaitingTicket(tid, service, at(since), **kw)


def test_single_queue_deterministic():
    # C1 has been serving for 100 s of 300: free at 200; C2 idle.
    state = BranchState(
        now=NOW,
        counters=(
            CounterState("C1", ("a",), BUSY, busy_since=at(-100), busy_service="a"),
            CounterState("C2", ("a",), IDLE),
        ),
        waiting=tuple(ticket(f"T{i}", "a", -400 + 10 * i) for i in range(1, 5)),
    )
    est = estimate(state, fixed(a=300.0), runs=5)
    # C2: T1 at 0, T3 at 300; C1: T2 at 200, T4 at 500; a new ticket: C2 free at 600
    assert waits(est) == {"T1": 0, "T2": 200, "T3": 300, "T4": 500}
    assert round(est.new["a"].mean_s) == 600
    assert est.new["a"].low_s == est.new["a"].high_s == pytest.approx(600)
    assert est.new["a"].called_share == 1.0


def test_multi_skill_follows_each_counters_priority_order():
    # C1 serves a; C2 serves b first, then a. a takes 300 s, b 600 s.
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",)), CounterState("C2", ("b", "a"))),
        waiting=(
            ticket("a1", "a", -500),
            ticket("b1", "b", -450),
            ticket("a2", "a", -400),
            ticket("b2", "b", -350),
            ticket("a3", "a", -300),
        ),
    )
    est = estimate(state, fixed(a=300.0, b=600.0), runs=3)
    # C2 takes b1 at 0 and b2 at 600 (b first), so the a queue has only C1 until 1200:
    # a1 0, a2 300, a3 600, a new a ticket 900 (C1) rather than 1200 (C2);
    # a new b ticket: C2 at 1200.
    assert waits(est) == {"a1": 0, "b1": 0, "a2": 300, "b2": 600, "a3": 600}
    assert round(est.new["a"].mean_s) == 900
    assert round(est.new["b"].mean_s) == 1200
    # one queue for both counters would have said a2 at 0 and a3 at 300: not this branch


def test_priority_class_goes_first():
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), BUSY, busy_since=at(-200), busy_service="a"),),
        waiting=(ticket("n1", "a", -600), ticket("p1", "a", -10, rank=1)),
    )
    est = estimate(state, fixed(a=300.0), runs=3)
    # C1 free at 100: p1 (priority) first, n1 at 400, a new normal ticket at 700
    assert waits(est) == {"p1": 100, "n1": 400}
    assert round(est.new["a"].mean_s) == 700


def test_priority_arrivals_overtake_a_new_ticket():
    # every arrival is a priority customer: they overtake a new normal ticket, not n1 which is
    # of the same priority class and came first
    model = fixed(a=300.0)
    model.arrivals = ArrivalRates(flat={"a": 60.0})
    model.arrivals.priority_share = {"a": 1.0}
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), BUSY, busy_since=at(-200), busy_service="a"),),
        waiting=(ticket("n1", "a", -600, rank=1),),
    )
    est = estimate(state, model, runs=50, seed=3)
    assert round(est.tickets["n1"].mean_s) == 100
    # without arrivals: 400; one a minute of 300 s each all go first
    assert est.new["a"].mean_s > 700


def test_due_appointment_goes_first():
    # the appointment is due at 350; with 300 s early it may be called from 50 on
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), BUSY, busy_since=at(-200), busy_service="a"),),
        waiting=(
            ticket("w1", "a", -900),
            ticket("w2", "a", -800),
            ticket("ap", "a", -20, appointment_due_at=at(350)),
        ),
        policy=Policy(appointment_early_s=300, appointment_grace_s=900),
    )
    est = estimate(state, fixed(a=300.0), runs=3)
    assert waits(est) == {"ap": 100, "w1": 400, "w2": 700}


def test_appointment_not_due_yet_waits_its_turn():
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",)),),
        waiting=(ticket("ap", "a", -20, appointment_due_at=at(3000)), ticket("w1", "a", -10)),
    )
    est = estimate(state, fixed(a=300.0), runs=3)
    assert waits(est) == {"ap": 0, "w1": 300}


def test_ticket_sent_to_a_counter_waits_for_that_counter():
    state = BranchState(
        now=NOW,
        counters=(
            CounterState("C1", ("a",)),
            CounterState("C2", ("a",), BUSY, busy_since=at(-100), busy_service="a"),
        ),
        waiting=(ticket("t1", "a", -900, target_counter="C2"), ticket("w1", "a", -10)),
    )
    est = estimate(state, fixed(a=300.0), runs=3)
    # C1 is free but t1 waits for C2 (free at 200); C1 takes w1 at once
    assert waits(est) == {"t1": 200, "w1": 0}


def test_break_and_closing():
    # C1 goes on a break from 400 to 1000; C2 takes no new ticket from 350 on.
    state = BranchState(
        now=NOW,
        counters=(
            CounterState("C1", ("a",), breaks=((at(400), at(1000)),)),
            CounterState("C2", ("a",), closes_at=at(350)),
        ),
        waiting=tuple(ticket(f"T{i}", "a", -100 + i) for i in range(1, 6)),
    )
    est = estimate(state, fixed(a=300.0), runs=3)
    # 0: C1 T1, C2 T2; 300: C1 T3, C2 T4 (still open); 600: C1 on break until 1000, C2 closed
    assert waits(est) == {"T1": 0, "T2": 0, "T3": 300, "T4": 300, "T5": 1000}
    assert round(est.new["a"].mean_s) == 1300


def test_paused_counter_comes_back():
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), PAUSED, returns_at=at(500)),),
        waiting=(ticket("T1", "a", -60),),
    )
    est = estimate(state, fixed(a=300.0), runs=3)
    assert waits(est) == {"T1": 500}
    assert round(est.new["a"].mean_s) == 800


def test_nobody_serves_it_within_the_horizon():
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), PAUSED),),  # paused, no return known
        waiting=(ticket("T1", "a", -60),),
    )
    est = estimate(state, fixed(a=300.0), runs=3, horizon_s=3600)
    assert est.tickets["T1"].mean_s == 3600
    assert est.tickets["T1"].called_share == 0.0


def test_tickets_ahead_giving_up_shorten_the_wait():
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), BUSY, busy_since=at(0), busy_service="a"),),
        waiting=tuple(ticket(f"T{i}", "a", -100 + i) for i in range(1, 6)),
    )
    patient = estimate(state, fixed(a=300.0), runs=200, seed=1)
    model = fixed(a=300.0)
    model.abandonment = Abandonment(hazard_per_s=1 / 1200)
    impatient = estimate(state, model, runs=200, seed=1)
    # without abandonment T5 waits 300 + 4 x 300; with it, some of T1..T4 leave first
    assert round(patient.tickets["T5"].mean_s) == 1500
    assert impatient.tickets["T5"].mean_s < 1400
    # the first in line never waits behind anyone who could leave: 300 either way
    assert round(impatient.tickets["T1"].mean_s) == 300


def test_seeded_runs_repeat_and_range_brackets_the_mean():
    model = WaitModel(
        ServiceTimes({"a": 300.0}, prior_cv=0.8),
        ArrivalRates(flat={"a": 20.0}),
        Abandonment(1 / 3600),
    )
    state = BranchState(
        now=NOW,
        counters=(
            CounterState("C1", ("a",), BUSY, busy_since=at(-60), busy_service="a"),
            CounterState("C2", ("a",), BUSY, busy_since=at(-200), busy_service="a"),
        ),
        waiting=tuple(ticket(f"T{i}", "a", -300 + i) for i in range(1, 7)),
    )
    one = estimate(state, model, runs=100, seed=42)
    two = estimate(state, model, runs=100, seed=42)
    assert one == two
    for e in one.tickets.values():
        assert e.low_s <= e.mean_s <= e.high_s
    assert one.tickets["T6"].mean_s > one.tickets["T1"].mean_s


def test_friendly_range():
    assert friendly_range(30, 100) == (0, 2)
    assert friendly_range(130, 290) == (2, 5)
    assert friendly_range(610, 860) == (10, 15)
    assert friendly_range(660, 840) == (10, 15)
    assert friendly_range(600, 600) == (10, 15)
    assert friendly_range(0, 0) == (0, 1)


@pytest.mark.parametrize("seed", range(20))
def test_strict_order_matches_routing_policy(seed):
    """The estimator's own heaps call tickets in the order routing.policy.order gives."""
    rng = random.Random(seed)
    services = ["a", "b", "c"]
    counter_services = tuple(rng.sample(services, rng.randint(1, 3)))
    tickets = []
    for i in range(rng.randint(1, 12)):
        tickets.append(
            WaitingTicket(
                id=i,
                service=rng.choice(services),
                queue_since=at(-rng.randint(0, 30) * 60),
                rank=rng.choice([0, 0, 1, 2]),
                target_counter=1 if rng.random() < 0.15 else None,
            )
        )
    state = BranchState(
        now=NOW, counters=(CounterState(1, counter_services),), waiting=tuple(tickets)
    )
    est = estimate(state, fixed(a=60.0, b=60.0, c=60.0), runs=1, with_new=False)
    called = sorted((e.mean_s, tid) for tid, e in est.tickets.items() if e.called_share == 1.0)
    index = {s: k for k, s in enumerate(services)}
    expected = order(
        [
            Candidate(t.id, index[t.service], t.rank, t.queue_since, None, t.target_counter)
            for t in tickets
        ],
        counter_id=1,
        service_order=[index[s] for s in counter_services],
        policy=Policy(kind=PriorityPolicy.STRICT),
        now=NOW,
    )
    assert [tid for _, tid in called] == [c.id for c in expected]


def test_interleave_policy_asks_routing_policy():
    # interleave 1:2 on one counter: priority, normal, normal, priority, ...
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",)),),
        waiting=(
            ticket("n1", "a", -500),
            ticket("n2", "a", -400),
            ticket("n3", "a", -300),
            ticket("p1", "a", -200, rank=1),
            ticket("p2", "a", -100, rank=1),
        ),
        policy=Policy(kind=PriorityPolicy.INTERLEAVE, interleave_priority=1, interleave_normal=2),
    )
    est = estimate(state, fixed(a=100.0), runs=2)
    assert waits(est) == {"p1": 0, "n1": 100, "n2": 200, "p2": 300, "n3": 400}


def test_fast_enough_for_live_use():
    """8 counters, 40 waiting, 200 runs: the work is bounded by the tickets and counters (the
    time itself is measured in bench/ewt_speed.py, not asserted here)."""
    model = WaitModel(
        ServiceTimes({"a": 300.0, "b": 420.0}),
        ArrivalRates(flat={"a": 40.0, "b": 12.0}),
        Abandonment(1 / 2400),
    )
    counters = tuple(
        CounterState(
            f"C{j}", ("a",) if j < 5 else ("b", "a"), BUSY, busy_since=at(-30 * j), busy_service="a"
        )
        for j in range(8)
    )
    state = BranchState(
        now=NOW,
        counters=counters,
        waiting=tuple(ticket(i, "a" if i % 4 else "b", -1200 + 25 * i) for i in range(40)),
    )
    est = estimate(state, model, runs=200)
    assert len(est.tickets) == 40
    assert set(est.new) == {"a", "b"}
    assert all(e.called_share == 1.0 for e in est.tickets.values())


def test_wait_if_served_weighs_each_run_by_the_chance_of_staying():
    # C1 frees at 300; T2 is called at 300 if T1 gave up by then, else at 600
    h = 1 / 600
    model = fixed(a=300.0)
    model.abandonment = Abandonment(hazard_per_s=h)
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), BUSY, busy_since=NOW, busy_service="a"),),
        waiting=(ticket("T1", "a", -20), ticket("T2", "a", -10)),
    )
    gone = 1 - math.exp(-300 * h)  # T1 left before 300
    staying = estimate(state, model, runs=4000, seed=2, if_served=False)
    assert staying.tickets["T2"].mean_s == pytest.approx(600 - 300 * gone, rel=0.02)
    served = estimate(state, model, runs=4000, seed=2)
    w300, w600 = gone * math.exp(-300 * h), (1 - gone) * math.exp(-600 * h)
    expected = (300 * w300 + 600 * w600) / (w300 + w600)  # 444.9 s
    assert served.tickets["T2"].mean_s == pytest.approx(expected, rel=0.02)
    assert served.tickets["T1"].mean_s == pytest.approx(300)
