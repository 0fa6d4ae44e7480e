from flask import abort, current_app, request
from sqlalchemy import func, select

from ..branches.models import Branch, Counter, CounterService, CounterStatus, Service
from ..core.types import utcnow
from ..customers.services import identify_customer
from ..extensions import db, limiter
from ..tickets import queries
from ..tickets import services as tickets
from ..tickets.models import Priority, Source, Ticket, TicketStatus
from . import presenters
from .auth import (
    bearer_user,
    documents_errors,
    require_floor,
    require_scope,
    require_view,
    scope_security,
    staff_endpoint,
)
from .lookups import branch_or_404, service_in_body
from .parsing import Blueprint
from .schemas import (
    BranchListSchema,
    BranchSchema,
    CounterListSchema,
    IssueTicketSchema,
    ServiceListSchema,
    TicketListSchema,
    TicketSchema,
)

blp = Blueprint("branches", __name__, description="Branches, their services and queues")

STAFF_ONLY_PRIORITIES = {Priority.VIP}
STAFF_ONLY_SOURCES = {Source.STAFF, Source.APPOINTMENT}


@blp.get("/branches")
@blp.response(200, BranchListSchema)
def list_branches():
    """Every active branch of the network."""
    now = utcnow()
    rows = db.session.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.code))
    return {"items": [presenters.branch(b, now) for b in rows]}


@blp.get("/branches/<code>")
@blp.response(200, BranchSchema)
@documents_errors(blp, 404)
def get_branch(code):
    return presenters.branch(branch_or_404(code), utcnow())


@blp.get("/branches/<code>/services")
@blp.response(200, ServiceListSchema)
@documents_errors(blp, 404)
def list_services(code):
    """The services a customer can queue for, with how many wait and how many counters serve."""
    branch = branch_or_404(code)
    waiting = dict(
        db.session.execute(
            select(Ticket.service_id, func.count())
            .where(Ticket.branch_id == branch.id, Ticket.status == TicketStatus.WAITING)
            .group_by(Ticket.service_id)
        ).all()
    )
    serving = dict(
        db.session.execute(
            select(CounterService.service_id, func.count())
            .join(Counter, Counter.id == CounterService.counter_id)
            .where(Counter.branch_id == branch.id, Counter.status == CounterStatus.OPEN)
            .group_by(CounterService.service_id)
        ).all()
    )
    services = db.session.scalars(
        select(Service)
        .where(Service.branch_id == branch.id, Service.active.is_(True))
        .order_by(Service.position, Service.id)
    )
    return {
        "items": [
            presenters.service(s, waiting.get(s.id, 0), serving.get(s.id, 0)) for s in services
        ]
    }


def _plain(data) -> bool:
    """A walk-in ticket anyone may take: no token, no customer to identify, no appointment."""
    customer = data.get("customer") or {}
    return (
        "Authorization" not in request.headers
        and data["priority"] not in STAFF_ONLY_PRIORITIES
        and data["source"] not in STAFF_ONLY_SOURCES
        and "appointment_due_at" not in data
        and not customer.get("phone")
        and not customer.get("external_id")
    )


def _issue_limit() -> str:
    return current_app.config["API_ISSUE_RATE_LIMIT"]


def _token_holder() -> bool:
    """A caller with a valid bearer token is not limited per address (the view answers 401
    to an invalid one, which is counted)."""
    from werkzeug.exceptions import HTTPException

    try:
        return bearer_user() is not None
    except HTTPException:
        return False


@blp.post("/branches/<code>/tickets")
@limiter.limit(_issue_limit, exempt_when=_token_holder)
@blp.arguments(IssueTicketSchema())
@blp.response(201, TicketSchema)
@documents_errors(blp, 400, 401, 403, 404, 409, 429)
@blp.doc(security=[{}, *scope_security("tickets:write")])
def issue_ticket(data, code):
    """Issue a ticket (kiosks and phones; no token needed).

    `priority: vip` and the sources `staff` and `appointment` need a staff token of the branch.
    A customer's phone number is stored in E.164 (`0812-3456-7890` at an Indonesian branch
    is `+6281234567890`); an invalid one is refused (422, `invalid_phone`).
    """
    now = utcnow()
    if _plain(data):
        # PostgreSQL: one statement, no lookups (tickets/fastpath.py); None: the full path
        issued = tickets.issue_plain(
            code,
            data["service"],
            now=now,
            locale=presenters.language(),
            priority=data["priority"],
            source=data["source"],
        )
        if issued is not None:
            db.session.commit()
            return presenters.issued(issued)
    branch = branch_or_404(code)
    service = service_in_body(branch, data["service"])
    actor = bearer_user()
    if data["priority"] in STAFF_ONLY_PRIORITIES or data["source"] in STAFF_ONLY_SOURCES:
        if actor is None:
            abort(401, description="this priority or source needs a staff token")
        require_scope("tickets:write")
        require_floor(branch)
    customer_data = data.get("customer") or {}
    customer = identify_customer(
        phone=customer_data.get("phone"),
        external_id=customer_data.get("external_id"),
        name=customer_data.get("name"),
        region=branch.country,
        # only the branch's own floor staff may complete what is stored about a customer
        trusted=actor is not None and actor.can_work_floor(branch),
    )
    ticket = tickets.issue_ticket(
        branch,
        service,
        now=now,
        priority=data["priority"],
        source=data["source"],
        customer=customer,
        appointment_due_at=data.get("appointment_due_at"),
        actor=actor,
    )
    db.session.commit()
    return presenters.just_issued(ticket)


@blp.get("/branches/<code>/counters")
@staff_endpoint(blp, 404, scope="tickets:read")
@blp.response(200, CounterListSchema)
def list_counters(code):
    """The branch's counters with their status, who is signed in and the current ticket."""
    branch = branch_or_404(code)
    require_view(branch)
    counters = queries.counters_of(branch.id)
    current = queries.active_tickets_by_counter(branch.id)
    return {"items": [presenters.counter(c, current.get(c.id)) for c in counters]}


@blp.get("/branches/<code>/queue")
@staff_endpoint(blp, 404, scope="tickets:read")
@blp.response(200, TicketListSchema)
def waiting_list(code):
    """The branch's waiting tickets in queue order."""
    branch = branch_or_404(code)
    require_view(branch)
    waiting = queries.waiting_tickets(branch.id)
    standings = queries.standings(branch.id, waiting)
    return {"items": [presenters.ticket(t, standing=standings[t.id]) for t in waiting]}
