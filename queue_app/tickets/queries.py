"""Read-only questions about tickets: position, the estimated wait (`waits.live`), waiting
lists."""

from __future__ import annotations

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import joinedload

from ..branches.models import Counter, CounterService, CounterStatus
from ..extensions import db
from .models import Ticket, TicketStatus, Visit


def ticket_by_token(token: str) -> Ticket | None:
    """The current (latest) step of the visit that owns this token."""
    return db.session.scalar(
        select(Ticket)
        .join(Visit, Ticket.visit_id == Visit.id)
        .where(Visit.token == token)
        .order_by(Ticket.step.desc())
        .limit(1)
    )


def standing(ticket: Ticket, *, event_seq: int | None = None) -> tuple[int | None, int | None]:
    """(position, estimated wait in seconds) of a waiting ticket, in one query.

    Position 1 is the next in line of the ticket's queue; a ticket sent to one counter queues
    among the tickets sent to that counter. The estimate is the estimator's (`waits.live`, the
    mean of its simulated waits from the branch's last change). Both are None when the ticket
    is not waiting; the estimate is None when no counter for it is open: no number is better
    than an invented one. `event_seq`: as `waits.live.branch_estimates` takes it.
    """
    if ticket.status != TicketStatus.WAITING:
        return None, None
    if ticket.target_counter_id is not None:
        same_queue = Ticket.target_counter_id == ticket.target_counter_id
        serving = select(func.count()).where(
            Counter.id == ticket.target_counter_id, Counter.status == CounterStatus.OPEN
        )
    else:
        same_queue = (Ticket.service_id == ticket.service_id) & Ticket.target_counter_id.is_(None)
        serving = (
            select(func.count())
            .select_from(CounterService)
            .join(Counter, Counter.id == CounterService.counter_id)
            .where(
                CounterService.service_id == ticket.service_id,
                Counter.status == CounterStatus.OPEN,
            )
        )
    ahead = (
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.branch_id == ticket.branch_id,
            Ticket.status == TicketStatus.WAITING,
            same_queue,
            tuple_(Ticket.queue_since, Ticket.id) < tuple_(ticket.queue_since, ticket.id),
        )
    )
    row = db.session.execute(
        select(ahead.scalar_subquery().label("ahead"), serving.scalar_subquery().label("open"))
    ).one()
    pos = row.ahead + 1
    if row.open == 0:
        return pos, None
    return pos, estimated_wait(ticket, event_seq=event_seq)


def issue_standing(ticket: Ticket) -> tuple[int | None, int | None]:
    """The issue answer's (position, estimate): the place now and the wait quoted at issue
    (`Ticket.quoted_wait_s`, as the one-statement path answers), no new estimate."""
    if ticket.status != TicketStatus.WAITING:
        return None, None
    ahead = db.session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.branch_id == ticket.branch_id,
            Ticket.status == TicketStatus.WAITING,
            Ticket.service_id == ticket.service_id,
            Ticket.target_counter_id.is_(None),
            tuple_(Ticket.queue_since, Ticket.id) < tuple_(ticket.queue_since, ticket.id),
        )
    )
    return ahead + 1, ticket.quoted_wait_s


def ticket_estimate(ticket: Ticket, *, event_seq: int | None = None):
    """The estimator's `Estimate` of a waiting ticket (`waits.live`, cached per branch change);
    None when no open counter serves it. `event_seq`: as `waits.live.branch_estimates` takes
    it."""
    from ..waits import live

    return live.branch_estimates(ticket.branch, event_seq=event_seq).ticket_wait(ticket)


def estimated_wait(ticket: Ticket, *, event_seq: int | None = None) -> int | None:
    from ..waits import live

    return live.wire(ticket_estimate(ticket, event_seq=event_seq))["estimated_wait_s"]


def open_counters(
    branch_id: int, counters: list[Counter] | None = None
) -> tuple[dict[int, int], set[int]]:
    """(the number of open counters serving each service, by service id; the ids of the open
    counters) of a branch, in one query; none when `counters` is given: the branch's counters
    (all of them, `Branch.counters`) read with their service links in this transaction."""
    if counters is None:
        rows = db.session.execute(
            select(Counter.id, CounterService.service_id)
            .outerjoin(CounterService, CounterService.counter_id == Counter.id)
            .where(Counter.branch_id == branch_id, Counter.status == CounterStatus.OPEN)
        ).all()
    else:
        opened = [c for c in counters if c.status == CounterStatus.OPEN]
        rows = [(c.id, None) for c in opened]
        rows += [(c.id, link.service_id) for c in opened for link in c.service_links]
    by_service: dict[int, int] = {}
    ids: set[int] = set()
    for counter_id, service_id in rows:
        ids.add(counter_id)
        if service_id is not None:
            by_service[service_id] = by_service.get(service_id, 0) + 1
    return by_service, ids


def standings(
    branch_id: int,
    waiting: list[Ticket],
    *,
    opened: tuple[dict[int, int], set[int]] | None = None,
    event_seq: int | None = None,
) -> dict[int, tuple[int, int | None]]:
    """`standing` of every ticket of a branch's whole waiting list, in one query (none when
    `opened` is given: `open_counters` as the caller read it in this transaction).

    `waiting` must be all the branch's waiting tickets in queue order (`waiting_tickets`):
    positions are then counted in that order, queue by queue, instead of one count per ticket.
    `event_seq`: as `waits.live.branch_estimates` takes it.
    """
    open_by_service, open_ids = opened if opened is not None else open_counters(branch_id)
    from ..waits import live

    estimates = None
    seen: dict[tuple, int] = {}
    result = {}
    for ticket in waiting:
        if ticket.target_counter_id is not None:
            queue = ("counter", ticket.target_counter_id)
            serving = 1 if ticket.target_counter_id in open_ids else 0
        else:
            queue = ("service", ticket.service_id)
            serving = open_by_service.get(ticket.service_id, 0)
        pos = seen.get(queue, 0) + 1
        seen[queue] = pos
        wait = None
        if serving:
            if estimates is None:
                estimates = live.branch_estimates(ticket.branch, event_seq=event_seq)
            wait = live.wire(estimates.ticket_wait(ticket))["estimated_wait_s"]
        result[ticket.id] = (pos, wait)
    return result


def counters_of(branch_id: int) -> list[Counter]:
    """The branch's counters in their order, with their staff and their services, in one
    statement (`Counter.services` and `Counter.staff` then read nothing)."""
    return list(
        db.session.scalars(
            select(Counter)
            .options(joinedload(Counter.staff), joinedload(Counter.service_links))
            .where(Counter.branch_id == branch_id)
            .order_by(Counter.position, Counter.id)
        ).unique()
    )


def active_tickets_by_counter(branch_id: int, *, customers: bool = False) -> dict[int, Ticket]:
    """The ticket each counter of the branch has called or is serving, with its service (and
    with `customers` its visit and the visit's customer), in one query."""
    options = [joinedload(Ticket.service)]
    if customers:
        options.append(joinedload(Ticket.visit).joinedload(Visit.customer))
    rows = db.session.scalars(
        select(Ticket)
        .options(*options)
        .where(
            Ticket.branch_id == branch_id,
            Ticket.counter_id.is_not(None),
            Ticket.status.in_((TicketStatus.CALLED, TicketStatus.SERVING)),
        )
    )
    return {t.counter_id: t for t in rows}


def waiting_tickets(branch_id: int, service_ids: list[int] | None = None, counter_id=None):
    """The branch's waiting tickets in queue order, optionally only what a counter may call."""
    query = select(Ticket).where(
        Ticket.branch_id == branch_id, Ticket.status == TicketStatus.WAITING
    )
    if service_ids is not None:
        query = query.where(
            or_(
                Ticket.service_id.in_(service_ids) & Ticket.target_counter_id.is_(None),
                Ticket.target_counter_id == counter_id,
            )
        )
    return db.session.scalars(query.order_by(Ticket.queue_since, Ticket.id)).all()
