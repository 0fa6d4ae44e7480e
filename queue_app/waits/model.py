"""What the wait estimator knows: the branch's state now and the distributions learned from history.

Pure data and arithmetic: no database, no Flask. Times are aware datetimes at the edges; the
estimator works in seconds from `BranchState.now`.

- `BranchState`: the counters (the services each serves in its priority order; idle, busy since
  a moment with a service, paused until a moment (or for the rest of the horizon), closed; its
  own closing time and known breaks), the waiting tickets (service, priority class, queue since,
  due appointment time, counter it was sent to), the branch's closing time (no arrivals after it)
  and the routing policy (`queue_app.routing.policy.Policy`).
- `ServiceTimes`: empirical service-time distributions per service and hour of the day, with a
  prior from the service's expected duration (a gamma with that mean and `prior_cv`, weighted as
  `prior_weight` observations) so that a service with little data still gets sensible draws.
- `ArrivalRates`: arrivals per hour per service, per local hour of day, with a flat default.
- `Abandonment`: a constant hazard per second of waiting (exponential patience) per service.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..routing.policy import Policy

IDLE = "idle"
BUSY = "busy"
PAUSED = "paused"
CLOSED = "closed"
STATUSES = (IDLE, BUSY, PAUSED, CLOSED)


@dataclass(frozen=True)
class CounterState:
    id: Hashable
    services: tuple  # service keys in the counter's priority order
    status: str = IDLE
    busy_since: datetime | None = None  # BUSY: when the current ticket was called
    busy_service: Hashable | None = None  # BUSY: its service
    returns_at: datetime | None = None  # PAUSED: when it comes back (None: not in the horizon)
    closes_at: datetime | None = None  # takes no new ticket from then on
    breaks: tuple[tuple[datetime, datetime], ...] = ()  # takes no new ticket in [start, end)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown counter status {self.status!r}")
        if self.status == BUSY and (self.busy_since is None or self.busy_service is None):
            raise ValueError("a busy counter needs busy_since and busy_service")


@dataclass(frozen=True)
class WaitingTicket:
    id: Hashable
    service: Hashable
    queue_since: datetime
    rank: int = 0  # priority class: 0 normal, higher is more urgent
    appointment_due_at: datetime | None = None
    target_counter: Hashable | None = None


@dataclass(frozen=True)
class BranchState:
    now: datetime
    counters: tuple[CounterState, ...]
    waiting: tuple[WaitingTicket, ...] = ()
    closing_at: datetime | None = None  # no new arrivals from then on
    policy: Policy = field(default_factory=Policy)
    offered: tuple = ()  # services to estimate a new ticket for even if no counter serves them

    def services(self) -> list:
        seen: dict = dict.fromkeys(self.offered)
        for c in self.counters:
            for s in c.services:
                seen.setdefault(s, None)
        for t in self.waiting:
            seen.setdefault(t.service, None)
        return list(seen)


class Sampler:
    """Draws service times of one service (one hour window): empirical with a gamma prior."""

    __slots__ = ("mean", "mean_error", "prior_mean", "prior_weight", "samples", "scale", "shape")

    def __init__(self, samples: list[float], prior_mean: float, prior_weight: float, cv: float):
        self.samples = sorted(samples)
        self.prior_mean = prior_mean
        self.prior_weight = prior_weight
        self.shape = 1.0 / (cv * cv) if cv > 0 else math.inf  # cv 0: always the mean
        self.scale = prior_mean * cv * cv
        n = len(self.samples)
        total = sum(self.samples) + prior_weight * prior_mean
        self.mean = total / (n + prior_weight) if n + prior_weight > 0 else prior_mean
        # how uncertain the mean itself is (its relative standard error): each simulation run
        # scales its draws by one factor from it, so a thinly learned service gets a wider range
        if n >= 2:
            m = sum(self.samples) / n
            var = sum((x - m) ** 2 for x in self.samples) / (n - 1)
            spread_cv = math.sqrt(var) / m if m > 0 else cv
        else:
            spread_cv = cv
        self.mean_error = spread_cv / math.sqrt(n + prior_weight) if n + prior_weight > 0 else 0.0

    def draw(self, rng: random.Random) -> float:
        """A service time: one of the samples, or with the prior's share of the weight
        (`prior_weight` against the number of samples) a draw from the prior.
        (`estimator._run` writes this out in its hot loop: keep the two alike.)"""
        n = len(self.samples)
        if n == 0 or rng.random() * (n + self.prior_weight) < self.prior_weight:
            return self.draw_prior(rng)
        return self.samples[int(rng.random() * n)]

    def draw_prior(self, rng: random.Random) -> float:
        """A draw from the prior alone: the gamma with the expected mean and `prior_cv`."""
        if self.shape > 1e6:  # cv 0 (or nearly): deterministic
            return self.prior_mean
        return rng.gammavariate(self.shape, self.scale)

    def residual(self, rng: random.Random, elapsed: float) -> float:
        """Time still to go for a ticket already `elapsed` seconds in service."""
        samples = self.samples
        i = bisect.bisect_right(samples, elapsed)
        above = len(samples) - i
        if above >= 3 and rng.random() * (above + self.prior_weight) >= self.prior_weight:
            return samples[i + int(rng.random() * above)] - elapsed
        if self.shape > 1e6:
            if self.prior_mean > elapsed:
                return self.prior_mean - elapsed
            return 30.0
        # conditional gamma by rejection, bounded; then an exponential tail
        for _ in range(8):
            x = rng.gammavariate(self.shape, self.scale)
            if x > elapsed:
                return x - elapsed
        return rng.expovariate(1.0 / max(30.0, 0.25 * self.prior_mean))


class ServiceTimes:
    """Service-time distributions per service and local hour of the day."""

    def __init__(
        self,
        expected_s: dict | None = None,
        *,
        default_s: float = 300.0,
        prior_weight: float = 3.0,
        prior_cv: float = 0.8,
        min_hour_samples: int = 30,
    ):
        self.expected_s = dict(expected_s or {})
        self.default_s = default_s
        self.prior_weight = prior_weight
        self.prior_cv = prior_cv
        self.min_hour_samples = min_hour_samples
        self._by_service: dict = {}
        self._by_hour: dict = {}
        self._cache: dict = {}

    def add(self, service, duration_s: float, hour: int | None = None) -> None:
        if duration_s < 0:
            return
        self._by_service.setdefault(service, []).append(float(duration_s))
        if hour is not None:
            self._by_hour.setdefault((service, hour), []).append(float(duration_s))
        self._cache.clear()

    def extend(self, rows: Iterable[tuple]) -> None:
        for row in rows:
            self.add(*row)

    def count(self, service) -> int:
        return len(self._by_service.get(service, ()))

    def sampler(self, service, hour: int | None = None) -> Sampler:
        key = (service, hour)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        samples = self._by_service.get(service, [])
        if hour is not None:
            window = []
            for h in (hour - 1, hour, hour + 1):
                window.extend(self._by_hour.get((service, h), ()))
            if len(window) >= self.min_hour_samples:
                samples = window
        prior = self.expected_s.get(service, self.default_s)
        sampler = Sampler(samples, prior, self.prior_weight, self.prior_cv)
        self._cache[key] = sampler
        return sampler

    def mean(self, service, hour: int | None = None) -> float:
        return self.sampler(service, hour).mean


class ArrivalRates:
    """Arrivals per hour per service: by local hour of day where known, else a flat rate."""

    def __init__(self, per_hour: dict | None = None, flat: dict | None = None):
        self.per_hour = dict(per_hour or {})  # (service, hour) -> arrivals per hour
        self.flat = dict(flat or {})  # service -> arrivals per hour
        self.priority_share: dict = {}  # service -> share of arrivals with rank 1

    def per_second(self, service, hour: int | None) -> float:
        if hour is not None and (service, hour) in self.per_hour:
            return self.per_hour[(service, hour)] / 3600.0
        return self.flat.get(service, 0.0) / 3600.0


@dataclass
class Abandonment:
    """Exponential patience: a constant hazard per second of waiting, per service or overall."""

    hazard_per_s: float = 0.0
    per_service: dict = field(default_factory=dict)

    def hazard(self, service) -> float:
        return self.per_service.get(service, self.hazard_per_s)

    @staticmethod
    def from_counts(abandoned: int, exposure_s: float, prior_exposure_s: float = 3600.0):
        return Abandonment(abandoned / (exposure_s + prior_exposure_s))

    def probability_within(self, service, wait_s: float) -> float:
        return 1.0 - math.exp(-self.hazard(service) * wait_s)


@dataclass
class WaitModel:
    service_times: ServiceTimes
    arrivals: ArrivalRates = field(default_factory=ArrivalRates)
    abandonment: Abandonment = field(default_factory=Abandonment)
    utc_offset_s: int = 0  # local hour of day = (UTC time + offset) hour

    def local_hour(self, moment: datetime) -> int:
        ts = moment.timestamp() + self.utc_offset_s
        return int(ts // 3600) % 24
