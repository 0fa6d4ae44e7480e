"""The live dashboard's figures, read-only: the network overview (one row per branch) and one
branch's view (queues, counters, service times, the day so far).

Scale: the overview reads every figure for all the branches asked with ONE grouped query per
figure, never a query per branch, and each query stays on an index with a sargable range:

- waiting and longest current wait: `status = 'waiting'` per (branch, service) on
  `ix_tickets_queue` (branch_id, status, service_id, queue_since): an index-only range per
  branch over the waiting rows only;
- average wait over the last hour: the steps first called in the hour, on the business days
  the hour covers (`ix_tickets_branch_day`);
- served today: finished steps of the branch's business day (`ix_tickets_branch_day`);
- open counters: the small counters table;
- today's NPS: `feedback.metric_queries`' counts per branch on the branch's business day
  (`ix_feedback_responses_branch_day`);
- open alerts: `alerts.queries.open_alerts`.

A year of history does not slow the overview: every ticket query reads today's rows (or the
waiting ones) of the branches asked. A branch's "today" is its business day in its own time
zone; branches are grouped by that day, so a network spanning zones still asks one query.

Definitions (DESIGN.md): the wait of a step is its first call minus its arrival (issued
or checked in, `issued_at`); a waiting ticket's current wait is `now - queue_since` (its
place in the queue: the arrival, or the original arrival for a transfer that keeps its
place), as the alert rules (`alerts/metrics.py`) measure the longest wait; the
transaction time is finish minus start of service. Served = steps finished (not no-shows,
cancellations or transfers).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, literal_column, or_, select

from ..branches.models import Branch, Counter, CounterStatus, Service
from ..core.db import is_postgres
from ..feedback import metric_queries as mq
from ..feedback.metrics import Tally
from ..feedback.models import FeedbackResponse
from ..realtime.payloads import service_queues
from ..tickets.models import Ticket, TicketStatus

# a queue whose longest wait reached this share of its service's target wait turns its branch
# amber; past the target, red (DASHBOARD_AMBER_SHARE)
DEFAULT_AMBER_SHARE = 0.75
HOUR = timedelta(hours=1)
GREEN, AMBER, RED = "green", "amber", "red"


# --- SQL helpers -----------------------------------------------------------------------------


def _seconds_between(session, later, earlier):
    """`later - earlier` in seconds, in SQL, on PostgreSQL and SQLite (naive UTC text)."""
    if is_postgres(session):
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * literal_column("86400.0")


def _branches_by_day(branches: Iterable[Branch], days_of) -> list[tuple[list[date], list[int]]]:
    """[(business days, branch ids)]: branches grouped by the days `days_of(branch)` gives."""
    groups: dict[tuple[date, ...], list[int]] = defaultdict(list)
    for branch in branches:
        groups[tuple(sorted(set(days_of(branch))))].append(branch.id)
    return [(list(days), ids) for days, ids in groups.items()]


def _on_days(model, groups) -> object:
    """(branch in group AND business_day in its days) OR ...: index ranges on (branch, day)."""
    return or_(
        *(
            and_(
                model.branch_id.in_(ids),
                model.business_day.in_(days) if len(days) > 1 else model.business_day == days[0],
            )
            for days, ids in groups
        )
    )


# --- the overview ----------------------------------------------------------------------------


@dataclass
class QueueNow:
    waiting: int = 0
    oldest: datetime | None = None  # `queue_since` of the longest-waiting ticket

    def longest_s(self, now: datetime) -> int | None:
        if self.oldest is None:
            return None
        return max(0, int((now - self.oldest).total_seconds()))


def waiting_now(session, branch_ids: Sequence[int]) -> dict[tuple[int, int], QueueNow]:
    """{(branch id, service id): QueueNow} of the waiting tickets (targeted ones too)."""
    if not branch_ids:
        return {}
    rows = session.execute(
        select(Ticket.branch_id, Ticket.service_id, func.count(), func.min(Ticket.queue_since))
        .where(Ticket.branch_id.in_(list(branch_ids)), Ticket.status == TicketStatus.WAITING)
        .group_by(Ticket.branch_id, Ticket.service_id)
    ).all()
    return {(b, s): QueueNow(n, oldest) for b, s, n, oldest in rows}


def open_counters(session, branch_ids: Sequence[int]) -> dict[int, int]:
    if not branch_ids:
        return {}
    return dict(
        session.execute(
            select(Counter.branch_id, func.count())
            .where(Counter.branch_id.in_(list(branch_ids)), Counter.status == CounterStatus.OPEN)
            .group_by(Counter.branch_id)
        ).all()
    )


def served_today(session, branches: Sequence[Branch], now: datetime) -> dict[int, int]:
    """Steps finished on each branch's business day of `now`."""
    if not branches:
        return {}
    groups = _branches_by_day(branches, lambda b: [b.business_day(now)])
    return dict(
        session.execute(
            select(Ticket.branch_id, func.count())
            .where(_on_days(Ticket, groups), Ticket.status == TicketStatus.FINISHED)
            .group_by(Ticket.branch_id)
        ).all()
    )


@dataclass(frozen=True)
class WaitSum:
    n: int
    total_s: float

    @property
    def mean_s(self) -> int | None:
        return round(self.total_s / self.n) if self.n else None


def waits_called_since(
    session, branches: Sequence[Branch], since: datetime, now: datetime
) -> dict[int, WaitSum]:
    """Waits of the steps first called in [since, now], per branch (mean = total / n)."""
    if not branches:
        return {}
    groups = _branches_by_day(branches, lambda b: [b.business_day(since), b.business_day(now)])
    seconds = _seconds_between(session, Ticket.called_at, Ticket.issued_at)
    rows = session.execute(
        select(Ticket.branch_id, func.count(), func.sum(seconds))
        .where(_on_days(Ticket, groups), Ticket.called_at >= since, Ticket.called_at <= now)
        .group_by(Ticket.branch_id)
    ).all()
    return {b: WaitSum(n, max(0.0, float(total or 0))) for b, n, total in rows}


def feedback_today(session, branches: Sequence[Branch], now: datetime) -> dict[int, Tally]:
    """Each branch's feedback counts of its business day (`feedback.metric_queries`)."""
    if not branches:
        return {}
    groups = _branches_by_day(branches, lambda b: [b.business_day(now)])
    return mq._grouped(FeedbackResponse.branch_id, [_on_days(FeedbackResponse, groups)])


def alerts_by_branch(session, branch_ids: Sequence[int]) -> dict[int, list]:
    from ..alerts import queries as alert_queries  # the alerts domain, read at call time

    result: dict[int, list] = defaultdict(list)
    if branch_ids:
        for alert in alert_queries.open_alerts(session, list(branch_ids)):
            result[alert.branch_id].append(alert)
    return result


def is_acknowledged(alert) -> bool:
    return str(getattr(alert, "status", "")) == "acknowledged"


def status_colour(
    queues: Iterable[tuple[QueueNow, int]], alerts: list, now: datetime, amber_share: float
) -> str:
    """red: an open alert nobody acknowledged, or a queue waiting longer than its service's
    target; amber: an acknowledged alert still open, or a queue at `amber_share` of its target;
    green otherwise. `queues`: (queue, target wait s)."""
    colour = GREEN
    for queue, target_s in queues:
        longest = queue.longest_s(now)
        if longest is None:
            continue
        if longest > target_s:
            return RED
        if longest >= amber_share * target_s:
            colour = AMBER
    if any(not is_acknowledged(a) for a in alerts):
        return RED
    if alerts:
        colour = AMBER
    return colour


@dataclass
class BranchRow:
    branch: Branch
    status: str
    waiting: int
    longest_wait_s: int | None
    hour_wait: WaitSum
    open_counters: int
    served_today: int
    feedback: Tally
    alerts: list = field(default_factory=list)


def overview(
    session, branches: Sequence[Branch], now: datetime, amber_share: float = DEFAULT_AMBER_SHARE
) -> list[BranchRow]:
    """One row per branch in `branches` (their order kept)."""
    ids = [b.id for b in branches]
    queues = waiting_now(session, ids)
    targets = (
        {
            s.id: s.target_wait_s
            for s in session.scalars(select(Service).where(Service.branch_id.in_(ids)))
        }
        if ids
        else {}
    )
    counters = open_counters(session, ids)
    served = served_today(session, branches, now)
    hour = waits_called_since(session, branches, now - HOUR, now)
    tallies = feedback_today(session, branches, now)
    alerts = alerts_by_branch(session, ids)
    per_branch: dict[int, list[tuple[QueueNow, int]]] = defaultdict(list)
    for (branch_id, service_id), queue in queues.items():
        per_branch[branch_id].append((queue, targets.get(service_id, 0) or 1))
    rows = []
    for branch in branches:
        mine = per_branch.get(branch.id, [])
        longest = [q.longest_s(now) for q, _ in mine if q.oldest is not None]
        rows.append(
            BranchRow(
                branch=branch,
                status=status_colour(mine, alerts.get(branch.id, []), now, amber_share),
                waiting=sum(q.waiting for q, _ in mine),
                longest_wait_s=max(longest) if longest else None,
                hour_wait=hour.get(branch.id, WaitSum(0, 0.0)),
                open_counters=counters.get(branch.id, 0),
                served_today=served.get(branch.id, 0),
                feedback=tallies.get(branch.id, Tally()),
                alerts=alerts.get(branch.id, []),
            )
        )
    return rows


# --- one branch ------------------------------------------------------------------------------


def _seconds(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return max(0, round((later - earlier).total_seconds()))


def _mean(values: list[int]) -> int | None:
    return round(statistics.fmean(values)) if values else None


@dataclass
class QueueRow:
    service: Service
    waiting: int
    longest_wait_s: int | None
    estimated_wait_s: int | None
    open_counters: int
    target_wait_s: int
    colour: str
    estimated_wait_range: dict | None = None  # {low_s, high_s}: what customers read


@dataclass
class CounterRow:
    counter: Counter
    state: str  # serving | idle | paused | closed
    ticket: Ticket | None
    elapsed_s: int | None
    served_today: int
    mean_service_s: int | None


@dataclass
class ServiceRow:
    service: Service
    served: int
    mean_service_s: int | None
    median_service_s: int | None
    called: int
    within_target: int

    @property
    def within_share(self) -> float | None:
        return 100 * self.within_target / self.called if self.called else None


@dataclass
class HourRow:
    hour: int  # local hour of the day
    peak_waiting: int
    called: int
    mean_wait_s: int | None
    longest_wait_s: int | None


@dataclass
class BranchView:
    branch: Branch
    day: date
    queues: list[QueueRow]
    counters: list[CounterRow]
    services: list[ServiceRow]
    hours: list[HourRow]
    row: BranchRow

    @property
    def called(self) -> int:
        return sum(s.called for s in self.services)

    @property
    def within_target(self) -> int:
        return sum(s.within_target for s in self.services)

    @property
    def within_share(self) -> float | None:
        return 100 * self.within_target / self.called if self.called else None


def _today_tickets(session, branch: Branch, day: date) -> list:
    return session.execute(
        select(
            Ticket.id,
            Ticket.service_id,
            Ticket.status,
            Ticket.issued_at,
            Ticket.called_at,
            Ticket.started_at,
            Ticket.finished_at,
            Ticket.counter_id,
        ).where(Ticket.branch_id == branch.id, Ticket.business_day == day)
    ).all()


def _hours(branch: Branch, day: date, tickets: list, now: datetime) -> list[HourRow]:
    """Per local hour of the day, from the opening hour (or the first ticket's, if earlier;
    a branch open all day: the first ticket's) to the current hour (or the closing hour): the
    most customers waiting at once, the steps called and their waits. A step waits from its
    arrival until its first call (or until it left the queue)."""
    tz = branch.tz
    start, end = branch.day_bounds(day)
    stop = min(now, end)
    hours = set()
    for opens, closes in branch.hours_on(day):
        if opens.hour == 0 and closes.hour == 23:
            continue  # open all day: the tickets say when the day began
        last = closes.hour if closes.minute == 0 and closes.second == 0 else closes.hour + 1
        hours.update(range(opens.hour, min(24, last)))
    for t in tickets:
        hours.add(t.issued_at.astimezone(tz).hour)
    if stop <= start:
        return []
    current = (stop - timedelta(microseconds=1)).astimezone(tz).hour
    hours = {h for h in hours if h <= current}
    if not hours:
        return []
    first, last = min(hours), max(hours)
    events: list[tuple[datetime, int]] = []
    for t in tickets:
        leave = t.called_at or (t.finished_at if t.status != TicketStatus.WAITING else None)
        events.append((t.issued_at, 1))
        if leave is not None:
            events.append((leave, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # a departure before an arrival at the same instant
    waits: dict[int, list[int]] = defaultdict(list)
    for t in tickets:
        if t.called_at is not None and start <= t.called_at < end:
            waits[t.called_at.astimezone(tz).hour].append(_seconds(t.called_at, t.issued_at))
    rows = []
    level, i = 0, 0
    for hour in range(first, last + 1):
        h_start = datetime.combine(day, datetime.min.time().replace(hour=hour), tzinfo=tz)
        h_end = h_start + HOUR
        while i < len(events) and events[i][0] < h_start:
            level += events[i][1]
            i += 1
        peak = level
        while i < len(events) and events[i][0] < h_end:
            level += events[i][1]
            i += 1
            peak = max(peak, level)
        hour_waits = waits.get(hour, [])
        rows.append(
            HourRow(
                hour=hour,
                peak_waiting=peak,
                called=len(hour_waits),
                mean_wait_s=_mean(hour_waits),
                longest_wait_s=max(hour_waits) if hour_waits else None,
            )
        )
    return rows


def branch_view(
    session, branch: Branch, now: datetime, amber_share: float = DEFAULT_AMBER_SHARE
) -> BranchView:
    day = branch.business_day(now)
    row = overview(session, [branch], now, amber_share)[0]
    queues_now = waiting_now(session, [branch.id])
    estimates = {q["code"]: q for q in service_queues(session, branch)}
    queues = []
    for service in branch.services:
        if not service.active:
            continue
        queue = queues_now.get((branch.id, service.id), QueueNow())
        live = estimates.get(service.code, {})
        queues.append(
            QueueRow(
                service=service,
                waiting=queue.waiting,
                longest_wait_s=queue.longest_s(now),
                estimated_wait_s=live.get("estimated_wait_s"),
                open_counters=live.get("open_counters", 0),
                target_wait_s=service.target_wait_s,
                colour=status_colour([(queue, service.target_wait_s)], [], now, amber_share),
                estimated_wait_range=live.get("estimated_wait_range"),
            )
        )
    tickets = _today_tickets(session, branch, day)
    active = {
        t.counter_id: t
        for t in session.scalars(
            select(Ticket).where(
                Ticket.branch_id == branch.id,
                Ticket.counter_id.is_not(None),
                Ticket.status.in_((TicketStatus.CALLED, TicketStatus.SERVING)),
            )
        )
    }
    done_by_counter: dict[int, list[int | None]] = defaultdict(list)
    done_by_service: dict[int, list[int | None]] = defaultdict(list)
    called_by_service: dict[int, list[int]] = defaultdict(list)
    for t in tickets:
        if t.status == TicketStatus.FINISHED:
            length = _seconds(t.finished_at, t.started_at)
            done_by_service[t.service_id].append(length)
            if t.counter_id is not None:
                done_by_counter[t.counter_id].append(length)
        if t.called_at is not None:
            called_by_service[t.service_id].append(_seconds(t.called_at, t.issued_at))
    counters = []
    for counter in branch.counters:
        ticket = active.get(counter.id)
        if counter.status == CounterStatus.CLOSED:
            state = "closed"
        elif counter.status == CounterStatus.PAUSED:
            state = "paused"
        else:
            state = "serving" if ticket is not None else "idle"
        elapsed = None
        if ticket is not None:
            elapsed = _seconds(now, ticket.started_at or ticket.last_called_at or ticket.called_at)
        done = done_by_counter.get(counter.id, [])
        counters.append(
            CounterRow(
                counter=counter,
                state=state,
                ticket=ticket,
                elapsed_s=elapsed,
                served_today=len(done),
                mean_service_s=_mean([s for s in done if s is not None]),
            )
        )
    services = []
    for service in branch.services:
        done = [s for s in done_by_service.get(service.id, []) if s is not None]
        waits = called_by_service.get(service.id, [])
        if not service.active and not done and not waits:
            continue
        services.append(
            ServiceRow(
                service=service,
                served=len(done_by_service.get(service.id, [])),
                mean_service_s=_mean(done),
                median_service_s=round(statistics.median(done)) if done else None,
                called=len(waits),
                within_target=sum(1 for w in waits if w <= service.target_wait_s),
            )
        )
    return BranchView(
        branch=branch,
        day=day,
        queues=queues,
        counters=counters,
        services=services,
        hours=_hours(branch, day, tickets, now),
        row=row,
    )


def nice_grid(top: float, steps: int = 4) -> list[float]:
    """Grid values 0..a round number >= `top` in `steps` equal steps (1, 2, 2.5, 5 x 10^k)."""
    top = max(float(top), float(steps))  # at least one per step: whole numbers
    raw = top / steps
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw:
            break
    return [round(i * step, 2) for i in range(steps + 1)]
