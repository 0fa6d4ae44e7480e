"""Reading the feedback metrics of a range of business days: totals, a trend per day, ISO week
or month, the touchpoints (branch, service, counter, staff member, channel), NPS by the wait
actually waited and by whether the quoted wait was kept. Read-only.

The database does the counting: every query is one `SELECT ... COUNT(CASE WHEN ...) ...
GROUP BY` over the responses of the branches and days asked (the index on (branch_id,
business_day)), returning a handful of counts per group (`metrics.Tally`), never the rows.
Weeks and months are folded from the per-day counts in Python (at most 366 small rows), so
the SQL is the same on SQLite and PostgreSQL. `business_day` is the visit step's day in its
branch's own time zone, so a day, week or month is always the branch's local one; in a
network-wide report each response counts on its own branch's calendar.

Who may read what (`may_read`, `readable_branches`): CX agents, executives and admins every
branch; branch managers their branches; staff their branches, through the API only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, or_, select

from ..accounts.models import Role, User
from ..branches.models import Branch, Counter, Service
from ..extensions import db
from .metrics import Tally
from .models import FeedbackChannel, FeedbackResponse

F = FeedbackResponse

GROUPS = ("day", "week", "month")
# the longest range a report covers (a leap year and a day of overlap)
MAX_RANGE_DAYS = 366
# the days a report can cover at all (the API's own bounds for dates)
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
# upper bounds of the wait buckets, in minutes: 0-5, 5-10, 10-20, 20-30, 30+
DEFAULT_WAIT_BUCKETS_MIN = (5, 10, 20, 30)
# below this many answers a score is marked "n too small" (pages; the API says `min_n`)
DEFAULT_MIN_N = 30

QUOTE_KEYS = ("kept", "not_kept", "unknown")
TOUCHPOINT_KINDS = ("branch", "service", "counter", "staff", "channel")

# roles that read the metrics of every branch; managers (and, through the API, staff) read
# those of their own branches
NETWORK_READERS = {Role.CX_AGENT, Role.EXECUTIVE, Role.ADMIN}
PAGE_READERS = NETWORK_READERS | {Role.BRANCH_MANAGER}
API_READERS = PAGE_READERS | {Role.STAFF}


def may_read(user: User, branch: Branch, *, api: bool = False) -> bool:
    """May `user` read the feedback metrics of `branch` (on the CX page, or with `api=True`
    through the API, where staff of the branch may too)?"""
    if not user.active or user.role not in (API_READERS if api else PAGE_READERS):
        return False
    return user.role in NETWORK_READERS or any(b.id == branch.id for b in user.branches)


def sees_network(user: User) -> bool:
    return user.active and user.role in NETWORK_READERS


def readable_branches(user: User) -> list[Branch]:
    """The active branches whose metrics `user` may read on the CX page, by code."""
    if not user.active or user.role not in PAGE_READERS:
        return []
    if user.role in NETWORK_READERS:
        return list(
            db.session.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.code))
        )
    return [b for b in user.branches if b.active]


# --- periods ---------------------------------------------------------------------------


def period_start(day: date, group: str) -> date:
    """The first day of the day / ISO week (Monday) / calendar month holding `day`."""
    if group == "day":
        return day
    if group == "week":
        return day - timedelta(days=day.weekday())
    if group == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown group {group!r}")


def _next_period(start: date, group: str) -> date:
    if group == "day":
        return start + timedelta(days=1)
    if group == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_label(start: date, group: str) -> str:
    """`2026-03-02`, ISO week `2026-W10` (of its ISO year), or `2026-03`."""
    if group == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if group == "month":
        return f"{start.year}-{start.month:02d}"
    return start.isoformat()


def check_range(start: date, end: date) -> None:
    """ValueError unless `start` <= `end`, the range is at most MAX_RANGE_DAYS long and lies
    in FIRST_DAY..LAST_DAY (outside, a date is a typing error: year 1 or 9999)."""
    if not (FIRST_DAY <= start <= LAST_DAY and FIRST_DAY <= end <= LAST_DAY):
        raise ValueError(f"dates are between {FIRST_DAY} and {LAST_DAY}")
    if end < start:
        raise ValueError("the range ends before it starts")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"the range is longer than {MAX_RANGE_DAYS} days")


# --- what a report holds ---------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One point of the trend: the days of the period inside the range (`start`..`end`,
    inclusive; the first and last period may be cut by the range)."""

    label: str
    start: date
    end: date
    tally: Tally


@dataclass(frozen=True)
class WaitBucket:
    """Responses whose actual wait was in [low_s, high_s) (high_s None: no upper bound);
    `key` "unknown" (both bounds None) holds the responses without a wait."""

    key: str
    low_s: int | None
    high_s: int | None
    tally: Tally


@dataclass(frozen=True)
class Touchpoint:
    """One touchpoint's counts. `key` is the id (the channel's value for channels; None:
    not recorded, e.g. a response without a staff member); `item` the loaded object
    (Branch, Service, Counter, User) or None."""

    kind: str
    key: Any
    item: Any
    tally: Tally


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    group: str
    total: Tally
    series: list[Period]
    by_wait: list[WaitBucket]
    by_quote: dict[str, Tally]  # QUOTE_KEYS
    touchpoints: dict[str, list[Touchpoint]]  # TOUCHPOINT_KINDS


@dataclass(frozen=True)
class Filters:
    """Narrow a report to one service, counter, staff member and/or channel (None: all)."""

    service_id: int | None = None
    counter_id: int | None = None
    staff_id: int | None = None
    channel: FeedbackChannel | None = None


# --- SQL -------------------------------------------------------------------------------


def _tally_columns() -> list[ColumnElement]:
    """The counts of `Tally`, in its field order: COUNT ignores the NULL of an unmatched CASE."""

    def when(condition):
        return func.count(case((condition, 1)))

    return [
        when(F.nps >= 9),
        when(F.nps.between(7, 8)),
        when(F.nps <= 6),
        func.count(F.csat),
        when(F.csat >= 4),
        func.count(F.ces),
        when(F.ces >= 4),
        when(F.ces <= 2),
    ]


def _int(value: int) -> ColumnElement:
    """An integer written into the SQL itself: a GROUP BY expression must be the same text
    as its SELECT expression on PostgreSQL, which two bound parameters are not."""
    return literal_column(str(int(value)))


def _where(branch_ids: Sequence[int] | None, start: date, end: date, filters: Filters) -> list:
    conditions = [F.business_day >= start, F.business_day <= end]
    if branch_ids is not None:
        conditions.append(F.branch_id.in_(list(branch_ids)))
    if filters.service_id is not None:
        conditions.append(F.service_id == filters.service_id)
    if filters.counter_id is not None:
        conditions.append(F.counter_id == filters.counter_id)
    if filters.staff_id is not None:
        conditions.append(F.staff_id == filters.staff_id)
    if filters.channel is not None:
        conditions.append(F.channel == filters.channel)
    return conditions


def _grouped(key: ColumnElement, conditions: list) -> dict[Any, Tally]:
    """{group key: Tally} of the responses matching `conditions`, counted by the database."""
    rows = db.session.execute(select(key, *_tally_columns()).where(*conditions).group_by(key)).all()
    return {row[0]: Tally(*row[1:]) for row in rows}


def _wait_bucket_key(bounds_s: Sequence[int]) -> ColumnElement:
    """-1 without a wait, else the index of the first bound the wait is below (len: above all)."""
    whens = [(F.wait_s.is_(None), _int(-1))]
    whens += [(F.wait_s < _int(bound), _int(i)) for i, bound in enumerate(bounds_s)]
    return case(*whens, else_=_int(len(bounds_s)))


def _quote_key() -> ColumnElement:
    """0 quote unknown (no wait or no quote), 1 kept (waited at most what was quoted), 2 not."""
    return case(
        (or_(F.wait_s.is_(None), F.quoted_wait_s.is_(None)), _int(0)),
        (F.wait_s <= F.quoted_wait_s, _int(1)),
        else_=_int(2),
    )


# --- the report ------------------------------------------------------------------------


def series(per_day: dict[date, Tally], start: date, end: date, group: str) -> list[Period]:
    """Every period overlapping `start`..`end` (empty ones too, with a zero tally), in order."""
    result = []
    cursor = period_start(start, group)
    while cursor <= end:
        following = _next_period(cursor, group)
        first, last = max(cursor, start), min(following - timedelta(days=1), end)
        tally = Tally()
        day = first
        while day <= last:
            tally += per_day.get(day, Tally())
            day += timedelta(days=1)
        result.append(Period(period_label(cursor, group), first, last, tally))
        cursor = following
    return result


def wait_buckets(counts: dict[int, Tally], bounds_min: Sequence[int]) -> list[WaitBucket]:
    bounds_s = [int(b) * 60 for b in bounds_min]
    result = []
    low = 0
    for i, high in enumerate([*bounds_s, None]):
        key = f"{low // 60}-{high // 60}" if high is not None else f"{low // 60}+"
        result.append(WaitBucket(key, low, high, counts.get(i, Tally())))
        low = high
    result.append(WaitBucket("unknown", None, None, counts.get(-1, Tally())))
    return result


def _touchpoints(kind: str, counts: dict[Any, Tally], model) -> list[Touchpoint]:
    ids = [k for k in counts if k is not None]
    items = {}
    if model is not None and ids:
        items = {o.id: o for o in db.session.scalars(select(model).where(model.id.in_(ids)))}
    result = [Touchpoint(kind, k, items.get(k), t) for k, t in counts.items()]
    # most answered first; then by key, "not recorded" last, so the order is stable
    result.sort(key=lambda tp: (-tp.tally.responses, tp.key is None, str(tp.key)))
    return result


def report(
    branch_ids: Iterable[int] | None,
    start: date,
    end: date,
    *,
    group: str = "day",
    filters: Filters | None = None,
    wait_buckets_min: Sequence[int] = DEFAULT_WAIT_BUCKETS_MIN,
) -> Report:
    """The metrics of the responses of `branch_ids` (None: every branch) given on the
    business days `start`..`end` (inclusive), narrowed by `filters`.

    ValueError for a bad range (`check_range`), an unknown group or bad wait buckets
    (positive minutes, increasing).
    """
    check_range(start, end)
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")
    bounds = [int(b) for b in wait_buckets_min]
    if any(b <= 0 for b in bounds) or any(a >= b for a, b in pairwise(bounds)):
        raise ValueError("wait buckets must be increasing positive minutes")
    ids = None if branch_ids is None else sorted(set(branch_ids))
    filters = filters or Filters()
    where = _where(ids, start, end, filters)

    per_day = _grouped(F.business_day, where)
    total = sum(per_day.values(), Tally())
    quote = _grouped(_quote_key(), where)
    by_quote = {
        "kept": quote.get(1, Tally()),
        "not_kept": quote.get(2, Tally()),
        "unknown": quote.get(0, Tally()),
    }
    touchpoints = {
        "branch": _touchpoints("branch", _grouped(F.branch_id, where), Branch),
        "service": _touchpoints("service", _grouped(F.service_id, where), Service),
        "counter": _touchpoints("counter", _grouped(F.counter_id, where), Counter),
        "staff": _touchpoints("staff", _grouped(F.staff_id, where), User),
        "channel": _touchpoints(
            "channel",
            {FeedbackChannel(k): t for k, t in _grouped(F.channel, where).items()},
            None,
        ),
    }
    return Report(
        start=start,
        end=end,
        group=group,
        total=total,
        series=series(per_day, start, end, group),
        by_wait=wait_buckets(_grouped(_wait_bucket_key([b * 60 for b in bounds]), where), bounds),
        by_quote=by_quote,
        touchpoints=touchpoints,
    )
