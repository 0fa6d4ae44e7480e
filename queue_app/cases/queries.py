"""Reading cases: the list a person may see (with filters), one case's facts, and the
detractor-to-promoter conversion rate of the recovery survey. Never writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy import case as when

from ..accounts.models import Role, User, user_branches
from ..branches.models import Branch
from ..extensions import db
from ..feedback.models import FeedbackResponse
from .models import Case, CaseStatus

DETRACTOR_MAX = 6  # DESIGN.md: 0-6 detractors, 7-8 passives, 9-10 promoters
PROMOTER_MIN = 9


def sees_every_branch(user: User) -> bool:
    """Branch managers see the cases of their own branches; the other CX roles (the CX team,
    executives, admins) see the whole network's."""
    return user.role in {Role.CX_AGENT, Role.EXECUTIVE, Role.ADMIN}


def may_see(user: User, case: Case) -> bool:
    return sees_every_branch(user) or user.belongs_to(case.branch)


def visible_branches(user: User) -> list[Branch]:
    query = select(Branch).where(Branch.active.is_(True)).order_by(Branch.code)
    if not sees_every_branch(user):
        query = query.join(user_branches, user_branches.c.branch_id == Branch.id).where(
            user_branches.c.user_id == user.id
        )
    return list(db.session.scalars(query))


def case_list_query(
    user: User,
    *,
    status: str | None = None,
    branch: Branch | None = None,
    level: int | None = None,
    owner: User | None = None,
    overdue_at: datetime | None = None,
) -> Select:
    query = select(Case)
    if not sees_every_branch(user):
        query = query.where(
            Case.branch_id.in_(
                select(user_branches.c.branch_id).where(user_branches.c.user_id == user.id)
            )
        )
    if status:
        query = query.where(Case.status == CaseStatus(status))
    if branch is not None:
        query = query.where(Case.branch_id == branch.id)
    if level is not None:
        query = query.where(Case.level == level)
    if owner is not None:
        query = query.where(Case.owner_id == owner.id)
    if overdue_at is not None:
        query = query.where(Case.due_at.is_not(None), Case.due_at <= overdue_at)
    # the most urgent first: working cases by due time (the oldest first at the same time),
    # those without a clock after them, resolved ones last
    return query.order_by(
        (Case.status == CaseStatus.RESOLVED).asc(),
        Case.due_at.is_(None).asc(),
        Case.due_at.asc(),
        Case.opened_at.asc(),
        Case.id.asc(),
    )


def list_cases(user: User, *, limit: int = 200, **filters) -> list[Case]:
    return list(db.session.scalars(case_list_query(user, **filters).limit(limit)))


@dataclass
class Conversion:
    answered: int  # cases opened from a detractor whose customer answered the recovery survey
    promoters: int  # of those, answers of 9 or 10
    rate: float | None  # promoters / answered; None without any answer

    def as_dict(self) -> dict:
        return {"answered": self.answered, "promoters": self.promoters, "rate": self.rate}


def detractor_conversion(
    *,
    branch_ids: list[int] | None = None,
    opened_from: datetime | None = None,
    opened_to: datetime | None = None,
) -> Conversion:
    """The detractor-to-promoter conversion rate: among the cases opened from a detractor's
    response (NPS 0-6) whose recovery survey was answered, the share answered 9 or 10 (the
    latest answer of a case counts)."""
    query = (
        select(
            func.count(Case.id),
            func.coalesce(func.sum(when((Case.recovery_nps >= PROMOTER_MIN, 1), else_=0)), 0),
        )
        .join(FeedbackResponse, FeedbackResponse.id == Case.response_id)
        .where(
            FeedbackResponse.nps.is_not(None),
            FeedbackResponse.nps <= DETRACTOR_MAX,
            Case.recovery_nps.is_not(None),
        )
    )
    if branch_ids is not None:
        query = query.where(Case.branch_id.in_(branch_ids))
    if opened_from is not None:
        query = query.where(Case.opened_at >= opened_from)
    if opened_to is not None:
        query = query.where(Case.opened_at < opened_to)
    answered, promoters = db.session.execute(query).one()
    answered, promoters = int(answered or 0), int(promoters or 0)
    return Conversion(answered, promoters, promoters / answered if answered else None)


def has_open_case(customer_id: int) -> bool:
    """Whether the customer has a case still being worked (the contact policy: no survey)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Case)
            .where(
                Case.customer_id == customer_id,
                Case.status.in_((CaseStatus.OPEN, CaseStatus.ACKNOWLEDGED)),
            )
        )
        > 0
    )


@dataclass
class CaseFacts:
    """What a case is about: the response, the visit step and the customer."""

    case: Case
    response: FeedbackResponse | None
    ticket: object | None  # tickets.models.Ticket
    counter: object | None  # branches.models.Counter
    staff: User | None
    customer: object | None  # customers.models.Customer
    owner: User | None


def facts_of(case: Case) -> CaseFacts:
    from ..branches.models import Counter
    from ..customers.models import Customer
    from ..tickets.models import Ticket

    response = db.session.get(FeedbackResponse, case.response_id)
    ticket = db.session.get(Ticket, case.ticket_id)
    counter_id = (response and response.counter_id) or (ticket and ticket.counter_id)
    staff_id = (response and response.staff_id) or (ticket and ticket.staff_id)
    return CaseFacts(
        case=case,
        response=response,
        ticket=ticket,
        counter=db.session.get(Counter, counter_id) if counter_id else None,
        staff=db.session.get(User, staff_id) if staff_id else None,
        customer=db.session.get(Customer, case.customer_id) if case.customer_id else None,
        owner=db.session.get(User, case.owner_id) if case.owner_id else None,
    )


def users_by_id(ids) -> dict[int, User]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def assignable_users(case: Case) -> list[User]:
    """Who a case can be given to: active people with a CX role who may see its branch."""
    from ..accounts.models import CX_ROLES

    people = db.session.scalars(
        select(User)
        .where(User.active.is_(True), User.role.in_(list(CX_ROLES)))
        .order_by(User.display_name, User.id)
    )
    return [u for u in people if may_see(u, case)]
