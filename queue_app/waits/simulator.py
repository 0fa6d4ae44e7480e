"""A branch day, simulated (SimPy): for developing the wait estimator and for checking a staffing
plan.

`simulate_day(spec, seed)` plays one day and returns its visits as rows of the replay format
(DESIGN.md, "Estimated-wait replay format"): dicts with `ticket_id, service, arrived_at,
called_at, finished_at, counter, outcome`, times as ISO 8601 strings with the day's offset.
`counter_rows(spec)` gives the matching counters file and `write_day` writes both CSV files.
The same seed gives the same day.

The spec (`DaySpec`, or the same as a plain dict through `DaySpec.from_dict`):

- `services`: each `ServiceSpec(code, arrivals_per_hour, mean_s, cv=0.8)`: walk-in arrivals per
  hour by local hour of day (`{8: 20, 9: 35}`: 20 between 08:00 and 09:00; missing hours: none),
  and the service time's mean and coefficient of variation (gamma distributed; cv 0 is constant);
- `counters`: each `CounterSpec(name, services, opens="08:00", closes="15:00", breaks=[])`: the
  services in the counter's priority order, its staffed hours and breaks (`[("11:00", "11:30")]`;
  it finishes the ticket in hand first, and calls nothing during a break);
- `day` (`"2026-03-02"`), `utc_offset` (`"+07:00"`), `opens`/`closes` (arrivals from/until these
  times; a counter staffed until closing serves out whoever still waits for it);
- `patience_mean_s`: mean of the exponential patience of waiting customers (None: nobody gives
  up); an abandoned ticket is written with the time it gave up in `finished_at`;
- `appointment_share`: the share of each hour's arrivals that are appointments (booked on
  `slot_s` slots, arriving up to 10 minutes early, called first from `appointment_early_s`
  before their time, like `routing.policy`), `no_show_rate`: the share of appointments that never
  come (they leave no row);
- `priority_share`: the share of walk-ins in a higher priority class (called before the rest of
  their service, not shown in the file).

Routing is the branch default, `routing.policy.order` with the strict policy: tickets are picked
for a free counter from its services in its priority order, due appointments first.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import simpy

from ..routing.policy import Candidate, Policy, order


@dataclass
class ServiceSpec:
    code: str
    arrivals_per_hour: dict[int, float]
    mean_s: float
    cv: float = 0.8


@dataclass
class CounterSpec:
    name: str
    services: list[str]
    opens: str = "08:00"
    closes: str = "15:00"
    breaks: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DaySpec:
    services: list[ServiceSpec]
    counters: list[CounterSpec]
    day: str = "2026-03-02"
    utc_offset: str = "+07:00"
    opens: str = "08:00"
    closes: str = "15:00"
    patience_mean_s: float | None = 1800.0
    appointment_share: float = 0.0
    no_show_rate: float = 0.0
    slot_s: int = 900
    priority_share: float = 0.0
    policy: Policy = field(default_factory=Policy)

    @classmethod
    def from_dict(cls, data: dict) -> DaySpec:
        data = dict(data)
        data["services"] = [
            s if isinstance(s, ServiceSpec) else ServiceSpec(**s) for s in data["services"]
        ]
        data["counters"] = [
            c if isinstance(c, CounterSpec) else CounterSpec(**c) for c in data["counters"]
        ]
        for s in data["services"]:
            s.arrivals_per_hour = {int(h): float(r) for h, r in s.arrivals_per_hour.items()}
        return cls(**data)


def _clock(value: str) -> float:
    """'HH:MM' -> seconds after midnight."""
    t = time.fromisoformat(value)
    return t.hour * 3600.0 + t.minute * 60.0 + t.second


@dataclass
class _Ticket:
    id: int
    code: str
    service: str
    arrived: float
    rank: int = 0
    due: float | None = None
    gives_up: float = float("inf")
    called: float | None = None
    finished: float | None = None
    counter: str | None = None
    outcome: str | None = None


def _gamma(rng: random.Random, mean: float, cv: float) -> float:
    if cv <= 0:
        return mean
    shape = 1.0 / (cv * cv)
    return rng.gammavariate(shape, mean / shape)


def _arrivals(spec: DaySpec, rng: random.Random) -> list[_Ticket]:
    start, end = _clock(spec.opens), _clock(spec.closes)
    tickets: list[_Ticket] = []
    walk_share = 1.0 - spec.appointment_share
    for svc in spec.services:
        for hour, rate in sorted(svc.arrivals_per_hour.items()):
            h0, h1 = max(start, hour * 3600.0), min(end, (hour + 1) * 3600.0)
            if h1 <= h0 or rate <= 0:
                continue
            t = h0
            while True:
                t += rng.expovariate(rate * walk_share / 3600.0)
                if t >= h1:
                    break
                rank = 1 if rng.random() < spec.priority_share else 0
                tickets.append(_Ticket(0, "", svc.code, t, rank=rank))
            # appointments of this hour, on slots
            expected = rate * spec.appointment_share * (h1 - h0) / 3600.0
            booked = _poisson(rng, expected)
            for _ in range(booked):
                slots = max(1, int((h1 - h0) // spec.slot_s))
                due = h0 + spec.slot_s * rng.randrange(slots)
                if rng.random() < spec.no_show_rate:
                    continue
                arrived = max(start, due - rng.uniform(0, 600))
                tickets.append(_Ticket(0, "", svc.code, arrived, due=due))
    tickets.sort(key=lambda t: (t.arrived, t.service))
    prefix = {s.code: chr(ord("A") + i) for i, s in enumerate(spec.services)}
    numbers: dict[str, int] = {}
    for i, t in enumerate(tickets):
        t.id = i
        numbers[t.service] = numbers.get(t.service, 0) + 1
        t.code = f"{prefix[t.service]}{numbers[t.service]:03d}"
        if spec.patience_mean_s:
            t.gives_up = t.arrived + rng.expovariate(1.0 / spec.patience_mean_s)
    return tickets


def _poisson(rng: random.Random, mean: float) -> int:
    n, p, limit = 0, 1.0, pow(2.718281828459045, -mean)
    while True:
        p *= rng.random()
        if p < limit:
            return n
        n += 1


def simulate_day(spec: DaySpec | dict, seed: int) -> list[dict]:
    """One simulated day as rows of the replay format, in order of arrival."""
    if isinstance(spec, dict):
        spec = DaySpec.from_dict(spec)
    rng = random.Random(seed)  # a seeded simulation, not a secret  # nosec B311
    tickets = _arrivals(spec, rng)
    services = {s.code: s for s in spec.services}
    env = simpy.Environment(initial_time=0.0)
    waiting: list[_Ticket] = []
    wake = {"event": env.event()}
    branch_close = _clock(spec.closes)
    base = datetime.combine(date.fromisoformat(spec.day), time(0), tzinfo=_offset(spec.utc_offset))
    service_ids = {s.code: i for i, s in enumerate(spec.services)}

    def arrivals():
        for t in tickets:
            if t.arrived > env.now:
                yield env.timeout(t.arrived - env.now)
            waiting.append(t)
            event, wake["event"] = wake["event"], env.event()
            event.succeed()

    def drop_gone(now: float):
        for t in list(waiting):
            if t.gives_up <= now:
                waiting.remove(t)
                t.outcome, t.finished = "abandoned", t.gives_up

    def counter(cs: CounterSpec, index: int):
        opens, closes = _clock(cs.opens), _clock(cs.closes)
        breaks = [(_clock(a), _clock(b)) for a, b in cs.breaks]
        serves_out = closes >= branch_close
        order_ids = [service_ids[s] for s in cs.services]
        if env.now < opens:
            yield env.timeout(opens - env.now)
        while True:
            now = env.now
            drop_gone(now)
            mine = [t for t in waiting if t.service in cs.services]
            if now >= closes and not (serves_out and now >= branch_close and mine):
                return
            pause = next((b for a, b in breaks if a <= now < b), None)
            if pause is not None:
                yield env.timeout(pause - now)
                continue
            if not mine:
                if now >= branch_close and not any(t.arrived > now for t in tickets):
                    return
                limit = max(1.0, closes - now) if now < closes else 60.0
                yield wake["event"] | env.timeout(limit)
                continue
            moment = base + timedelta(seconds=now)
            candidates = [
                Candidate(
                    id=t.id,
                    service_id=service_ids[t.service],
                    rank=t.rank,
                    queue_since=base + timedelta(seconds=t.arrived),
                    appointment_due_at=None if t.due is None else base + timedelta(seconds=t.due),
                )
                for t in mine
            ]
            first = order(
                candidates,
                counter_id=index,
                service_order=order_ids,
                policy=spec.policy,
                now=moment,
            )[0]
            ticket = next(t for t in mine if t.id == first.id)
            waiting.remove(ticket)
            ticket.called, ticket.counter = now, cs.name
            svc = services[ticket.service]
            yield env.timeout(max(5.0, _gamma(rng, svc.mean_s, svc.cv)))
            ticket.finished, ticket.outcome = env.now, "served"

    env.process(arrivals())
    for i, cs in enumerate(spec.counters):
        env.process(counter(cs, i))
    env.run(until=branch_close + 8 * 3600.0)
    end = env.now
    rows = []
    for t in tickets:
        if t.outcome is None:  # nobody could serve it
            t.outcome, t.finished = "abandoned", min(t.gives_up, end)

        def stamp(seconds):
            if seconds is None:
                return ""
            return (base + timedelta(seconds=int(seconds))).isoformat()

        rows.append(
            {
                "ticket_id": t.code,
                "service": t.service,
                "arrived_at": stamp(t.arrived),
                "called_at": stamp(t.called),
                "finished_at": stamp(t.finished),
                "counter": t.counter or "",
                "outcome": t.outcome,
                "priority": t.rank,
                "appointment_at": stamp(t.due),
            }
        )
    return rows


def _offset(value: str) -> timezone:
    sign = -1 if value.startswith("-") else 1
    hours, minutes = value.lstrip("+-").split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def absences(spec: DaySpec | dict) -> dict[str, list[tuple[datetime, datetime]]]:
    """The counters' planned absences of the day: breaks, before a late opening, after an early
    closing (what a branch with a staff plan knows in advance), as aware (start, end) pairs."""
    if isinstance(spec, dict):
        spec = DaySpec.from_dict(spec)
    base = datetime.combine(date.fromisoformat(spec.day), time(0), tzinfo=_offset(spec.utc_offset))

    def at(hm: str) -> datetime:
        return base + timedelta(seconds=_clock(hm))

    out = {}
    for c in spec.counters:
        gaps = [(at(a), at(b)) for a, b in c.breaks]
        if _clock(c.opens) > _clock(spec.opens):
            gaps.append((base, at(c.opens)))
        if _clock(c.closes) < _clock(spec.closes):
            gaps.append((at(c.closes), base + timedelta(days=1)))
        out[c.name] = sorted(gaps)
    return out


def true_model(spec: DaySpec | dict, *, samples: int = 4000, seed: int = 0):
    """The spec's own wait model, what no live branch knows exactly: its service-time
    distributions (`samples` draws per service, as the simulator draws them), its arrival rates
    per local hour (walk-ins and the appointments that come), the share of priority walk-ins
    and the give-up hazard. For measuring how much of an estimate's error is left when the
    model is right."""
    from .model import Abandonment, ArrivalRates, ServiceTimes, WaitModel

    if isinstance(spec, dict):
        spec = DaySpec.from_dict(spec)
    rng = random.Random(seed)  # a seeded simulation, not a secret  # nosec B311
    st = ServiceTimes({s.code: s.mean_s for s in spec.services}, prior_weight=1.0)
    for svc in spec.services:
        for _ in range(samples):
            st.add(svc.code, max(5.0, _gamma(rng, svc.mean_s, svc.cv)))
    walk, booked = 1.0 - spec.appointment_share, spec.appointment_share
    rates = ArrivalRates(
        per_hour={
            (svc.code, hour): rate * (walk + booked * (1.0 - spec.no_show_rate))
            for svc in spec.services
            for hour, rate in svc.arrivals_per_hour.items()
        }
    )
    share = spec.priority_share * walk / (walk + booked * (1.0 - spec.no_show_rate))
    rates.priority_share = {svc.code: share for svc in spec.services if share > 0}
    hazard = 1.0 / spec.patience_mean_s if spec.patience_mean_s else 0.0
    offset = int(_offset(spec.utc_offset).utcoffset(None).total_seconds())
    return WaitModel(st, rates, Abandonment(hazard), utc_offset_s=offset)


def counter_rows(spec: DaySpec | dict) -> list[dict]:
    """The counters file's rows, with the optional `absences` column (ISO 8601 intervals)."""
    if isinstance(spec, dict):
        spec = DaySpec.from_dict(spec)
    planned = absences(spec)
    return [
        {
            "counter": c.name,
            "services": ";".join(c.services),
            "absences": ";".join(f"{a.isoformat()}/{b.isoformat()}" for a, b in planned[c.name]),
        }
        for c in spec.counters
    ]


def write_day(
    spec: DaySpec | dict,
    seed: int,
    visits_path: str,
    counters_path: str,
    *,
    recorded: bool = False,
) -> list[dict]:
    """Simulate a day and write its two replay files: the columns of the format, and with
    `recorded` also the optional ones a live branch records (priority, appointment time, the
    counters' planned absences)."""
    rows = simulate_day(spec, seed)
    from .replay import (
        COUNTER_COLUMNS,
        OPTIONAL_COUNTER_COLUMNS,
        OPTIONAL_VISIT_COLUMNS,
        VISIT_COLUMNS,
    )

    visit_columns = VISIT_COLUMNS + (OPTIONAL_VISIT_COLUMNS if recorded else [])
    counter_columns = COUNTER_COLUMNS + (OPTIONAL_COUNTER_COLUMNS if recorded else [])
    with open(visits_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=visit_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with open(counters_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=counter_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(counter_rows(spec))
    return rows


def _scaled(spec: DaySpec, load: float) -> DaySpec:
    for svc in spec.services:
        svc.arrivals_per_hour = {h: r * load for h, r in svc.arrivals_per_hour.items()}
    return spec


def single_queue_spec(load: float = 1.0, **overrides) -> DaySpec:
    """A one-service branch: four counters with staggered breaks, a morning and a midday peak;
    `load` scales every arrival rate."""
    rates = {8: 30, 9: 48, 10: 52, 11: 44, 12: 54, 13: 46, 14: 30}
    spec = DaySpec(
        services=[ServiceSpec("teller", rates, mean_s=270.0, cv=0.7)],
        counters=[
            CounterSpec("C1", ["teller"], breaks=[("11:00", "11:30")]),
            CounterSpec("C2", ["teller"], breaks=[("11:30", "12:00")]),
            CounterSpec("C3", ["teller"], breaks=[("12:00", "12:30")]),
            CounterSpec("C4", ["teller"], opens="09:00", breaks=[("12:30", "13:00")]),
        ],
        patience_mean_s=2400.0,
    )
    for k, v in overrides.items():
        setattr(spec, k, v)
    return _scaled(spec, load)


def multi_skill_spec(load: float = 1.0, **overrides) -> DaySpec:
    """Three services on six counters with different skills and priority orders, appointments,
    no-shows, priority customers, breaks and a counter that closes early; `load` scales every
    arrival rate."""
    spec = DaySpec(
        services=[
            ServiceSpec(
                "teller", {8: 26, 9: 40, 10: 44, 11: 36, 12: 46, 13: 38, 14: 24}, 240.0, 0.7
            ),
            ServiceSpec("cs", {8: 8, 9: 12, 10: 14, 11: 12, 12: 10, 13: 12, 14: 8}, 540.0, 0.9),
            ServiceSpec("loans", {8: 2, 9: 4, 10: 5, 11: 4, 12: 3, 13: 4, 14: 2}, 1080.0, 0.6),
        ],
        counters=[
            CounterSpec("T1", ["teller"], breaks=[("11:00", "11:30")]),
            CounterSpec("T2", ["teller"], breaks=[("11:30", "12:00")]),
            CounterSpec(
                "T3", ["teller", "cs"], opens="08:30", closes="14:00", breaks=[("12:00", "12:30")]
            ),
            CounterSpec("S1", ["cs", "teller"], breaks=[("12:30", "13:00")]),
            CounterSpec("S2", ["cs", "loans"], breaks=[("11:30", "12:00")]),
            CounterSpec("L1", ["loans", "cs"], breaks=[("12:00", "12:45")]),
        ],
        patience_mean_s=2400.0,
        appointment_share=0.1,
        no_show_rate=0.2,
        priority_share=0.05,
    )
    for k, v in overrides.items():
        setattr(spec, k, v)
    return _scaled(spec, load)


def generalist_spec(load: float = 1.0, **overrides) -> DaySpec:
    """Multi-skill with generalists: three counters serve teller first and cs only when no
    teller ticket waits, one counter serves cs only; teller is busy, so most cs customers wait
    for the one specialist while a queue-per-service view counts four counters for cs."""
    spec = DaySpec(
        services=[
            ServiceSpec(
                "teller", {8: 40, 9: 60, 10: 66, 11: 56, 12: 66, 13: 56, 14: 36}, 240.0, 0.7
            ),
            ServiceSpec("cs", {8: 5, 9: 8, 10: 9, 11: 8, 12: 8, 13: 8, 14: 5}, 480.0, 0.8),
        ],
        counters=[
            CounterSpec("T1", ["teller"], breaks=[("11:00", "11:30")]),
            CounterSpec("G1", ["teller", "cs"], breaks=[("11:30", "12:00")]),
            CounterSpec("G2", ["teller", "cs"], breaks=[("12:00", "12:30")]),
            CounterSpec("G3", ["teller", "cs"], opens="09:00", breaks=[("12:30", "13:00")]),
            CounterSpec("S1", ["cs"], breaks=[("12:00", "12:30")]),
        ],
        patience_mean_s=2400.0,
        appointment_share=0.05,
        no_show_rate=0.2,
        priority_share=0.05,
    )
    for k, v in overrides.items():
        setattr(spec, k, v)
    return _scaled(spec, load)
