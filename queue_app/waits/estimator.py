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
"""

from __future__ import annotations

import heapq
import math
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


def _weighted_mean(values: list[float], weights: list[float]) -> float:
    total = sum(weights)
    if not values or total <= 0:
        return values[-1] if values else 0.0
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total


def _weighted_quantile(sorted_values: list[float], weights: list[float], q: float) -> float:
    """The smallest value with at least a share q of the weight at or below it (equal weights:
    the plain interpolated quantile)."""
    if not sorted_values:
        return 0.0
    if len(set(weights)) <= 1:
        return _quantile(sorted_values, q)
    total = sum(weights)
    if total <= 0:
        return sorted_values[-1]
    running = 0.0
    for v, w in zip(sorted_values, weights, strict=True):
        running += w
        if running >= q * total:
            return v
    return sorted_values[-1]


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
    """Everything a run needs, prepared once per estimate."""

    def __init__(self, state: BranchState, model: WaitModel, horizon_s: float, with_new: bool):
        now = state.now
        self.now = now
        self.policy = state.policy
        self.strict = state.policy.kind == PriorityPolicy.STRICT
        self.services = state.services()
        sidx = {s: i for i, s in enumerate(self.services)}
        self.sidx = sidx
        ns = len(self.services)
        self.horizon = horizon_s

        def rel(moment):
            return INF if moment is None else (moment - now).total_seconds()

        # local hours: the hour containing now, then a boundary every 3600 s
        self.hour0 = model.local_hour(now)
        local_ts = now.timestamp() + model.utc_offset_s
        self.first_boundary = 3600.0 - (local_ts % 3600.0)
        n_hours = int(horizon_s // 3600) + 2
        self.hours = [(self.hour0 + k) % 24 for k in range(n_hours)]
        st = model.service_times
        self.samplers = [[st.sampler(s, h) for h in self.hours] for s in self.services]
        self.rates = [[model.arrivals.per_second(s, h) for h in self.hours] for s in self.services]
        self.priority_share = [model.arrivals.priority_share.get(s, 0.0) for s in self.services]
        self.hazard = [model.abandonment.hazard(s) for s in self.services]
        self.arrivals_until = min(rel(state.closing_at), horizon_s)

        cidx = {c.id: j for j, c in enumerate(state.counters)}
        self.counters = []
        for c in state.counters:
            svcs = tuple(sidx[s] for s in c.services if s in sidx)
            breaks = sorted((rel(a), rel(b)) for a, b in c.breaks if rel(b) > 0)
            entry = {
                "services": svcs,
                "service_ids": [self.services[i] for i in svcs],
                "status": c.status,
                "closes": rel(c.closes_at),
                "breaks": breaks,
                "returns": rel(c.returns_at) if c.status == PAUSED else INF,
                "busy_service": sidx.get(c.busy_service) if c.status == BUSY else None,
                "elapsed": -rel(c.busy_since) if c.status == BUSY else 0.0,
                "id": c.id,
            }
            self.counters.append(entry)

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
        self.targeted = [[] for _ in self.counters]
        self.appointments = []
        for i in range(self.n_tracked):
            if self.t_target[i] is not None:
                self.targeted[self.t_target[i]].append(i)
                continue
            self.heaps[self.t_service[i]].append((-self.t_rank[i], self.t_qs[i], i))
            if self.t_due[i] is not None:
                self.appointments.append(i)
        for h in self.heaps:
            heapq.heapify(h)
        self.early = float(state.policy.appointment_early_s)
        self.grace = float(state.policy.appointment_grace_s)

    def hour_slot(self, t: float) -> int:
        if t < self.first_boundary:
            return 0
        k = 1 + int((t - self.first_boundary) // 3600.0)
        return min(k, len(self.hours) - 1)


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
    results = [[] for _ in range(plan.n_tracked)]
    for _ in range(runs):
        calls = _run(plan, rng)
        for i, t in enumerate(calls):
            results[i].append(t)
    tickets, new = {}, {}
    for i in range(plan.n_tracked):
        values = sorted(results[i])  # seconds from now until the ticket is called
        called = sum(1 for v in values if v < plan.horizon) / max(1, len(values))
        h = plan.hazard[plan.t_service[i]] if if_served else 0.0
        weights = [math.exp(-h * v) for v in values] if h > 0 else [1.0] * len(values)
        est = Estimate(
            mean_s=_weighted_mean(values, weights),
            low_s=_weighted_quantile(values, weights, low_q),
            high_s=_weighted_quantile(values, weights, high_q),
            called_share=called,
        )
        if i < plan.n_real:
            tickets[plan.ticket_ids[i]] = est
        else:
            new[plan.services[plan.new_services[i - plan.n_real]]] = est
    return Estimates(tickets=tickets, new=new)


def _run(plan: _Plan, rng: random.Random) -> list[float]:
    horizon = plan.horizon
    n_tracked = plan.n_tracked
    calls = [horizon] * n_tracked
    remaining = n_tracked
    t_service = list(plan.t_service)
    t_rank = list(plan.t_rank)
    t_qs = list(plan.t_qs)
    taken = [False] * n_tracked
    leave = []
    hazard = plan.hazard
    for i in range(n_tracked):
        if i >= plan.n_real:
            leave.append(GHOST)
        else:
            h = hazard[t_service[i]]
            leave.append(rng.expovariate(h) if h > 0 else INF)
    heaps = [list(h) for h in plan.heaps]
    targeted = [list(t) for t in plan.targeted]
    appointments = list(plan.appointments)
    counters = plan.counters
    samplers = plan.samplers
    # one factor per service for this run: the uncertainty of the learned mean
    factor = []
    for s_samplers in samplers:
        e = s_samplers[0].mean_error
        factor.append(math.exp(rng.gauss(0.0, e) - e * e / 2) if e > 0 else 1.0)
    strict = plan.strict
    interleave_pos = [0] * len(counters)

    events = []  # (time, seq, counter index)
    seq = 0
    for j, c in enumerate(counters):
        status = c["status"]
        if status == IDLE:
            start = 0.0
        elif status == BUSY:
            s = c["busy_service"]
            start = samplers[s][0].residual(rng, c["elapsed"]) * factor[s] if s is not None else 0.0
        elif status == PAUSED:
            start = max(0.0, c["returns"])
        else:
            start = INF
        if start < INF:
            events.append((start, seq, j))
            seq += 1
    heapq.heapify(events)
    idle = []

    # lazily generated Poisson arrivals, piecewise constant per local hour
    until = plan.arrivals_until
    rates = plan.rates
    arrivals = []
    for s in range(len(plan.services)):
        t = _next_arrival(plan, rng, rates[s], 0.0, until)
        if t < INF:
            arrivals.append((t, s))
    heapq.heapify(arrivals)

    def pick(j: int, now: float):
        """The ticket counter j takes at `now` under the routing policy, or None."""
        c = counters[j]
        tq = targeted[j]
        while tq:
            i = tq.pop(0)
            if not taken[i]:
                return i
        if appointments:
            best, best_due = None, INF
            svcs = c["services"]
            for i in appointments:
                if taken[i] or t_service[i] not in svcs:
                    continue
                d = plan.t_due[i]
                if -plan.early <= now - d <= plan.grace and d < best_due:
                    best, best_due = i, d
            if best is not None:
                return best
        if strict:
            for s in c["services"]:
                h = heaps[s]
                while h:
                    i = heapq.heappop(h)[2]
                    if not taken[i]:
                        return i
            return None
        return _pick_by_policy(
            plan, c, j, now, heaps, taken, t_service, t_rank, t_qs, interleave_pos
        )

    while remaining > 0:
        t_ev = events[0][0] if events else INF
        t_arr = arrivals[0][0] if arrivals else INF
        if t_ev >= horizon and t_arr >= horizon:
            break
        if t_arr < t_ev:
            now, s = heapq.heappop(arrivals)
            i = len(t_service)
            t_service.append(s)
            rank = 1 if plan.priority_share[s] and rng.random() < plan.priority_share[s] else 0
            t_rank.append(rank)
            t_qs.append(now)
            taken.append(False)
            h = hazard[s]
            leave.append(now + rng.expovariate(h) if h > 0 else INF)
            heapq.heappush(heaps[s], (-rank, now, i))
            nxt = _next_arrival(plan, rng, rates[s], now, until)
            if nxt < INF:
                heapq.heappush(arrivals, (nxt, s))
            for k, j in enumerate(idle):
                if s in counters[j]["services"]:
                    idle.pop(k)
                    heapq.heappush(events, (now, seq, j))
                    seq += 1
                    break
            continue
        now, _, j = heapq.heappop(events)
        c = counters[j]
        if now >= c["closes"]:
            continue
        on_break = None
        for b0, b1 in c["breaks"]:
            if b0 <= now < b1:
                on_break = b1
                break
        if on_break is not None:
            heapq.heappush(events, (on_break, seq, j))
            seq += 1
            continue
        while True:
            i = pick(j, now)
            if i is None:
                idle.append(j)
                break
            taken[i] = True
            if i < n_tracked:
                calls[i] = now
                remaining -= 1
            if leave[i] <= now:  # gone (or a ghost): the counter moves on at once
                continue
            if not strict:
                interleave_pos[j] = next_interleave_pos(plan.policy, interleave_pos[j], t_rank[i])
            s = t_service[i]
            duration = samplers[s][plan.hour_slot(now)].draw(rng) * factor[s]
            heapq.heappush(events, (now + duration, seq, j))
            seq += 1
            break
    return calls


def _next_arrival(plan: _Plan, rng: random.Random, rates: list[float], t: float, until: float):
    while t < until:
        k = plan.hour_slot(t)
        end = plan.first_boundary + 3600.0 * k if k < len(plan.hours) - 1 else INF
        r = rates[k]
        if r > 0:
            t2 = t + rng.expovariate(r)
            if t2 < end:
                return t2 if t2 < until else INF
        t = end
    return INF


def _pick_by_policy(plan, c, j, now, heaps, taken, t_service, t_rank, t_qs, interleave_pos):
    """Interleave and aging: ask routing.policy.order itself among the tickets still there."""
    base = plan.now
    candidates = []
    for s in c["services"]:
        for _, _, i in heaps[s]:
            if not taken[i]:
                candidates.append(
                    Candidate(
                        id=i,
                        service_id=s,
                        rank=t_rank[i],
                        queue_since=base + timedelta(seconds=t_qs[i]),
                    )
                )
    if not candidates:
        return None
    ordered = order(
        candidates,
        counter_id=j,
        service_order=list(c["services"]),
        policy=plan.policy,
        now=base + timedelta(seconds=now),
        interleave_pos=interleave_pos[j],
    )
    return ordered[0].id


__all__ = ["Estimate", "Estimates", "estimate", "friendly_range"]
