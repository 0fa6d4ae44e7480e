"""Exact properties of the wait estimator: a seed gives the same numbers every time, whatever the
order the state lists its tickets in; the service times a run draws are `Sampler.draw`'s own
(the hot loop writes that draw out); the weighted summary of the runs follows its definition.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from queue_app.branches.models import PriorityPolicy
from queue_app.routing.policy import Policy
from queue_app.waits.estimator import _summary, estimate
from queue_app.waits.model import (
    BUSY,
    CLOSED,
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


def full_branch(kind: PriorityPolicy) -> tuple[BranchState, WaitModel]:
    """A branch with every feature the estimator knows: busy, idle, paused, closed and
    closing counters, a break, tickets sent to a counter, appointments, priority classes,
    arrivals with a priority share, give-ups, learned service times."""
    rng = random.Random(7)
    counters = (
        CounterState("C1", ("a",), BUSY, busy_since=at(-120), busy_service="a"),
        CounterState("C2", ("a", "b"), BUSY, busy_since=at(-400), busy_service="b"),
        CounterState("C3", ("b", "a"), IDLE, breaks=((at(600), at(1500)),)),
        CounterState("C4", ("c", "b"), PAUSED, returns_at=at(900)),
        CounterState("C5", ("a",), CLOSED),
        CounterState("C6", ("c",), BUSY, busy_since=at(-30), busy_service="c", closes_at=at(2400)),
    )
    waiting = []
    for i in range(24):
        kw = {}
        if i % 7 == 3:
            kw["rank"] = 1
        if i % 9 == 4:
            kw["appointment_due_at"] = at(300 * (i % 4))
        if i % 11 == 5:
            kw["target_counter"] = "C3"
        waiting.append(WaitingTicket(f"T{i}", "abc"[i % 3], at(-60 * (24 - i) + (i % 2)), **kw))
    times = ServiceTimes({"a": 240.0, "b": 540.0, "c": 900.0})
    for s, mean in (("a", 240.0), ("b", 540.0), ("c", 900.0)):
        for _ in range(60):
            times.add(s, rng.gammavariate(2.0, mean / 2.0), hour=rng.randint(0, 5))
    arrivals = ArrivalRates(flat={"a": 30.0, "b": 10.0, "c": 4.0})
    arrivals.priority_share = {"a": 0.1}
    model = WaitModel(
        times, arrivals, Abandonment(1 / 2400, {"c": 1 / 1200}), utc_offset_s=7 * 3600
    )
    policy = Policy(kind=kind, interleave_priority=1, interleave_normal=2)
    state = BranchState(
        now=NOW, counters=counters, waiting=tuple(waiting), closing_at=at(7200), policy=policy
    )
    return state, model


@pytest.mark.parametrize("kind", list(PriorityPolicy))
def test_a_seed_gives_the_same_estimates_whatever_the_order_of_the_tickets(kind):
    state, model = full_branch(kind)
    one = estimate(state, model, runs=40, seed=11)
    again = estimate(state, model, runs=40, seed=11)
    reordered = BranchState(
        now=state.now,
        counters=state.counters,
        waiting=tuple(reversed(state.waiting)),
        closing_at=state.closing_at,
        policy=state.policy,
    )
    shuffled = estimate(reordered, model, runs=40, seed=11)
    assert one == again == shuffled
    assert set(one.tickets) == {t.id for t in state.waiting}
    assert set(one.new) == {"a", "b", "c"}
    # and the seed is what decides: another one draws other runs
    assert estimate(state, model, runs=40, seed=12) != one


@pytest.mark.parametrize("seed", range(6))
def test_runs_draw_service_times_as_the_sampler_does(seed):
    # one idle counter, five tickets, nobody arrives or gives up: in the only run the counter
    # calls T0 at 0, then each next ticket when the previous one's service time is over, and
    # each service time is the sampler's draw times the run's factor for the learned mean
    times = ServiceTimes({"a": 60.0}, prior_weight=3.0, prior_cv=0.8)
    for x in (20.0, 35.0, 50.0, 61.0, 75.0, 90.0, 140.0):
        times.add("a", x)
    model = WaitModel(times)
    state = BranchState(
        now=NOW,
        counters=(CounterState("C1", ("a",), IDLE),),
        waiting=tuple(WaitingTicket(f"T{i}", "a", at(-100 + i)) for i in range(5)),
    )
    est = estimate(state, model, runs=1, seed=seed, with_new=False)

    sampler = times.sampler("a", model.local_hour(NOW))
    rng = random.Random(seed)
    e = sampler.mean_error
    factor = math.exp(rng.gauss(0.0, e) - e * e / 2)
    expected, t = {}, 0.0
    for i in range(5):
        expected[f"T{i}"] = t
        t = t + sampler.draw(rng) * factor
    assert {k: v.mean_s for k, v in est.tickets.items()} == expected
    assert all(v.low_s == v.high_s == v.mean_s for v in est.tickets.values())


def summary_by_definition(values, hazard, low_q, high_q):
    """Weighted mean and quantiles as defined: each value weighs exp(-hazard x value); a
    quantile q is the smallest value with at least a share q of the weight at or below it;
    with equal weights, the linearly interpolated quantile."""

    def interpolated(q):
        pos = q * (len(values) - 1)
        i = int(pos)
        if i + 1 >= len(values):
            return values[-1]
        return values[i] * (1 - (pos - i)) + values[i + 1] * (pos - i)

    weights = [math.exp(-hazard * v) if hazard > 0 else 1.0 for v in values]
    total = sum(weights)
    mean = sum(v * w for v, w in zip(values, weights, strict=True)) / total
    if len(set(weights)) == 1:
        return mean, interpolated(low_q), interpolated(high_q)

    def weighted(q):
        running = 0.0
        for v, w in zip(values, weights, strict=True):
            running += w
            if running >= q * total:
                return v
        return values[-1]

    return mean, weighted(low_q), weighted(high_q)


@pytest.mark.parametrize("seed", range(30))
def test_summary_follows_its_definition(seed):
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 10, 100])
    values = sorted(rng.choice([rng.uniform(0, 3600), 600.0, 14400.0]) for _ in range(n))
    hazard = rng.choice([0.0, 1 / 2400, 1 / 600, 1 / 60])
    low_q, high_q = rng.choice([0.0, 0.1, 0.25]), rng.choice([0.9, 0.95, 1.0])
    assert _summary(values, hazard, low_q, high_q) == summary_by_definition(
        values, hazard, low_q, high_q
    )


def test_summary_of_no_runs():
    assert _summary([], 1 / 600, 0.1, 0.95) == (0.0, 0.0, 0.0)
