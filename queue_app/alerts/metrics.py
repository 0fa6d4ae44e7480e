"""The values the alert rules watch, computed from a branch's live state at `now` (read only).

Subjects: a rule without a service watches the branch as a whole (subject "branch"), a rule
with one watches that service's queue ("service:<id>"); the idle-counter metric watches each
counter (of the service, if any) on its own ("counter:<id>").

- `longest_wait_s`: now - `queue_since` of the longest-waiting ticket of today (0 when nobody
  waits).
- `queue_length`: the waiting tickets of today.
- `ewt_s`: what a ticket issued now would be told (`new_ticket_wait`); the branch as a whole:
  the worst service. None (no evidence) when no counter serving it is open.
- `idle_counter_s`: an open counter with no ticket called or in service, while a ticket it may
  call waits (its services, or sent to it; a remote ticket whose arrival is not confirmed is
  passed over by `call_next`, so it does not count): now - the later of when it became idle
  (opened, or its last ticket ended) and the queue_since of the oldest such ticket. 0 otherwise.
- `no_show_rate`: among today's (and, across midnight, yesterday's) tickets called and ended in
  the last `window_s` (finished, transferred or no-show), the share of no-shows; None (no
  evidence) below `min_count` of them.

Every value is a float; None means "no evidence", which never raises and counts as calm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..branches.models import Branch, Counter, CounterService, CounterStatus, Service
from ..tickets.models import Ticket, TicketStatus
from .models import AlertRule, Metric

ENDED = (TicketStatus.FINISHED, TicketStatus.NO_SHOW, TicketStatus.TRANSFERRED)


@dataclass(frozen=True)
class Reading:
    subject: str
    value: float | None
    service_id: int | None = None
    counter_id: int | None = None


def new_ticket_wait(session: Session, branch: Branch, service: Service, now: datetime):
    """The estimated wait (seconds) of a ticket of `service` issued at `now`; None: unknown.

    The one place the EWT metric asks: the estimator's wait of a new ticket of the service, as
    a ticket issued now is quoted (`waits.live.quote`: the estimate of the branch's last
    change); None while no open counter serves the service.
    """
    from ..waits import live

    return live.wire(live.quote(branch, service.id))["estimated_wait_s"]


class _Floor:
    """What the rules of one branch need, read once per evaluation."""

    def __init__(self, session: Session, branch: Branch, now: datetime):
        self.session, self.branch, self.now = session, branch, now
        self.day = branch.business_day(now)
        self._waiting = None
        self._counters = None

    @property
    def waiting(self) -> list:
        """(service_id, target_counter_id, confirmed, count, oldest queue_since) of today."""
        if self._waiting is None:
            self._waiting = self.session.execute(
                select(
                    Ticket.service_id,
                    Ticket.target_counter_id,
                    Ticket.arrival_confirmed,
                    func.count(),
                    func.min(Ticket.queue_since),
                )
                .where(
                    Ticket.branch_id == self.branch.id,
                    Ticket.status == TicketStatus.WAITING,
                    Ticket.business_day == self.day,
                )
                .group_by(Ticket.service_id, Ticket.target_counter_id, Ticket.arrival_confirmed)
            ).all()
        return self._waiting

    def _age(self, since: datetime | None) -> float:
        if since is None:
            return 0.0
        return max(0.0, (self.now - since).total_seconds())

    def longest_wait(self, service_id: int | None) -> float:
        oldest = [row[4] for row in self.waiting if service_id is None or row[0] == service_id]
        return self._age(min(oldest)) if oldest else 0.0

    def queue_length(self, service_id: int | None) -> float:
        return float(
            sum(row[3] for row in self.waiting if service_id is None or row[0] == service_id)
        )

    def ewt(self, service: Service | None) -> float | None:
        services = (
            [service] if service is not None else [s for s in self.branch.services if s.active]
        )
        values = [new_ticket_wait(self.session, self.branch, s, self.now) for s in services]
        known = [float(v) for v in values if v is not None]
        return max(known) if known else None

    def counters(self) -> list[tuple[Counter, set[int]]]:
        if self._counters is None:
            links = defaultdict(set)
            for counter_id, service_id in self.session.execute(
                select(CounterService.counter_id, CounterService.service_id)
                .join(Counter, Counter.id == CounterService.counter_id)
                .where(Counter.branch_id == self.branch.id)
            ):
                links[counter_id].add(service_id)
            counters = self.session.scalars(
                select(Counter).where(Counter.branch_id == self.branch.id).order_by(Counter.id)
            ).all()
            self._counters = [(c, links[c.id]) for c in counters]
        return self._counters

    def idle(self, service_id: int | None) -> list[Reading]:
        counters = [
            (c, served)
            for c, served in self.counters()
            if service_id is None or service_id in served
        ]
        if not counters:
            return []
        busy = set(
            self.session.scalars(
                select(Ticket.counter_id).where(
                    Ticket.branch_id == self.branch.id,
                    Ticket.counter_id.is_not(None),
                    Ticket.status.in_((TicketStatus.CALLED, TicketStatus.SERVING)),
                )
            )
        )
        last_end = dict(
            self.session.execute(
                select(Ticket.counter_id, func.max(Ticket.finished_at))
                .where(
                    Ticket.branch_id == self.branch.id,
                    Ticket.business_day == self.day,
                    Ticket.counter_id.is_not(None),
                    Ticket.finished_at.is_not(None),
                )
                .group_by(Ticket.counter_id)
            ).all()
        )
        readings = []
        for counter, served in counters:
            value = 0.0
            if counter.status == CounterStatus.OPEN and counter.id not in busy:
                oldest = [
                    since
                    for svc, target, confirmed, _n, since in self.waiting
                    if confirmed
                    and (service_id is None or svc == service_id)
                    and (target == counter.id or (target is None and svc in served))
                ]
                if oldest:
                    # idle since it opened or its last ticket ended, whichever is later
                    since = (counter.status_since, last_end.get(counter.id))
                    value = self._age(max([min(oldest), *(t for t in since if t is not None)]))
            readings.append(
                Reading(f"counter:{counter.id}", value, service_id, counter_id=counter.id)
            )
        return readings

    def no_show_rate(self, service_id: int | None, window_s: int, min_count: int):
        start = self.now - timedelta(seconds=window_s)
        days = {self.branch.business_day(start), self.day}
        conditions = [
            Ticket.branch_id == self.branch.id,
            Ticket.business_day.in_(sorted(days)),
            Ticket.status.in_(ENDED),
            Ticket.called_at.is_not(None),
            Ticket.finished_at > start,
            Ticket.finished_at <= self.now,
        ]
        if service_id is not None:
            conditions.append(Ticket.service_id == service_id)
        total, no_shows = self.session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((Ticket.status == TicketStatus.NO_SHOW, 1), else_=0)), 0
                ),
            ).where(and_(*conditions))
        ).one()
        if total < min_count:
            return None
        return no_shows / total


def subject_of(rule: AlertRule) -> str:
    return f"service:{rule.service_id}" if rule.service_id is not None else "branch"


def measure(
    session: Session, branch: Branch, rules: list[AlertRule], now: datetime
) -> dict[int, list[Reading]]:
    """rule id -> its readings (one per subject)."""
    floor = _Floor(session, branch, now)
    result: dict[int, list[Reading]] = {}
    for rule in rules:
        service = rule.service
        if service is not None and not service.active:
            result[rule.id] = []  # its open alerts find no reading: they calm down
            continue
        sid = rule.service_id
        subject = subject_of(rule)
        if rule.metric == Metric.IDLE_COUNTER_S:
            result[rule.id] = floor.idle(sid)
            continue
        if rule.metric == Metric.LONGEST_WAIT_S:
            value = floor.longest_wait(sid)
        elif rule.metric == Metric.QUEUE_LENGTH:
            value = floor.queue_length(sid)
        elif rule.metric == Metric.EWT_S:
            value = floor.ewt(service)
        else:
            value = floor.no_show_rate(sid, rule.window_s, rule.min_count)
        result[rule.id] = [Reading(subject, value, sid)]
    return result
