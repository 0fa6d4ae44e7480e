"""Shared builders of the case tests: a branch with its ladder of people, and responses that
arrive the way `feedback.services.record_response` delivers them (the `feedback.received`
in-transaction signal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from queue_app.accounts.models import Role
from queue_app.core.events import in_transaction
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse


@dataclass
class Ladder:
    branch: object
    staff: object  # served the customer
    manager: object  # the branch manager: level 1
    area: object  # the manager's manager: level 2 (and 3: nobody above)
    ceo: object  # executive
    director: object  # executive
    cx: object  # CX agent of another branch (the CX team sees every branch)
    other_manager: object  # manages another branch only
    other_branch: object


def build_ladder(make) -> Ladder:
    branch = make.branch("JKT01")
    other = make.branch("SBY01", timezone="Asia/Jakarta")
    staff = make.user("budi", branches=[branch])
    area = make.user("hendra", role=Role.CX_AGENT, branches=[branch, other])
    manager = make.user("dewi", role=Role.BRANCH_MANAGER, branches=[branch])
    ceo = make.user("rudi", role=Role.EXECUTIVE)
    director = make.user("sari", role=Role.EXECUTIVE)
    cx = make.user("lina", role=Role.CX_AGENT, branches=[other])
    other_manager = make.user("agus", role=Role.BRANCH_MANAGER, branches=[other])
    for person, email in (
        (staff, "budi@bank.co.id"),
        (area, "hendra@bank.co.id"),
        (manager, "dewi@bank.co.id"),
        (ceo, "rudi@bank.co.id"),
        (director, "sari@bank.co.id"),
        (cx, "lina@bank.co.id"),
        (other_manager, "agus@bank.co.id"),
    ):
        person.email = email
    manager.manager = area
    db.session.flush()
    return Ladder(branch, staff, manager, area, ceo, director, cx, other_manager, other)


def customer(phone=None, email=None, name="Ibu Rina", locale="id") -> Customer:
    person = Customer(phone=phone, email=email, name=name, locale=locale)
    db.session.add(person)
    db.session.flush()
    return person


def respond(
    make,
    branch,
    *,
    now: datetime,
    service: str = "teller",
    nps=None,
    csat=None,
    ces=None,
    reasons=(),
    comment=None,
    person: Customer | None = None,
    staff=None,
) -> FeedbackResponse:
    """A response to a new visit step, announced like `record_response` does."""
    ticket = make.ticket(branch, service, now=now, customer=person)
    response = FeedbackResponse(
        ticket_id=ticket.id,
        visit_id=ticket.visit_id,
        branch_id=branch.id,
        service_id=ticket.service_id,
        counter_id=branch.counters[0].id,
        staff_id=staff.id if staff is not None else None,
        customer_id=person.id if person is not None else None,
        channel=FeedbackChannel.TABLET,
        nps=nps,
        csat=csat,
        ces=ces,
        reasons=list(reasons),
        comment=comment,
        locale=person.locale if person is not None else "id",
        submitted_at=now,
        business_day=branch.business_day(now),
        wait_s=1500,
        quoted_wait_s=600,
        service_s=300,
        transfers=0,
    )
    db.session.add(response)
    db.session.flush()
    in_transaction("feedback.received", response=response, session=db.session)
    return response
