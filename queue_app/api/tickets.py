from flask import abort, g
from flask_smorest import Blueprint
from sqlalchemy import select

from ..branches.models import Counter, CounterStatus
from ..core.types import utcnow
from ..extensions import db
from ..tickets import queries
from ..tickets import services as tickets
from . import presenters
from .auth import SECURITY, require_floor, staff_required
from .lookups import counter_or_404, service_or_404, ticket_or_404
from .schemas import (
    CallSchema,
    CancelSchema,
    FinishSchema,
    NoteSchema,
    PublicTicketSchema,
    TicketSchema,
    TransferSchema,
)

blp = Blueprint("tickets", __name__, description="Following a ticket and serving it")


@blp.get("/tickets/<token>")
@blp.response(200, PublicTicketSchema)
@blp.alt_response(404, description="no ticket has this token")
def follow_ticket(token):
    """The current step of a visit, for the customer holding its token."""
    if len(token) > 64:
        abort(404, description="no ticket has this token")
    ticket = queries.ticket_by_token(token)
    if ticket is None:
        abort(404, description="no ticket has this token")
    return presenters.ticket(ticket)


def _staff_ticket(ticket_id):
    ticket = ticket_or_404(ticket_id)
    require_floor(ticket.branch)
    return ticket


def _done(ticket):
    result = presenters.ticket(ticket)
    db.session.commit()
    return result


def _my_counter(branch_id):
    counter = db.session.scalar(
        select(Counter).where(
            Counter.branch_id == branch_id,
            Counter.staff_id == g.user.id,
            Counter.status != CounterStatus.CLOSED,
        )
    )
    if counter is None:
        abort(409, description="open a counter first, or name one with counter_id")
    return counter


@blp.post("/tickets/<int:ticket_id>/call")
@staff_required
@blp.arguments(CallSchema, required=False)
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def call(data, ticket_id):
    """Call this waiting ticket (picked from the waiting list) to a counter."""
    ticket = _staff_ticket(ticket_id)
    if "counter_id" in data:
        counter = counter_or_404(data["counter_id"])
    else:
        counter = _my_counter(ticket.branch_id)
    return _done(tickets.call_ticket(ticket, counter, g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/start")
@staff_required
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def start(ticket_id):
    """The customer has arrived at the counter: service starts."""
    return _done(tickets.start(_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/finish")
@staff_required
@blp.arguments(FinishSchema, required=False)
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def finish(data, ticket_id):
    ticket = _staff_ticket(ticket_id)
    return _done(
        tickets.finish(
            ticket, g.user, now=utcnow(), outcome=data.get("outcome"), note=data.get("note")
        )
    )


@blp.post("/tickets/<int:ticket_id>/recall")
@staff_required
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def recall(ticket_id):
    """Call again; past the branch's recall limit the ticket becomes a no-show."""
    return _done(tickets.recall(_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/no-show")
@staff_required
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def no_show(ticket_id):
    return _done(tickets.mark_no_show(_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/transfer")
@staff_required
@blp.arguments(TransferSchema)
@blp.response(200, TicketSchema, description="the new step of the visit")
@blp.doc(security=SECURITY)
def transfer(data, ticket_id):
    """Send the customer on to another service or counter, with a note for the next person."""
    ticket = _staff_ticket(ticket_id)
    service = (
        service_or_404(ticket.branch, data["service"], status=422) if "service" in data else None
    )
    counter = None
    if "counter_id" in data:
        counter = db.session.get(Counter, data["counter_id"])
        if counter is None:
            abort(422, description=f"no counter {data['counter_id']}")
    nxt = tickets.transfer(
        ticket,
        g.user,
        now=utcnow(),
        service=service,
        counter=counter,
        note=data.get("note"),
        keep_place=data.get("keep_place"),
    )
    return _done(nxt)


@blp.post("/tickets/<int:ticket_id>/hold")
@staff_required
@blp.arguments(NoteSchema, required=False)
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def hold(data, ticket_id):
    """Park the ticket while the customer steps away; the counter is free meanwhile."""
    return _done(
        tickets.hold(_staff_ticket(ticket_id), g.user, now=utcnow(), note=data.get("note"))
    )


@blp.post("/tickets/<int:ticket_id>/resume")
@staff_required
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def resume(ticket_id):
    """A held ticket waits again, first in line for the counter that held it."""
    return _done(tickets.resume(_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/cancel")
@staff_required
@blp.arguments(CancelSchema, required=False)
@blp.response(200, TicketSchema)
@blp.doc(security=SECURITY)
def cancel(data, ticket_id):
    ticket = _staff_ticket(ticket_id)
    return _done(tickets.cancel(ticket, g.user, now=utcnow(), reason=data.get("reason")))
