from flask import Response, g
from flask_smorest import Blueprint

from ..core.types import utcnow
from ..extensions import db
from ..tickets import services as tickets
from . import presenters
from .auth import SECURITY, require_floor, staff_required
from .lookups import counter_or_404
from .schemas import CounterSchema, PauseSchema, TicketSchema

blp = Blueprint("counters", __name__, description="Opening counters and calling tickets")


def _counter_response(counter):
    result = presenters.counter(counter, tickets.active_ticket(counter))
    db.session.commit()
    return result


@blp.post("/counters/<int:counter_id>/open")
@staff_required
@blp.response(200, CounterSchema)
@blp.doc(security=SECURITY)
def open_counter(counter_id):
    """Open the counter (or end its pause) and sign the caller in at it."""
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    return _counter_response(tickets.open_counter(counter, g.user, now=utcnow()))


@blp.post("/counters/<int:counter_id>/pause")
@staff_required
@blp.arguments(PauseSchema, required=False)
@blp.response(200, CounterSchema)
@blp.doc(security=SECURITY)
def pause_counter(data, counter_id):
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    counter = tickets.pause_counter(counter, g.user, now=utcnow(), reason=data.get("reason"))
    return _counter_response(counter)


@blp.post("/counters/<int:counter_id>/close")
@staff_required
@blp.response(200, CounterSchema)
@blp.doc(security=SECURITY)
def close_counter(counter_id):
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    return _counter_response(tickets.close_counter(counter, g.user, now=utcnow()))


@blp.post("/counters/<int:counter_id>/call-next")
@staff_required
@blp.response(200, TicketSchema)
@blp.alt_response(204, description="nobody waits for this counter")
@blp.doc(security=SECURITY)
def call_next(counter_id):
    """Call the next ticket by the branch's routing rules."""
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    ticket = tickets.call_next(counter, g.user, now=utcnow())
    if ticket is None:
        db.session.commit()
        return Response(status=204)
    result = presenters.ticket(ticket)
    db.session.commit()
    return result
