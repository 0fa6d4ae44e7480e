from flask import abort, g
from sqlalchemy import select

from ..branches.models import Counter, CounterStatus
from ..core.types import utcnow
from ..extensions import db
from ..tickets import services as tickets
from . import presenters
from .auth import documents_errors, require_floor, staff_endpoint
from .lookups import (
    counter_in_body,
    locked_ticket_or_404,
    service_in_body,
    ticket_by_token_or_404,
    ticket_or_404,
)
from .parsing import Blueprint
from .schemas import (
    CallSchema,
    CancelSchema,
    EmptySchema,
    FinishSchema,
    NoteSchema,
    PublicTicketSchema,
    TicketSchema,
    TransferSchema,
)

blp = Blueprint("tickets", __name__, description="Following a ticket and serving it")


@blp.get("/tickets/<token>")
@blp.response(200, PublicTicketSchema)
@documents_errors(blp, 404)
def follow_ticket(token):
    """The current step of a visit, for the customer holding its token."""
    return presenters.ticket(ticket_by_token_or_404(token))


def _staff_ticket(ticket_id):
    ticket = ticket_or_404(ticket_id)
    require_floor(ticket.branch)
    return ticket


def _locked_staff_ticket(ticket_id):
    """`_staff_ticket`, locked: for the actions that lock only the ticket (see
    `tickets.services.lock_ticket`), which then read it once."""
    ticket = locked_ticket_or_404(ticket_id)
    require_floor(ticket.branch)
    return ticket


def _done(ticket):
    db.session.commit()
    result = presenters.ticket(ticket)
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
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(CallSchema(), required=False)
@blp.response(200, TicketSchema)
def call(data, ticket_id):
    """Call this waiting ticket (picked from the waiting list) to a counter."""
    ticket = _staff_ticket(ticket_id)
    if "counter_id" in data:
        counter = counter_in_body(data["counter_id"])
    else:
        counter = _my_counter(ticket.branch_id)
    return _done(tickets.call_ticket(ticket, counter, g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/start")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, TicketSchema)
def start(_data, ticket_id):
    """The customer has arrived at the counter: service starts."""
    return _done(tickets.start(_locked_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/finish")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(FinishSchema(), required=False)
@blp.response(200, TicketSchema)
def finish(data, ticket_id):
    """Service is over, with an outcome code and a note."""
    ticket = _locked_staff_ticket(ticket_id)
    return _done(
        tickets.finish(
            ticket, g.user, now=utcnow(), outcome=data.get("outcome"), note=data.get("note")
        )
    )


@blp.post("/tickets/<int:ticket_id>/recall")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, TicketSchema)
def recall(_data, ticket_id):
    """Call again; past the branch's recall limit the ticket becomes a no-show."""
    return _done(tickets.recall(_locked_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/no-show")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, TicketSchema)
def no_show(_data, ticket_id):
    """The called customer did not come to the counter."""
    return _done(tickets.mark_no_show(_locked_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/transfer")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(TransferSchema())
@blp.response(200, TicketSchema, description="the new step of the visit")
def transfer(data, ticket_id):
    """Send the customer on to another service or counter, with a note for the next person."""
    ticket = _staff_ticket(ticket_id)
    service = service_in_body(ticket.branch, data["service"]) if "service" in data else None
    counter = counter_in_body(data["counter_id"]) if "counter_id" in data else None
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
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(NoteSchema(), required=False)
@blp.response(200, TicketSchema)
def hold(data, ticket_id):
    """Park the ticket while the customer steps away; the counter is free meanwhile."""
    return _done(
        tickets.hold(_locked_staff_ticket(ticket_id), g.user, now=utcnow(), note=data.get("note"))
    )


@blp.post("/tickets/<int:ticket_id>/resume")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, TicketSchema)
def resume(_data, ticket_id):
    """A held ticket waits again, first in line for the counter that held it."""
    return _done(tickets.resume(_staff_ticket(ticket_id), g.user, now=utcnow()))


@blp.post("/tickets/<int:ticket_id>/cancel")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(CancelSchema(), required=False)
@blp.response(200, TicketSchema)
def cancel(data, ticket_id):
    """The customer leaves the queue (or is taken off it)."""
    ticket = _locked_staff_ticket(ticket_id)
    return _done(tickets.cancel(ticket, g.user, now=utcnow(), reason=data.get("reason")))
