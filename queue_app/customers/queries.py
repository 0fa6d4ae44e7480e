"""Read-only questions about a customer: what the counter screen shows before they arrive.

`customer_history` reads earlier visits and their steps in two queries, whatever the number of
visits. Ratings and cases belong to the feedback and case domains, which do not exist yet:
`customer_ratings` and `customer_open_cases` are where those queries go, and until then they
honestly answer that nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..accounts.models import User
from ..branches.models import Branch, Counter, Service
from ..extensions import db
from ..tickets.models import Ticket, TicketStatus, Visit


@dataclass
class HistoryStep:
    """One step (ticket) of an earlier visit."""

    ticket_id: int
    number: str
    service_code: str
    service_names: dict
    service_name: str
    status: TicketStatus
    called_at: datetime | None
    finished_at: datetime | None
    staff_name: str | None
    counter_name: str | None
    outcome_code: str | None
    notes: str | None
    handover_note: str | None

    def service_label(self, locale: str | None) -> str:
        return (self.service_names or {}).get(locale or "", self.service_name)


@dataclass
class HistoryVisit:
    visit_id: int
    arrived_at: datetime
    closed_at: datetime | None
    branch_code: str
    branch_name: str
    branch_timezone: str
    steps: list[HistoryStep] = field(default_factory=list)


def customer_history(
    customer_id: int, *, limit: int = 10, exclude_visit_id: int | None = None
) -> list[HistoryVisit]:
    """The customer's latest `limit` visits (newest first), each with its steps in order.

    Two queries: the visits with their branch, then every step of those visits with its
    service, the member of staff who served it and the counter. `exclude_visit_id` leaves out
    the visit in progress.
    """
    visits_q = (
        select(
            Visit.id,
            Visit.arrived_at,
            Visit.closed_at,
            Branch.code,
            Branch.name,
            Branch.timezone,
        )
        .join(Branch, Branch.id == Visit.branch_id)
        .where(Visit.customer_id == customer_id)
        .order_by(Visit.arrived_at.desc(), Visit.id.desc())
        .limit(limit)
    )
    if exclude_visit_id is not None:
        visits_q = visits_q.where(Visit.id != exclude_visit_id)
    visits = [
        HistoryVisit(
            visit_id=row[0],
            arrived_at=row[1],
            closed_at=row[2],
            branch_code=row[3],
            branch_name=row[4],
            branch_timezone=row[5],
        )
        for row in db.session.execute(visits_q)
    ]
    if not visits:
        return []
    by_id = {v.visit_id: v for v in visits}
    staff = aliased(User)
    steps_q = (
        select(
            Ticket.visit_id,
            Ticket.id,
            Ticket.number,
            Service.code,
            Service.names,
            Service.name,
            Ticket.status,
            Ticket.called_at,
            Ticket.finished_at,
            staff.display_name,
            Counter.name,
            Ticket.outcome_code,
            Ticket.notes,
            Ticket.handover_note,
        )
        .join(Service, Service.id == Ticket.service_id)
        .outerjoin(staff, staff.id == Ticket.staff_id)
        .outerjoin(Counter, Counter.id == Ticket.counter_id)
        .where(Ticket.visit_id.in_(list(by_id)))
        .order_by(Ticket.visit_id, Ticket.step)
    )
    for row in db.session.execute(steps_q):
        by_id[row[0]].steps.append(HistoryStep(*row[1:]))
    return visits


def customer_ratings(customer_id: int, *, limit: int = 5) -> list:
    """The customer's earlier ratings and comments, newest first.

    Ratings are recorded by the feedback domain, which is not built yet: no rating can exist,
    so the answer is an empty list, and the counter screen says "no ratings recorded yet".
    The feedback issue replaces this body with its query.
    """
    return []


def customer_open_cases(customer_id: int) -> list:
    """The customer's open cases (from negative feedback), oldest first.

    Cases are recorded by the case domain, which is not built yet: the answer is an empty
    list until the case issue replaces this body with its query.
    """
    return []
