"""Read-only questions about tickets: position, a simple wait estimate, waiting lists."""

from __future__ import annotations

import math

from sqlalchemy import func, or_, select, tuple_

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


def position(ticket: Ticket) -> int | None:
    """1 for the next in line of the ticket's queue; None when it is not waiting.

    A ticket sent to one counter queues among the tickets sent to that counter.
    """
    if ticket.status != TicketStatus.WAITING:
        return None
    if ticket.target_counter_id is not None:
        same_queue = Ticket.target_counter_id == ticket.target_counter_id
    else:
        same_queue = (Ticket.service_id == ticket.service_id) & Ticket.target_counter_id.is_(None)
    ahead = db.session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.branch_id == ticket.branch_id,
            Ticket.status == TicketStatus.WAITING,
            same_queue,
            tuple_(Ticket.queue_since, Ticket.id) < tuple_(ticket.queue_since, ticket.id),
        )
    )
    return ahead + 1


def open_counters_for(service_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(CounterService)
        .join(Counter, Counter.id == CounterService.counter_id)
        .where(CounterService.service_id == service_id, Counter.status == CounterStatus.OPEN)
    )


def estimated_wait_s(ticket: Ticket, pos: int | None) -> int | None:
    """Queue-length estimate: position x expected service time / open counters for the service.

    None when the ticket is not waiting or no counter serving its service is open: no number
    is better than an invented one. The estimator of the live-management work replaces this.
    """
    if pos is None:
        return None
    if ticket.target_counter_id is not None:
        counters = (
            1
            if db.session.get(Counter, ticket.target_counter_id).status == CounterStatus.OPEN
            else 0
        )
    else:
        counters = open_counters_for(ticket.service_id)
    if counters == 0:
        return None
    return math.ceil(pos * ticket.service.expected_duration_s / counters)


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
