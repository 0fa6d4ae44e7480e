"""Reading a report: the tickets of some branches over a day, an ISO week or a calendar month
of business days, summarised in total, per hour or day, per branch, service, counter and
staff member, and as an hour-of-week heat map. Read-only.

One query fetches the few columns a report needs of the tickets asked,
`WHERE branch_id IN (...) AND business_day BETWEEN :start AND :end` - a range on the index
`ix_tickets_branch_day (branch_id, business_day)`, so the cost follows the tickets of the
report, not the size of the table (a network report names every active branch, never
"all rows"). On SQLite the figures (stats.py) are then worked out in Python from those
rows; on PostgreSQL `report` has the database work them out (`aggregate.py`: one statement,
no rows fetched), with the same arithmetic, so both paths give the same exact figures.
The report of a closed period is worked out once and then read from its stored figures
(`snapshots.py`).

`business_day` is the ticket's day in its branch's own time zone, so a day, week or month is
the branch's local one; hours and weekdays of the series and the heat map are the local
hour of issue in the ticket's branch zone.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, select, type_coerce

from ..accounts.models import User
from ..branches.models import Branch, Counter, Service
from ..core.types import utcnow
from ..extensions import db
from ..tickets.models import Ticket, TicketStatus
from .stats import Row, Summary, Tally, facts

PERIODS = ("day", "week", "month")
DIMENSIONS = ("branch", "service", "counter", "staff")
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


def period_range(period: str, day: date) -> tuple[date, date]:
    """The first and last business day of the day / ISO week (Monday-Sunday) / calendar month
    holding `day`. ValueError for another period or a day outside 2000..2099."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"the day is between {FIRST_DAY} and {LAST_DAY}")
    if period == "day":
        return day, day
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if period == "month":
        last = calendar.monthrange(day.year, day.month)[1]
        return day.replace(day=1), day.replace(day=last)
    raise ValueError("the period is day, week or month")


def period_label(period: str, start: date) -> str:
    """`2026-03-02`, `2026-W10` (ISO week) or `2026-03`."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start.year}-{start.month:02d}"
    return start.isoformat()


@dataclass(frozen=True)
class Point:
    """One point of the series: a local hour (day reports) or a business day."""

    key: Any  # int hour 0..23, or a date
    label: str
    summary: Summary


@dataclass(frozen=True)
class Group:
    """One branch, service, counter or staff member. `key` None: not recorded (a ticket
    never called has no counter and no staff member)."""

    kind: str
    key: int | None
    item: Any  # Branch, Service, Counter, User or None
    summary: Summary


@dataclass(frozen=True)
class HeatCell:
    weekday: int  # 0 Monday .. 6 Sunday, local
    hour: int  # 0..23, local
    arrivals: int
    wait_mean_s: float | None


@dataclass(frozen=True)
class Report:
    period: str
    label: str
    start: date
    end: date
    branches: list[Branch]
    total: Summary
    series: list[Point]
    groups: dict[str, list[Group]]  # DIMENSIONS
    heat: list[list[HeatCell]]  # [weekday][hour]

    @property
    def peak_arrivals(self) -> int:
        return max((c.arrivals for day in self.heat for c in day), default=0)


def fetch_rows(
    branch_ids: Sequence[int],
    start: date,
    end: date,
    *,
    service_id: int | None = None,
    targets: dict[int, int] | None = None,
) -> list[Row]:
    """The tickets of `branch_ids` on business days start..end (inclusive)."""
    if not branch_ids:
        return []
    if targets is None:
        targets = dict(
            db.session.execute(
                select(Service.id, Service.target_wait_s).where(Service.branch_id.in_(branch_ids))
            ).all()
        )
    query = select(*ticket_columns()).where(
        Ticket.branch_id.in_(list(branch_ids)), Ticket.business_day.between(start, end)
    )
    if service_id is not None:
        query = query.where(Ticket.service_id == service_id)
    return to_rows(db.session.connection().execute(query), targets)


_RAW_TIME = DateTime(timezone=True)
_STATUSES = {s.value: s for s in TicketStatus}


def ticket_columns() -> tuple:
    """The columns of a `stats.Row`, read without the per-value type processing of the
    model's types (times as the driver gives them, the status as its text): a report reads
    many thousands of rows, and `to_rows` does the same conversion once per row."""
    return (
        Ticket.branch_id,
        Ticket.business_day,
        Ticket.service_id,
        Ticket.counter_id,
        Ticket.staff_id,
        type_coerce(Ticket.status, String),
        type_coerce(Ticket.issued_at, _RAW_TIME),
        type_coerce(Ticket.called_at, _RAW_TIME),
        type_coerce(Ticket.started_at, _RAW_TIME),
        type_coerce(Ticket.finished_at, _RAW_TIME),
    )


def to_rows(result, targets: dict[int, int]) -> list[Row]:
    """`stats.Row`s from rows of `ticket_columns()`: aware times (SQLite stores naive UTC,
    PostgreSQL answers in the session's zone: both are the same instants)."""
    rows = []
    for branch_id, day, service_id, counter_id, staff_id, status, *times in result:
        if times[0].tzinfo is None:
            times = [None if t is None else t.replace(tzinfo=UTC) for t in times]
        rows.append(
            Row(
                branch_id,
                day,
                service_id,
                counter_id,
                staff_id,
                _STATUSES[status],
                *times,
                target_wait_s=targets.get(service_id, 0),
            )
        )
    return rows


def build(
    period: str,
    start: date,
    end: date,
    branches: Sequence[Branch],
    rows: Sequence[Row],
    *,
    items: dict[str, dict[int, Any]] | None = None,
) -> Report:
    """A report from fetched rows (pure: no database). `items` maps each dimension's ids to
    the objects shown (missing ones are shown as ids)."""
    items = items or {}
    zones = {b.id: ZoneInfo(b.timezone) for b in branches}
    total = Tally()
    by_key: dict[Any, Tally] = defaultdict(Tally)
    dims: dict[str, dict[int | None, Tally]] = {d: defaultdict(Tally) for d in DIMENSIONS}
    arrivals = [[0] * 24 for _ in range(7)]
    waits: list[list[list[float]]] = [[[] for _ in range(24)] for _ in range(7)]
    hourly = period == "day"
    branch_t, service_t, counter_t, staff_t = (dims[d] for d in DIMENSIONS)
    for row in rows:
        fact = facts(row)
        total.add_facts(fact)
        local = row.issued_at.astimezone(zones[row.branch_id])
        wd, hour = local.weekday(), local.hour
        by_key[hour if hourly else row.business_day].add_facts(fact)
        branch_t[row.branch_id].add_facts(fact)
        service_t[row.service_id].add_facts(fact)
        counter_t[row.counter_id].add_facts(fact)
        staff_t[row.staff_id].add_facts(fact)
        arrivals[wd][hour] += 1
        wait = fact[2]
        if wait is not None:
            waits[wd][hour].append(wait)
    heat = [
        [
            # the mean of the waits added up in ascending order, like a Summary's
            HeatCell(wd, h, arrivals[wd][h], _mean(waits[wd][h]))
            for h in range(24)
        ]
        for wd in range(7)
    ]
    return assemble(
        period,
        start,
        end,
        branches,
        total.summary(),
        {key: tally.summary() for key, tally in by_key.items()},
        {dim: {key: t.summary() for key, t in dims[dim].items()} for dim in DIMENSIONS},
        heat,
        items,
    )


def assemble(
    period: str,
    start: date,
    end: date,
    branches: Sequence[Branch],
    total: Summary,
    by_key: dict[Any, Summary],
    dims: dict[str, dict[int | None, Summary]],
    heat: list[list[HeatCell]],
    items: dict[str, dict[int, Any]],
) -> Report:
    """The report from the summaries of its groups (the Python path above and the SQL one,
    `aggregate.py`): the series filled with empty points, the groups in display order."""
    empty = Tally().summary()
    if period == "day":
        hours = sorted(by_key)
        keys = list(range(hours[0], hours[-1] + 1)) if hours else []
        series = [Point(h, f"{h:02d}:00", by_key.get(h, empty)) for h in keys]
    else:
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        series = [Point(d, d.isoformat(), by_key.get(d, empty)) for d in days]
    groups = {}
    for dim in DIMENSIONS:
        known = items.get(dim, {})
        entries = [
            Group(dim, key, known.get(key) if key is not None else None, summary)
            for key, summary in dims[dim].items()
        ]
        entries.sort(key=lambda g: (g.key is None, _order(g)))
        groups[dim] = entries
    return Report(
        period=period,
        label=period_label(period, start),
        start=start,
        end=end,
        branches=list(branches),
        total=total,
        series=series,
        groups=groups,
        heat=heat,
    )


def _mean(values: list[float]) -> float | None:
    return sum(sorted(values)) / len(values) if values else None


def _order(group: Group):
    item = group.item
    if item is None:
        return (0, "", group.key or 0)
    if isinstance(item, Branch):
        return (0, item.code, 0)
    if isinstance(item, Service):
        return (item.branch_id, f"{item.position:04d}", item.id)
    if isinstance(item, Counter):
        return (item.branch_id, f"{item.position:04d}", item.id)
    return (0, getattr(item, "username", ""), group.key or 0)


def _items(branches: Sequence[Branch], rows: Sequence[Row]) -> dict[str, dict[int, Any]]:
    return items_of(branches, {r.staff_id for r in rows if r.staff_id is not None})


def items_of(branches: Sequence[Branch], staff_ids: set[int]) -> dict[str, dict[int, Any]]:
    """The objects a report names: its branches, their services and counters, the staff."""
    ids = [b.id for b in branches]
    services = db.session.scalars(select(Service).where(Service.branch_id.in_(ids)))
    counters = db.session.scalars(select(Counter).where(Counter.branch_id.in_(ids)))
    users = db.session.scalars(select(User).where(User.id.in_(staff_ids))) if staff_ids else []
    return {
        "branch": {b.id: b for b in branches},
        "service": {s.id: s for s in services},
        "counter": {c.id: c for c in counters},
        "staff": {u.id: u for u in users},
    }


def report(
    branches: Sequence[Branch],
    period: str,
    day: date,
    *,
    service_id: int | None = None,
    now: datetime | None = None,
) -> Report:
    """The report of `branches` for the day / week / month holding `day`.

    A closed period (`snapshots.closed`: every day of it past at each branch, no ticket of
    it still active) is read from its stored figures when they are there; otherwise it is
    worked out (`compute`) and, when closed, stored (a savepoint of the caller's
    transaction: the caller commits). An open period is always worked out and never stored.
    """
    from . import snapshots

    start, end = period_range(period, day)
    now = now or utcnow()
    if not snapshots.past(branches, end, now):
        return compute(branches, period, day, service_id=service_id)
    key = snapshots.key_of(branches, period, start, service_id)
    stored = snapshots.stored_report(key, branches)
    if stored is not None:
        return stored
    # settled first, then worked out: a final ticket never changes, so the figures are
    # those of the closed period
    if not snapshots.settled(branches, start, end):
        return compute(branches, period, day, service_id=service_id)
    made = compute(branches, period, day, service_id=service_id)
    snapshots.store(made, key, service_id=service_id, now=now)
    return made


def compute(
    branches: Sequence[Branch], period: str, day: date, *, service_id: int | None = None
) -> Report:
    """The report worked out from its tickets, never stored. On PostgreSQL the figures are
    worked out in the database (`aggregate.py`, the same figures without fetching the
    tickets); elsewhere from the fetched rows (`report_from_rows`)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from . import aggregate

        return aggregate.report(branches, period, day, service_id=service_id)
    return report_from_rows(branches, period, day, service_id=service_id)


def report_from_rows(
    branches: Sequence[Branch], period: str, day: date, *, service_id: int | None = None
) -> Report:
    """`report` from the tickets fetched into Python and summarised by `build`."""
    start, end = period_range(period, day)
    rows = fetch_rows([b.id for b in branches], start, end, service_id=service_id)
    return build(period, start, end, branches, rows, items=_items(branches, rows))
