"""The wait estimator: a forward simulation of the branch's own routing from the live state.

Each run starts from `BranchState` (who waits, in which order, which counters are open, what
they serve in which order, how long the tickets in service have been there) and plays the
branch forward with sampled service times (residual times for the tickets already in service),
Poisson arrivals per service and hour that can take multi-skill counters away or overtake with a
higher priority class, tickets ahead that give up (exponential patience), counters that go on
their known breaks, come back from a pause, or close. A free counter takes the ticket the
branch's routing policy (`queue_app.routing.policy`) would give it: tickets sent to it, then due
appointments, then its services in its priority order, within a service by priority class and
arrival. For the strict policy (the default) the order is kept in one heap per service (the same
key as `routing.policy.order`; tests/test_waits_estimator.py checks they agree); for interleave
and aging every pick calls `routing.policy.order` itself.

Every waiting ticket is tracked: the time it is called is its wait in that run. A ticket that
gives up in a run is still "called" when a counter reaches it (the time it would have been
called), at no cost to the counter, so its own estimate stays defined while the tickets behind
it gain. A hypothetical new ticket of each service (rank 0, arriving now) is tracked the same
way: it costs nothing, so it changes nobody's wait, and its call time is exactly what a ticket
issued now would wait.

Output per ticket: the mean over runs (the point estimate minimising squared error) and a range
of low/high quantiles (`friendly_range` rounds it to the minutes customers see).

Cost: the runs are nearly all of it (bench/ewt_speed.py). `_Plan` numbers services, counters and
tickets once per estimate so that a run works on lists and tuples; in a run one agenda (a heap)
holds the counters' next moments and the next arrival of each service. The same inputs and seed
give the same numbers, bit for bit (tests/test_waits_estimator_determinism.py).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import operator
import random
from dataclasses import dataclass
from datetime import timedelta

from ..branches.models import PriorityPolicy
from ..routing.policy import Candidate, next_interleave_pos, order
from .model import BUSY, IDLE, PAUSED, BranchState, WaitModel

INF = math.inf
GHOST = -1  # abandonment time of a ticket that is not really there: picked at no cost


@dataclass(frozen=True)
class Estimate:
    mean_s: float
    low_s: float
    high_s: float
    called_share: float  # share of runs in which it was called within the horizon

    @property
    def minutes(self) -> tuple[int, int]:
        return friendly_range(self.low_s, self.high_s)


@dataclass(frozen=True)
class Estimates:
    tickets: dict  # ticket id -> Estimate
    new: dict  # service -> Estimate for a ticket issued now


def friendly_range(low_s: float, high_s: float) -> tuple[int, int]:
    """Round a range to what a customer reads: whole minutes under 10, then steps of 5."""
    lo = max(0.0, low_s) / 60.0
    hi = max(lo, high_s / 60.0)
    if hi < 10:
        lo_m, hi_m = math.floor(lo), math.ceil(hi)
    else:
        lo_m, hi_m = 5 * math.floor(lo / 5), 5 * math.ceil(hi / 5)
    if hi_m <= lo_m:
        hi_m = lo_m + (1 if hi_m < 10 else 5)
    return int(lo_m), int(hi_m)


def _summary(values: list[float], hazard: float, low_q: float, high_q: float):
    """Mean, low and high quantile of the sorted `values`, each value weighted by
    exp(-hazard x value) (hazard 0: equal weights, the plain mean and interpolated quantiles).
    A weighted quantile is the smallest value with at least that share of the weight at or
    below it."""
    if not values:
        return 0.0, 0.0, 0.0
    if not hazard > 0:
        return sum(values) / len(values), _quantile(values, low_q), _quantile(values, high_q)
    weights = [math.exp(-hazard * v) for v in values]
    total = sum(weights)
    mean = values[-1] if total <= 0 else sum(map(operator.mul, values, weights)) / total
    if weights[0] == weights[-1] and len(set(weights)) <= 1:  # (first != last: not all equal)
        return mean, _quantile(values, low_q), _quantile(values, high_q)
    if total <= 0:
        return mean, values[-1], values[-1]
    running = list(itertools.accumulate(weights))  # nondecreasing: every weight is >= 0
    last = len(values) - 1
    low = bisect.bisect_left(running, low_q * total)
    high = bisect.bisect_left(running, high_q * total)
    return mean, values[min(low, last)], values[min(high, last)]


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    pos = q * (len(sorted_values) - 1)
    i = int(pos)
    if i + 1 >= len(sorted_values):
        return sorted_values[-1]
    frac = pos - i
    return sorted_values[i] * (1 - frac) + sorted_values[i + 1] * frac


def _id_key(ticket):
    try:
        return (ticket.queue_since, 0, ticket.id)
    except TypeError:  # pragma: no cover - ids of mixed types
        return (ticket.queue_since, 1, str(ticket.id))


class _Plan:
    """Everything a run needs, prepared once per estimate: services, counters and tickets are
    numbered, and every per-counter and per-ticket fact is a list or tuple indexed by them."""

    def __init__(self, state: BranchState, model: WaitModel, horizon_s: float, with_new: bool):
        now = state.now
        self.now = now
        self.policy = state.policy
        self.strict = state.policy.kind == PriorityPolicy.STRICT
        self.services = state.services()
        sidx = {s: i for i, s in enumerate(self.services)}
        ns = len(self.services)
        self.horizon = horizon_s

        def rel(moment):
            return INF if moment is None else (moment - now).total_seconds()

        # local hours: the hour containing now (slot 0), then a boundary every 3600 s; slot k
        # (k >= 1) runs from first_boundary + 3600 (k - 1) to slot_end[k], the last one forever
        self.hour0 = model.local_hour(now)
        local_ts = now.timestamp() + model.utc_offset_s
        self.first_boundary = 3600.0 - (local_ts % 3600.0)
        n_hours = int(horizon_s // 3600) + 2
        self.hours = [(self.hour0 + k) % 24 for k in range(n_hours)]
        self.last_slot = n_hours - 1
        self.slot_end = [self.first_boundary + 3600.0 * k for k in range(self.last_slot)] + [INF]
        st = model.service_times
        self.samplers = [[st.sampler(s, h) for h in self.hours] for s in self.services]
        # what Sampler.draw reads, per service and hour slot, for _run to draw without a call
        self.draws = [
            [
                (
                    sm.samples,
                    len(sm.samples),
                    len(sm.samples) + sm.prior_weight,
                    sm.prior_weight,
                    sm.draw_prior,
                )
                for sm in s_samplers
            ]
            for s_samplers in self.samplers
        ]
        self.mean_error = [s_samplers[0].mean_error for s_samplers in self.samplers]
        self.rates = [[model.arrivals.per_second(s, h) for h in self.hours] for s in self.services]
        self.priority_share = [model.arrivals.priority_share.get(s, 0.0) for s in self.services]
        self.hazard = [model.abandonment.hazard(s) for s in self.services]
        self.arrivals_until = min(rel(state.closing_at), horizon_s)

        # counters, indexed by their position in state.counters
        cidx = {c.id: j for j, c in enumerate(state.counters)}
        self.n_counters = len(state.counters)
        self.c_services = tuple(  # service indexes in the counter's priority order
            tuple(sidx[s] for s in c.services if s in sidx) for c in state.counters
        )
        self.c_status = tuple(c.status for c in state.counters)
        self.c_closes = tuple(rel(c.closes_at) for c in state.counters)
        self.c_breaks = tuple(
            tuple(sorted((rel(a), rel(b)) for a, b in c.breaks if rel(b) > 0))
            for c in state.counters
        )
        self.c_limited = tuple(
            closes < INF or bool(breaks)
            for closes, breaks in zip(self.c_closes, self.c_breaks, strict=True)
        )
        self.c_returns = tuple(
            rel(c.returns_at) if c.status == PAUSED else INF for c in state.counters
        )
        self.c_busy_service = tuple(
            sidx.get(c.busy_service) if c.status == BUSY else None for c in state.counters
        )
        self.c_elapsed = tuple(
            -rel(c.busy_since) if c.status == BUSY else 0.0 for c in state.counters
        )

        waiting = sorted(state.waiting, key=_id_key)
        self.n_real = len(waiting)
        self.ticket_ids = [t.id for t in waiting]
        self.t_service = []
        self.t_due = []
        self.t_target = []
        self.t_rank = []
        self.t_qs = []
        for t in waiting:
            self.t_service.append(sidx[t.service])
            self.t_due.append(None if t.appointment_due_at is None else rel(t.appointment_due_at))
            self.t_target.append(
                cidx.get(t.target_counter) if t.target_counter is not None else None
            )
            self.t_rank.append(t.rank)
            self.t_qs.append(rel(t.queue_since))
        self.new_services = list(range(ns)) if with_new else []
        for s in self.new_services:
            self.t_service.append(s)
            self.t_due.append(None)
            self.t_target.append(None)
            self.t_rank.append(0)
            self.t_qs.append(0.0)
        self.n_tracked = len(self.t_service)

        # strict order: one heap per service, keyed like routing.policy.order's `arrival`
        self.heaps = [[] for _ in range(ns)]
        self.targeted = [[] for _ in range(self.n_counters)]
        appointments = []
        for i in range(self.n_tracked):
            if self.t_target[i] is not None:
                self.targeted[self.t_target[i]].append(i)
                continue
            self.heaps[self.t_service[i]].append((-self.t_rank[i], self.t_qs[i], i))
            if self.t_due[i] is not None:
                appointments.append(i)
        self.appointments = tuple(appointments)  # never changed by a run
        for h in self.heaps:
            heapq.heapify(h)
        # interleave and aging: the same tickets as routing.policy.order's candidates, per service
        self.candidates = []
        if not self.strict:
            for s, h in enumerate(self.heaps):
                self.candidates.append(
                    {
                        i: Candidate(
                            id=i,
                            service_id=s,
                            rank=self.t_rank[i],
                            queue_since=now + timedelta(seconds=queue_since),
                        )
                        for _, queue_since, i in h
                    }
                )
        self.early = float(state.policy.appointment_early_s)
        self.grace = float(state.policy.appointment_grace_s)


def estimate(
    state: BranchState,
    model: WaitModel,
    *,
    runs: int = 200,
    seed: int = 0,
    low_q: float = 0.1,
    high_q: float = 0.95,
    horizon_s: float = 4 * 3600.0,
    with_new: bool = True,
    if_served: bool = True,
) -> Estimates:
    """Estimated waits (seconds from `state.now` until called) of every waiting ticket and of
    a new ticket of each service issued now.

    `if_served`: the wait of a customer who is still there when called. Each run's wait is
    weighted by the chance that the ticket's own patience outlasts it (exp(-hazard x wait)):
    the waits customers actually live through, and what the replay measures (served tickets).
    Without it, the wait of a customer who would never give up."""
    plan = _Plan(state, model, horizon_s, with_new)
    rng = random.Random(seed)  # a seeded simulation, not a secret  # nosec B311
    per_run = [_run(plan, rng) for _ in range(runs)]
    # one column per tracked ticket: its call time in each run
    columns = list(zip(*per_run, strict=True)) if per_run else [()] * plan.n_tracked
    tickets, new = {}, {}
    for i, column in enumerate(columns):
        values = sorted(column)  # seconds from now until the ticket is called
        called = bisect.bisect_left(values, plan.horizon) / max(1, len(values))
        h = plan.hazard[plan.t_service[i]] if if_served else 0.0
        mean_s, low_s, high_s = _summary(values, h, low_q, high_q)
        est = Estimate(mean_s=mean_s, low_s=low_s, high_s=high_s, called_share=called)
        if i < plan.n_real:
            tickets[plan.ticket_ids[i]] = est
        else:
            new[plan.services[plan.new_services[i - plan.n_real]]] = est
    return Estimates(tickets=tickets, new=new)


# What is on the agenda of a run: (time, kind, a, b), earliest first. A counter's event is
# (time, _COUNTER, sequence number, counter index), an arrival (time, _ARRIVAL, service, 0):
# at the same moment counters act before arrivals, counters in the order their events were
# made, arrivals by service.
_COUNTER = 0
_ARRIVAL = 1


def _run(plan: _Plan, rng: random.Random) -> list[float]:
    """One run: each tracked ticket's call time (`plan.horizon` when not called within it).

    Exponential draws are written out as `-log(1.0 - random()) / rate`, the formula of
    `random.expovariate`, so they are the same numbers it would give."""
    random_ = rng.random
    log = math.log
    heappush, heappop = heapq.heappush, heapq.heappop
    horizon = plan.horizon
    n_tracked = plan.n_tracked
    n_real = plan.n_real
    calls = [horizon] * n_tracked
    remaining = n_tracked
    t_service = list(plan.t_service)  # grows with the run's arrivals
    t_rank = list(plan.t_rank)
    t_due = plan.t_due
    taken = [False] * n_tracked
    hazard = plan.hazard
    priority_share = plan.priority_share
    leave = []  # when each ticket gives up
    for i in range(n_real):
        h = hazard[t_service[i]]
        leave.append(-log(1.0 - random_()) / h if h > 0 else INF)
    leave.extend([GHOST] * (n_tracked - n_real))
    heaps = [list(h) for h in plan.heaps]
    c_heaps = [[heaps[s] for s in svcs] for svcs in plan.c_services]  # each counter's, in order
    targeted = [list(t) for t in plan.targeted]
    appointments = plan.appointments
    early, grace = plan.early, plan.grace
    c_services = plan.c_services
    c_closes = plan.c_closes
    c_breaks = plan.c_breaks
    c_limited = plan.c_limited
    samplers = plan.samplers
    draws = plan.draws
    first_boundary, last_slot, slot_end = plan.first_boundary, plan.last_slot, plan.slot_end
    # one factor per service for this run: the uncertainty of the learned mean
    factor = []
    for e in plan.mean_error:
        factor.append(math.exp(rng.gauss(0.0, e) - e * e / 2) if e > 0 else 1.0)
    strict = plan.strict
    plain = strict and not appointments and not any(targeted)
    policy = plan.policy
    interleave_pos = [0] * plan.n_counters
    # interleave and aging: per service, the candidates still waiting (ticket index -> Candidate)
    waiting = [dict(w) for w in plan.candidates]

    agenda = []
    seq = 0
    for j in range(plan.n_counters):
        status = plan.c_status[j]
        if status == IDLE:
            start = 0.0
        elif status == BUSY:
            s = plan.c_busy_service[j]
            if s is not None:
                start = samplers[s][0].residual(rng, plan.c_elapsed[j]) * factor[s]
            else:
                start = 0.0
        elif status == PAUSED:
            start = max(0.0, plan.c_returns[j])
        else:
            start = INF
        if start < INF:
            agenda.append((start, _COUNTER, seq, j))
            seq += 1
    idle = []

    # lazily generated Poisson arrivals, piecewise constant per local hour
    until = plan.arrivals_until

    def next_arrival(rates: list[float], t: float) -> float:
        """The next arrival after t at the rates per hour slot, or INF if none before `until`."""
        while t < until:
            # the hour slot of t
            if t < first_boundary:
                k = 0
            else:
                k = 1 + int((t - first_boundary) // 3600.0)
                if k > last_slot:
                    k = last_slot
            r = rates[k]
            if r > 0:
                t2 = t + -log(1.0 - random_()) / r
                if t2 < slot_end[k]:
                    return t2 if t2 < until else INF
            t = slot_end[k]
        return INF

    rates = plan.rates
    for s in range(len(plan.services)):
        t = next_arrival(rates[s], 0.0)
        if t < INF:
            agenda.append((t, _ARRIVAL, s, 0))
    heapq.heapify(agenda)

    def pick(j: int, now: float):
        """The ticket counter j takes at `now` under the routing policy, or None."""
        tq = targeted[j]
        while tq:
            i = tq.pop(0)
            if not taken[i]:
                return i
        if appointments:
            best, best_due = None, INF
            svcs = c_services[j]
            for i in appointments:
                if taken[i] or t_service[i] not in svcs:
                    continue
                d = t_due[i]
                if -early <= now - d <= grace and d < best_due:
                    best, best_due = i, d
            if best is not None:
                return best
        if strict:
            for s in c_services[j]:
                h = heaps[s]
                while h:
                    i = heappop(h)[2]
                    if not taken[i]:
                        return i
            return None
        return _pick_by_policy(plan, j, now, waiting, interleave_pos)

    while remaining > 0 and agenda:
        now, kind, a, j = heappop(agenda)
        if now >= horizon:
            break
        if kind == _ARRIVAL:
            s = a
            i = len(t_service)
            t_service.append(s)
            share = priority_share[s]
            rank = 1 if share and random_() < share else 0
            t_rank.append(rank)
            taken.append(False)
            h = hazard[s]
            leave.append(now + -log(1.0 - random_()) / h if h > 0 else INF)
            if strict:
                heappush(heaps[s], (-rank, now, i))
            else:
                waiting[s][i] = Candidate(
                    id=i, service_id=s, rank=rank, queue_since=plan.now + timedelta(seconds=now)
                )
            nxt = next_arrival(rates[s], now)
            if nxt < INF:
                heappush(agenda, (nxt, _ARRIVAL, s, 0))
            if idle:
                for k, jj in enumerate(idle):  # the first idle counter that serves it wakes up
                    if s in c_services[jj]:
                        idle.pop(k)
                        heappush(agenda, (now, _COUNTER, seq, jj))
                        seq += 1
                        break
            continue
        if c_limited[j]:  # a closing time or breaks
            if now >= c_closes[j]:
                continue
            on_break = None
            for b0, b1 in c_breaks[j]:
                if b0 <= now < b1:
                    on_break = b1
                    break
            if on_break is not None:
                heappush(agenda, (on_break, _COUNTER, seq, j))
                seq += 1
                continue
        while True:
            if plain:
                # strict, and no ticket is sent to a counter or has an appointment: each ticket
                # is in one heap only and leaves it when called, so the head of the counter's
                # first service heap with anyone in it is what pick() would return
                for h in c_heaps[j]:
                    if h:
                        i = heappop(h)[2]
                        break
                else:
                    i = None
            else:
                i = pick(j, now)
            if i is None:
                idle.append(j)
                break
            taken[i] = True
            if not strict:
                waiting[t_service[i]].pop(i, None)
            if i < n_tracked:
                calls[i] = now
                remaining -= 1
            if leave[i] <= now:  # gone (or a ghost): the counter moves on at once
                continue
            if not strict:
                interleave_pos[j] = next_interleave_pos(policy, interleave_pos[j], t_rank[i])
            s = t_service[i]
            if now < first_boundary:  # the hour slot of now, as in next_arrival
                k = 0
            else:
                k = 1 + int((now - first_boundary) // 3600.0)
                if k > last_slot:
                    k = last_slot
            # samplers[s][k].draw(rng), written out
            samples, n, weight, prior_weight, draw_prior = draws[s][k]
            if n and random_() * weight >= prior_weight:
                duration = samples[int(random_() * n)]
            else:
                duration = draw_prior(rng)
            duration *= factor[s]
            heappush(agenda, (now + duration, _COUNTER, seq, j))
            seq += 1
            break
    return calls


def _pick_by_policy(plan, j, now, waiting, interleave_pos):
    """Interleave and aging: ask routing.policy.order itself among the tickets still there (its
    order is total, ending with the ticket index, so the order of the candidates given to it
    does not matter)."""
    services = plan.c_services[j]
    candidates = [c for s in services for c in waiting[s].values()]
    if not candidates:
        return None
    ordered = order(
        candidates,
        counter_id=j,
        service_order=list(services),
        policy=plan.policy,
        now=plan.now + timedelta(seconds=now),
        interleave_pos=interleave_pos[j],
    )
    return ordered[0].id


__all__ = ["Estimate", "Estimates", "estimate", "friendly_range"]
