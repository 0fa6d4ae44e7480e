from flask import Response, g

from ..core.types import utcnow
from ..extensions import db
from ..tickets import services as tickets
from . import presenters
from .auth import require_floor, staff_endpoint
from .lookups import counter_or_404, locked_counter_or_404
from .parsing import Blueprint
from .schemas import CounterSchema, EmptySchema, PauseSchema, TicketSchema

blp = Blueprint("counters", __name__, description="Opening counters and calling tickets")


def _counter_response(counter):
    db.session.commit()
    result = presenters.counter(counter, tickets.active_ticket(counter))
    return result


@blp.post("/counters/<int:counter_id>/open")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, CounterSchema)
def open_counter(_data, counter_id):
    """Open the counter (or end its pause) and sign the caller in at it."""
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    return _counter_response(tickets.open_counter(counter, g.user, now=utcnow()))


@blp.post("/counters/<int:counter_id>/pause")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(PauseSchema(), required=False)
@blp.response(200, CounterSchema)
def pause_counter(data, counter_id):
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    counter = tickets.pause_counter(counter, g.user, now=utcnow(), reason=data.get("reason"))
    return _counter_response(counter)


@blp.post("/counters/<int:counter_id>/close")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, CounterSchema)
def close_counter(_data, counter_id):
    counter = counter_or_404(counter_id)
    require_floor(counter.branch)
    return _counter_response(tickets.close_counter(counter, g.user, now=utcnow()))


@blp.post("/counters/<int:counter_id>/call-next")
@staff_endpoint(blp, 400, 404, 409, scope="tickets:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, TicketSchema)
@blp.alt_response(204, description="nobody waits for this counter", success=True)
def call_next(_data, counter_id):
    """Call the next ticket by the branch's routing rules."""
    counter = locked_counter_or_404(counter_id)
    require_floor(counter.branch)
    ticket = tickets.call_next(counter, g.user, now=utcnow())
    if ticket is None:
        db.session.commit()
        return Response(status=204)
    db.session.commit()
    result = presenters.ticket(ticket)
    return result
