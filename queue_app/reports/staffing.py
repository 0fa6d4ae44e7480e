"""Staffing advice for one branch and day: how many counters each local hour needs to reach a
service-level target, against how many were open on the same hours before.

Forecast (documented method): for the chosen business day, the same weekday of each of the
`weeks` weeks before it (default 4) is history. Days of those on which the branch issued no
ticket at all (closed, a holiday) are left out. Per service and local hour of issue, the
forecast arrivals are the mean count over the history days used; a service's mean service
time (AHT) is the mean `finished_at - started_at` of its served tickets on those days (the
service's `expected_duration_s` when none was served); its patience is estimated from the
same days as the maximum-likelihood estimate for exponential patience, abandonments divided by
the total time customers were seen waiting (the waits of called tickets plus the time the
abandoned ones waited before leaving); with no abandonment seen, patience is infinite and the
model is Erlang C, otherwise Erlang A (erlang.py).

Counters needed: per service and hour, the fewest counters whose share of arrivals served
within `target_s` is at least `share` (default 80% within 10 minutes) - each service as its
own pool of counters, so the branch total is a conservative sum: counters that serve several
services pool their work, which the simulation of the day shows.

Scheduled counters: queue_app has no staff roster. "Open in history" is the mean, over the
history days used, of the distinct counters that called at least one ticket in that local
hour (per service: that called one of the service's tickets); "configured" is the counters
that list the service. Both are what the page compares the need with, and it says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..branches.models import Branch, CounterService, Service
from ..extensions import db
from ..tickets.models import Ticket
from . import erlang, queries
from .stats import Row

DEFAULT_WEEKS = 4
MAX_WEEKS = 26
DEFAULT_TARGET_S = 600
DEFAULT_SHARE = 0.8


@dataclass(frozen=True)
class ServiceModel:
    """What history says about one service."""

    service_id: int
    arrivals: dict[int, float]  # local hour -> mean arrivals on a history day
    aht_s: float
    aht_from_history: bool
    patience_s: float  # math.inf: no abandonment seen (Erlang C)
    abandoned: int
    configured_counters: int
    service_cv: float = 1.0  # coefficient of variation of the service times (1: exponential)


@dataclass(frozen=True)
class Need:
    """One service in one hour."""

    service_id: int
    arrivals: float
    needed: int
    result: erlang.Result
    history_counters: float  # mean distinct counters that called its tickets that hour
    model: str  # "erlang_c" or "erlang_a"


@dataclass(frozen=True)
class Hour:
    hour: int
    arrivals: float
    needed: int  # sum over services
    history_counters: float  # mean distinct counters that called anything that hour
    needs: list[Need] = field(default_factory=list)

    @property
    def gap(self) -> float:
        """Counters needed minus counters open in history (positive: short)."""
        return self.needed - self.history_counters


@dataclass(frozen=True)
class Plan:
    branch: Branch
    day: date
    weeks: int
    target_s: int
    share: float
    history_days: list[date]  # the days asked
    days_used: list[date]  # those with tickets
    services: list[ServiceModel]
    hours: list[Hour]
    # waiting customers' patience over all services (the simulation has one); inf: none left
    patience_s: float = math.inf
    # counter id -> local hour -> share of the history days on which it called in that hour
    counter_hours: dict[int, dict[int, float]] = field(default_factory=dict)


def history_days(day: date, weeks: int) -> list[date]:
    """The same weekday in each of the `weeks` weeks before `day`, oldest first."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks is between 1 and {MAX_WEEKS}")
    return [day - timedelta(days=7 * k) for k in range(weeks, 0, -1)]


def fetch_history(branch: Branch, days: Sequence[date]) -> list[Row]:
    """The tickets of `branch` on exactly these business days (`business_day IN (...)`, on
    the index (branch_id, business_day))."""
    targets = {s.id: s.target_wait_s for s in branch.services}
    query = select(*queries.ticket_columns()).where(
        Ticket.branch_id == branch.id, Ticket.business_day.in_(list(days))
    )
    return queries.to_rows(db.session.connection().execute(query), targets)


def model_services(
    services: Sequence[Service],
    rows: Sequence[Row],
    zone: ZoneInfo,
    days_used: int,
    configured: dict[int, int],
) -> list[ServiceModel]:
    """Per service: mean arrivals per local hour, AHT and patience from the history rows."""
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    service_sum: dict[int, float] = defaultdict(float)
    service_sq: dict[int, float] = defaultdict(float)
    service_n: dict[int, int] = defaultdict(int)
    exposure: dict[int, float] = defaultdict(float)
    abandoned: dict[int, int] = defaultdict(int)
    for row in rows:
        counts[row.service_id][row.issued_at.astimezone(zone).hour] += 1
        if (s := row.service_s) is not None:
            service_sum[row.service_id] += s
            service_sq[row.service_id] += s * s
            service_n[row.service_id] += 1
        if (w := row.wait_s) is not None:
            exposure[row.service_id] += max(0.0, w)
        elif row.abandoned and row.finished_at is not None:
            exposure[row.service_id] += max(0.0, (row.finished_at - row.issued_at).total_seconds())
            abandoned[row.service_id] += 1
    models = []
    for service in services:
        sid = service.id
        n = service_n.get(sid, 0)
        aht = service_sum[sid] / n if n else float(service.expected_duration_s)
        aht = max(aht, 1.0)
        gone = abandoned.get(sid, 0)
        cv = 1.0
        if n >= 2 and aht > 0:
            variance = max(0.0, service_sq[sid] / n - (service_sum[sid] / n) ** 2)
            cv = math.sqrt(variance) / aht
        patience = exposure[sid] / gone if gone and exposure[sid] > 0 else math.inf
        models.append(
            ServiceModel(
                service_id=sid,
                arrivals={h: c / days_used for h, c in sorted(counts.get(sid, {}).items())}
                if days_used
                else {},
                aht_s=aht,
                aht_from_history=bool(n),
                patience_s=patience,
                abandoned=gone,
                configured_counters=configured.get(sid, 0),
                service_cv=cv,
            )
        )
    return models


def _history_counters(rows: Sequence[Row], zone: ZoneInfo, days_used: int):
    """Mean distinct counters calling per local hour, in total and per service."""
    total: dict[tuple, set] = defaultdict(set)
    per_service: dict[tuple, set] = defaultdict(set)
    for row in rows:
        if row.called_at is None or row.counter_id is None:
            continue
        hour = row.called_at.astimezone(zone).hour
        total[(row.business_day, hour)].add(row.counter_id)
        per_service[(row.business_day, hour, row.service_id)].add(row.counter_id)
    by_hour: dict[int, float] = defaultdict(float)
    by_service: dict[tuple[int, int], float] = defaultdict(float)
    if not days_used:
        return by_hour, by_service
    for (_day, hour), counters in total.items():
        by_hour[hour] += len(counters) / days_used
    for (_day, hour, sid), counters in per_service.items():
        by_service[(hour, sid)] += len(counters) / days_used
    return by_hour, by_service


def plan_from_rows(
    branch: Branch,
    day: date,
    rows: Sequence[Row],
    *,
    weeks: int = DEFAULT_WEEKS,
    target_s: int = DEFAULT_TARGET_S,
    share: float = DEFAULT_SHARE,
    services: Sequence[Service] | None = None,
    configured: dict[int, int] | None = None,
) -> Plan:
    """The plan from the history rows (pure apart from reading `branch`'s attributes)."""
    asked = history_days(day, weeks)
    zone = ZoneInfo(branch.timezone)
    used = sorted({r.business_day for r in rows if r.business_day in set(asked)})
    rows = [r for r in rows if r.business_day in set(used)]
    services = [s for s in (services or branch.services) if s.active]
    models = model_services(
        services, rows, zone, len(used), configured if configured is not None else {}
    )
    open_hour, open_service = _history_counters(rows, zone, len(used))
    exposure = sum(max(0.0, w) for r in rows if (w := r.wait_s) is not None) + sum(
        max(0.0, (r.finished_at - r.issued_at).total_seconds())
        for r in rows
        if r.abandoned and r.finished_at is not None
    )
    gone = sum(1 for r in rows if r.abandoned and r.finished_at is not None)
    counter_days: dict[int, dict[int, set]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        if r.called_at is not None and r.counter_id is not None:
            counter_days[r.counter_id][r.called_at.astimezone(zone).hour].add(r.business_day)
    hours_seen = sorted(
        {h for m in models for h in m.arrivals} | {h for h, v in open_hour.items() if v}
    )
    hours = []
    for hour in hours_seen:
        needs = []
        for m in models:
            arrivals = m.arrivals.get(hour, 0.0)
            if arrivals == 0 and not open_service.get((hour, m.service_id)):
                continue
            result = erlang.agents_needed(arrivals / 3600, m.aht_s, target_s, share, m.patience_s)
            needs.append(
                Need(
                    service_id=m.service_id,
                    arrivals=arrivals,
                    needed=result.agents,
                    result=result,
                    history_counters=open_service.get((hour, m.service_id), 0.0),
                    model="erlang_c" if math.isinf(m.patience_s) else "erlang_a",
                )
            )
        hours.append(
            Hour(
                hour=hour,
                arrivals=sum(n.arrivals for n in needs),
                needed=sum(n.needed for n in needs),
                history_counters=open_hour.get(hour, 0.0),
                needs=needs,
            )
        )
    return Plan(
        branch=branch,
        day=day,
        weeks=weeks,
        target_s=target_s,
        share=share,
        history_days=asked,
        days_used=used,
        services=models,
        hours=hours,
        patience_s=exposure / gone if gone and exposure > 0 else math.inf,
        counter_hours={
            cid: {h: len(d) / len(used) for h, d in sorted(hours_.items())}
            for cid, hours_ in counter_days.items()
        },
    )


def plan(
    branch: Branch,
    day: date,
    *,
    weeks: int = DEFAULT_WEEKS,
    target_s: int = DEFAULT_TARGET_S,
    share: float = DEFAULT_SHARE,
) -> Plan:
    """Staffing advice for `branch` on business day `day` (reads the history)."""
    if not 0 < share < 1:
        raise ValueError("the share is between 0 and 1 (exclusive)")
    if not 0 <= target_s <= 24 * 3600:
        raise ValueError("the target wait is between 0 and 86400 seconds")
    rows = fetch_history(branch, history_days(day, weeks))
    configured = dict(
        db.session.execute(
            select(CounterService.service_id, db.func.count())
            .join(Service, Service.id == CounterService.service_id)
            .where(Service.branch_id == branch.id)
            .group_by(CounterService.service_id)
        ).all()
    )
    return plan_from_rows(
        branch, day, rows, weeks=weeks, target_s=target_s, share=share, configured=configured
    )


# --- checking a plan by simulating the day ---------------------------------------------------

# a counter is taken as staffed in an hour of the history schedule when it called tickets in
# that hour on at least this share of the history days
STAFFED_SHARE = 0.5
DEFAULT_SEEDS = 5


@dataclass(frozen=True)
class SimHour:
    hour: int
    arrivals: float  # mean per simulated day
    within_target: float | None  # share of arrivals called within the target (pooled)
    wait_mean_s: float | None  # of those called
    abandoned: float | None  # share of arrivals who left


@dataclass(frozen=True)
class Simulation:
    name: str  # "advised" or "history"
    counters: int  # counters in the simulated schedule
    seeds: int
    total: SimHour  # hour -1: the whole day
    hours: list[SimHour]


def _hours_to_shift(hours: Sequence[int]) -> tuple[str, str, list[tuple[str, str]]]:
    """Opens, closes and breaks of a counter staffed in these local hours."""
    ordered = sorted(set(hours))

    def clock(h: int) -> str:
        return "23:59" if h >= 24 else f"{h:02d}:00"

    breaks = [(clock(a + 1), clock(b)) for a, b in pairwise(ordered) if b > a + 1]
    return clock(ordered[0]), clock(ordered[-1] + 1), breaks


def advised_counters(plan: Plan, codes: dict[int, str]) -> list[tuple[str, list[str], list[int]]]:
    """The plan's schedule as counters: per service, counter k is staffed in the hours whose
    need is at least k (dedicated counters, as the plan assumes)."""
    result = []
    for model in plan.services:
        needs = {
            h.hour: n.needed
            for h in plan.hours
            for n in h.needs
            if n.service_id == model.service_id
        }
        for k in range(1, max(needs.values(), default=0) + 1):
            hours = [h for h, n in needs.items() if n >= k]
            result.append((f"{codes[model.service_id]}-{k}", [codes[model.service_id]], hours))
    return result


def history_counters(plan: Plan, codes: dict[int, str]) -> list[tuple[str, list[str], list[int]]]:
    """The counters of the branch with their services in priority order, each staffed in the
    hours it called tickets on at least STAFFED_SHARE of the history days."""
    result = []
    for counter in sorted(plan.branch.counters, key=lambda c: (c.position, c.id)):
        hours = [
            h
            for h, share in plan.counter_hours.get(counter.id, {}).items()
            if share >= STAFFED_SHARE
        ]
        services = [
            codes[link.service_id]
            for link in sorted(counter.service_links, key=lambda x: x.position)
            if link.service_id in codes
        ]
        if hours and services:
            result.append((counter.name, services, hours))
    return result


def day_spec(plan: Plan, counters, codes: dict[int, str]) -> dict:
    """The simulator's spec (queue_app/waits/simulator.py) of the forecast day."""
    hours = sorted({h for m in plan.services for h, v in m.arrivals.items() if v > 0})
    zone = ZoneInfo(plan.branch.timezone)
    noon = datetime.combine(plan.day, time(12), tzinfo=zone)
    offset = noon.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    utc_offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return {
        "services": [
            {
                "code": codes[m.service_id],
                "arrivals_per_hour": dict(m.arrivals),
                "mean_s": m.aht_s,
                "cv": m.service_cv,
            }
            for m in plan.services
            if m.arrivals
        ],
        "counters": [
            dict(zip(("opens", "closes", "breaks"), _hours_to_shift(h), strict=True))
            | {"name": name, "services": services}
            for name, services, h in counters
        ],
        "day": plan.day.isoformat(),
        "utc_offset": utc_offset,
        "opens": f"{hours[0]:02d}:00" if hours else "08:00",
        "closes": (f"{hours[-1] + 1:02d}:00" if hours[-1] < 23 else "23:59") if hours else "15:00",
        "patience_mean_s": None if math.isinf(plan.patience_s) else plan.patience_s,
    }


def summarise_simulated(rows_by_seed: Sequence[Sequence[dict]], target_s: float, zone) -> tuple:
    """Per local hour of arrival (and in total): mean arrivals per day, the share called
    within the target, the mean wait of those called and the share who left."""
    tallies: dict[int, list] = defaultdict(
        lambda: [0, 0, 0.0, 0, 0]
    )  # n, within, wait, called, left
    for rows in rows_by_seed:
        for row in rows:
            arrived = datetime.fromisoformat(row["arrived_at"])
            hour = arrived.astimezone(zone).hour
            for key in (hour, -1):
                t = tallies[key]
                t[0] += 1
                if row["called_at"]:
                    wait = (datetime.fromisoformat(row["called_at"]) - arrived).total_seconds()
                    t[2] += wait
                    t[3] += 1
                    if wait <= target_s:
                        t[1] += 1
                elif row["outcome"] == "abandoned":
                    t[4] += 1
    seeds = max(1, len(rows_by_seed))

    def make(hour):
        n, within, wait, called, left = tallies.get(hour, [0, 0, 0.0, 0, 0])
        return SimHour(
            hour=hour,
            arrivals=n / seeds,
            within_target=within / n if n else None,
            wait_mean_s=wait / called if called else None,
            abandoned=left / n if n else None,
        )

    return make(-1), [make(h) for h in sorted(h for h in tallies if h >= 0)]


def simulate(plan: Plan, *, seeds: int = DEFAULT_SEEDS) -> list[Simulation]:
    """Play the forecast day `seeds` times (seeds 1..N) with the advised counters and with
    the counters as open in history, through the SimPy branch-day simulator."""
    from ..waits.simulator import simulate_day

    codes = {s.id: s.code for s in plan.branch.services}
    zone = ZoneInfo(plan.branch.timezone)
    results = []
    for name, counters in (
        ("advised", advised_counters(plan, codes)),
        ("history", history_counters(plan, codes)),
    ):
        spec = day_spec(plan, counters, codes)
        if not spec["services"]:
            continue
        runs = [simulate_day(spec, seed) for seed in range(1, seeds + 1)] if counters else []
        total, hours = summarise_simulated(runs, plan.target_s, zone)
        results.append(Simulation(name, len(counters), seeds, total, hours))
    return results
