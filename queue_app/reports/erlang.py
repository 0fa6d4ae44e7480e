"""Erlang C and Erlang A, exact and numerically stable. Pure functions, no database.

Erlang C (M/M/N): Poisson arrivals at rate `rate` (per second), exponential service with mean
`aht` seconds, `agents` servers, customers who never leave. With the offered load
A = rate * aht:

- Erlang B by its recursion B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)), which never
  forms A^N or N! and so neither overflows nor loses precision for hundreds of servers;
- the probability of waiting C = N B / (N - A (1 - B)) for N > A (1 when N <= A: the queue
  grows without bound);
- the service level P(wait <= t) = 1 - C exp(-(N - A) t / aht);
- the average wait (ASA) C aht / (N - A).

Erlang A (M/M/N+M, Palm's model): the same, and each waiting customer leaves after an
exponential patience of mean `patience` seconds (abandonment rate theta = 1/patience).
Computed exactly from its birth-death chain (Mandelbaum & Zeltyn's formulas are the closed
form of the same chain): the stationary probabilities pi_n with
pi_n / pi_(n-1) = rate / (min(n, N) mu + max(n - N, 0) theta), taken until the tail is below
1e-15 of the mass; by PASTA an arrival finds n in the system with probability pi_n. With j
customers ahead of it in the queue, the arrival reaches a counter after j + 1 departures from
the queue ahead of it, each at rate N mu + k theta (k still ahead), unless its own patience
runs out first (rate theta). The chance it is *served* within t is read from that small
absorbing chain by uniformization (sums of positive terms only, no alternating series):
u(t) = sum_n Poisson(n; L t) P^n. As theta -> 0 Erlang A tends to Erlang C.

Service level here is always the share of *all* arrivals served within t (an abandoned
customer counts as not served within the target), the same definition as the reports'
`within_target`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# the tail of pi (relative to the mass so far) below which the Erlang A chain is cut
_TAIL = 1e-15
# Poisson weights below this are left out of the uniformization sum
_WEIGHT = 1e-17
# no chain longer than this many queue places (a load so far above capacity with so little
# abandonment that the answer is "everyone waits for ever" anyway)
MAX_QUEUE = 200_000


def erlang_b(load: float, agents: int) -> float:
    """Blocking probability of M/M/N/N with offered load `load` (Erlangs)."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load are not negative")
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(load: float, agents: int) -> float:
    """Probability that an arrival waits (M/M/N); 1.0 when agents <= load."""
    if agents <= load:
        return 1.0
    b = erlang_b(load, agents)
    return agents * b / (agents - load * (1.0 - b))


@dataclass(frozen=True)
class Result:
    """What a number of counters achieves for one stream of arrivals."""

    agents: int
    load: float  # offered load A in Erlangs
    wait_probability: float  # P(an arrival waits at all)
    service_level: float  # P(served within the target), 0..1
    mean_wait_s: float | None  # mean wait of an arrival, s (None: unbounded)
    abandon_probability: float  # 0 for Erlang C
    occupancy: float  # share of counter time busy


def _check(rate: float, aht: float, agents: int, target_s: float) -> None:
    if not (rate >= 0 and aht > 0 and agents >= 0 and target_s >= 0):
        raise ValueError("rate >= 0, aht > 0, agents >= 0 and target >= 0")
    if not all(math.isfinite(x) for x in (rate, aht, target_s)):
        raise ValueError("rate, aht and target are finite")


def erlang_c_result(rate: float, aht: float, agents: int, target_s: float) -> Result:
    """Erlang C for `rate` arrivals per second, mean service `aht` s, `agents` counters and
    a target wait of `target_s` seconds."""
    _check(rate, aht, agents, target_s)
    load = rate * aht
    if rate == 0:
        return Result(agents, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    if agents <= load:
        return Result(agents, load, 1.0, 0.0, None, 0.0, 1.0)
    c = erlang_c(load, agents)
    sl = 1.0 - c * math.exp(-(agents - load) * target_s / aht)
    return Result(
        agents=agents,
        load=load,
        wait_probability=c,
        service_level=sl,
        mean_wait_s=c * aht / (agents - load),
        abandon_probability=0.0,
        occupancy=load / agents,
    )


def _stationary(rate: float, mu: float, theta: float, agents: int) -> list[float]:
    """pi_0 .. pi_K of the M/M/N+M chain, normalised; K where the tail is negligible."""
    terms = [1.0]
    total = 1.0
    n = 0
    while True:
        n += 1
        if n - agents > MAX_QUEUE:
            raise ValueError("the queue does not settle: too much load for so little abandonment")
        death = min(n, agents) * mu + max(n - agents, 0) * theta
        term = terms[-1] * rate / death
        terms.append(term)
        total += term
        # past the servers and decreasing: stop when the rest cannot matter
        if n > agents and rate < death and term < _TAIL * total:
            ratio = rate / (death + theta)
            if term * ratio / (1 - ratio) < _TAIL * total:
                break
        if total > 1e280:  # rescale; only ratios matter
            terms = [t / total for t in terms]
            total = 1.0
    return [t / total for t in terms]


def _served_within(agents_rate: float, theta: float, ahead: int, t: float) -> list[float]:
    """u[j] = P(an arrival with j ahead in the queue reaches a counter within t without
    abandoning), for j = 0 .. ahead; by uniformization of the absorbing chain."""
    size = ahead + 1
    if t == 0:
        return [0.0] * size
    top = agents_rate + (ahead + 1) * theta  # the fastest rate leaving any state
    lt = top * t
    forward = [(agents_rate + k * theta) / top for k in range(size)]
    stay = [1.0 - (agents_rate + k * theta + theta) / top for k in range(size)]
    v = [0.0] * size  # P(served within n jumps)
    u = [0.0] * size
    log_lt = math.log(lt)
    mode = int(lt)
    n = 0
    while True:
        n += 1
        new = [0.0] * size
        new[0] = forward[0] + stay[0] * v[0]
        for k in range(1, size):
            new[k] = forward[k] * v[k - 1] + stay[k] * v[k]
        v = new
        weight = math.exp(-lt + n * log_lt - math.lgamma(n + 1))
        for k in range(size):
            u[k] += weight * v[k]
        if n > mode and weight < _WEIGHT:
            break
    # P(served within t) = sum_n P(N(t) = n) P(served within n jumps)
    return u


def erlang_a_result(
    rate: float, aht: float, agents: int, target_s: float, patience_s: float
) -> Result:
    """Erlang A: as `erlang_c_result`, and waiting customers leave after an exponential
    patience of mean `patience_s` seconds (math.inf: Erlang C)."""
    _check(rate, aht, agents, target_s)
    if not patience_s > 0:
        raise ValueError("patience > 0")
    if math.isinf(patience_s):
        return erlang_c_result(rate, aht, agents, target_s)
    if rate == 0:
        return Result(agents, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    mu, theta = 1.0 / aht, 1.0 / patience_s
    load = rate * aht
    if agents == 0:
        # nobody is ever served; every arrival waits and leaves
        return Result(0, load, 1.0, 0.0, None, 1.0, 0.0)
    pi = _stationary(rate, mu, theta, agents)
    waiting = sum(pi[agents:])
    queue_mean = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    abandon = theta * queue_mean / rate
    ahead = max(0, len(pi) - 1 - agents)
    u = _served_within(agents * mu, theta, ahead, target_s)
    sl = sum(pi[:agents]) + sum(pi[agents + j] * u[j] for j in range(ahead + 1))
    busy = sum(min(n, agents) * p for n, p in enumerate(pi))
    # Little's law: the mean time in the queue of every arrival, served or not
    mean_wait = queue_mean / rate
    return Result(
        agents=agents,
        load=load,
        wait_probability=waiting,
        service_level=min(1.0, max(0.0, sl)),
        mean_wait_s=mean_wait,
        abandon_probability=abandon,
        occupancy=busy / agents,
    )


def agents_needed(
    rate: float,
    aht: float,
    target_s: float,
    share: float,
    patience_s: float = math.inf,
    *,
    limit: int = 500,
) -> Result:
    """The fewest counters whose service level (share of arrivals served within `target_s`)
    is at least `share` (0..1), by Erlang C (or Erlang A for a finite patience). ValueError
    past `limit` counters."""
    if not 0 < share < 1:
        raise ValueError("the share served within the target is between 0 and 1 (exclusive)")
    _check(rate, aht, 0, target_s)
    if rate == 0:
        return Result(0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    load = rate * aht
    # Erlang C needs more than the load. Erlang A may do with less, but N counters serve at
    # most N / A of the arrivals, so the share served within the target is at most N / A:
    # no fewer than share x A counters can do
    if math.isinf(patience_s):
        start = math.floor(load) + 1
    else:
        start = max(1, math.ceil(share * load - 1e-9))
    for agents in range(start, limit + 1):
        try:
            result = erlang_a_result(rate, aht, agents, target_s, patience_s)
        except ValueError:  # the queue would not settle with so few counters: try more
            continue
        if result.service_level >= share:
            return result
    raise ValueError(f"more than {limit} counters would be needed")
