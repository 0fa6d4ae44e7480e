"""The figures of a report, as pure functions over plain rows (no database).

Definitions (DESIGN.md, tickets/states.py):

- a *ticket* is one visit step at one service (a transfer starts a new step, counted at the
  service it went to); `issued` counts them all;
- *wait* = first call - issue (`called_at - issued_at`; for an appointment the ticket is
  issued at check-in), of every step that was called;
- *service time* = `finished_at - started_at` of every step finished after being served;
- *served*: finished; *abandoned*: cancelled before it was ever called (left the queue,
  lapsed remote tickets and tickets still waiting when the business day was closed);
  *no-show*: called and not come (`no_show`); *transferred*: sent on to another step;
- abandonment rate = abandoned / issued; no-show rate = no-shows / issued;
- *within target* = share of the tickets that were called or abandoned whose wait was at most
  the service's `target_wait_s` (an abandoned ticket counts as not served within it);
- percentiles are exact, by linear interpolation between the closest ranks (the definition of
  PostgreSQL's `percentile_cont`, NumPy's default and Excel's PERCENTILE.INC): the p-th of
  sorted x_0..x_(n-1) is x_f + (h - f)(x_(f+1) - x_f) with h = (n - 1) p / 100, f = floor(h).
  Computed here in Python over the fetched values (SQLite), or from the two ranks read in
  SQL (`aggregate.py`, PostgreSQL) by the same `percentile_at`, so both agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..tickets.models import ACTIVE_STATUSES, TicketStatus


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) of already sorted values; None for none."""
    if not 0 <= p <= 100:
        raise ValueError("p is between 0 and 100")
    return percentile_at(len(sorted_values), p, sorted_values.__getitem__)


def percentile_at(n: int, p: float, value_at) -> float | None:
    """`percentile` of n sorted values of which only the (at most two) ranks it needs are
    read, by `value_at(rank)` (0-based): rank `(n - 1) * p // 100` and the next one. The
    PostgreSQL path of the reports (`aggregate.py`) reads exactly those ranks in SQL and
    interpolates here, so both paths do the same float operations."""
    if not 0 <= p <= 100:
        raise ValueError("p is between 0 and 100")
    if n == 0:
        return None
    h = (n - 1) * p / 100
    f = math.floor(h)
    if f + 1 >= n:
        return float(value_at(n - 1))
    low, high = value_at(f), value_at(f + 1)
    return low + (h - f) * (high - low)


@dataclass(frozen=True)
class Row:
    """One ticket as a report reads it (times aware UTC)."""

    branch_id: int
    business_day: object  # date
    service_id: int
    counter_id: int | None
    staff_id: int | None
    status: TicketStatus
    issued_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    target_wait_s: int

    @property
    def wait_s(self) -> float | None:
        if self.called_at is None:
            return None
        return (self.called_at - self.issued_at).total_seconds()

    @property
    def service_s(self) -> float | None:
        if (
            self.status != TicketStatus.FINISHED
            or self.started_at is None
            or self.finished_at is None
        ):
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def abandoned(self) -> bool:
        return self.status == TicketStatus.CANCELLED and self.called_at is None


# what one ticket adds to a tally, worked out once per ticket (`facts`): the index of its
# status count (or -1), whether it was abandoned, its wait, whether that was within the
# target, its service time
_SERVED, _ABANDONED, _NO_SHOW, _TRANSFERRED, _ACTIVE, _WITHIN = 1, 2, 3, 4, 5, 6
_STATUS_INDEX = {
    TicketStatus.FINISHED: _SERVED,
    TicketStatus.NO_SHOW: _NO_SHOW,
    TicketStatus.TRANSFERRED: _TRANSFERRED,
    **dict.fromkeys(ACTIVE_STATUSES, _ACTIVE),
}


def facts(row: Row) -> tuple:
    wait = row.wait_s
    return (
        _STATUS_INDEX.get(row.status, -1),
        row.abandoned,
        wait,
        wait is not None and wait <= row.target_wait_s,
        row.service_s,
    )


@dataclass
class Tally:
    """Counts and the wait and service-time values of a group of tickets."""

    # issued, served, abandoned, no_show, transferred, active, within_target
    counts: list[int] = field(default_factory=lambda: [0] * 7)
    waits: list[float] = field(default_factory=list)
    service_times: list[float] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.add_facts(facts(row))

    def add_facts(self, fact: tuple) -> None:
        status, abandoned, wait, within, service = fact
        counts = self.counts
        counts[0] += 1
        if status > 0:
            counts[status] += 1
        if abandoned:
            counts[_ABANDONED] += 1
        if wait is not None:
            self.waits.append(wait)
            if within:
                counts[_WITHIN] += 1
        if service is not None:
            self.service_times.append(service)

    def summary(self) -> Summary:
        waits = sorted(self.waits)
        services = sorted(self.service_times)
        return make_summary(
            self.counts,
            (len(waits), sum(waits), waits.__getitem__),
            (len(services), sum(services), services.__getitem__),
        )


def make_summary(counts: Sequence[int], waits: tuple, services: tuple) -> Summary:
    """A `Summary` from the counts of a `Tally` (issued, served, abandoned, no_show,
    transferred, active, within_target) and, for the waits and the service times, `(n, sum,
    value_at)`: their number, their sum added up in ascending order, and a function giving
    the value at a 0-based rank of the sorted values (only the ranks `percentile_at` asks)."""
    issued, served, abandoned, no_show, transferred, active, within = counts
    wait_n, wait_sum, wait_at = waits
    service_n, service_sum, service_at = services
    judged = wait_n + abandoned

    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return Summary(
        issued=issued,
        served=served,
        called=wait_n,
        abandoned=abandoned,
        no_show=no_show,
        transferred=transferred,
        active=active,
        wait_mean_s=wait_sum / wait_n if wait_n else None,
        wait_median_s=percentile_at(wait_n, 50, wait_at),
        wait_p90_s=percentile_at(wait_n, 90, wait_at),
        service_mean_s=service_sum / service_n if service_n else None,
        service_median_s=percentile_at(service_n, 50, service_at),
        service_p90_s=percentile_at(service_n, 90, service_at),
        abandonment_rate=share(abandoned, issued),
        no_show_rate=share(no_show, issued),
        within_target=share(within, judged),
        within_target_n=judged,
    )


@dataclass(frozen=True)
class Summary:
    """The figures of one group. Rates are 0..1, None when there is nothing to divide."""

    issued: int
    served: int
    called: int
    abandoned: int
    no_show: int
    transferred: int
    active: int
    wait_mean_s: float | None
    wait_median_s: float | None
    wait_p90_s: float | None
    service_mean_s: float | None
    service_median_s: float | None
    service_p90_s: float | None
    abandonment_rate: float | None
    no_show_rate: float | None
    within_target: float | None
    within_target_n: int


SUMMARY_FIELDS = tuple(Summary.__dataclass_fields__)


def summarise(rows: Sequence[Row]) -> Summary:
    tally = Tally()
    for row in rows:
        tally.add(row)
    return tally.summary()
