"""The virtual mobile queue: remote intake, one-time codes, joining, arriving, leaving
(`tickets/remote.py`). Public endpoints: the customer's secrets are the code sent to their
contact and, once they hold a ticket, its token."""

from flask import abort, current_app, request
from marshmallow import Schema, fields, validate

from ..core.types import utcnow
from ..customers.verification import CodeRejected
from ..extensions import db, limiter
from ..tickets import remote
from . import presenters
from .auth import documents_errors
from .lookups import branch_or_404, service_in_body, service_of, ticket_by_token_or_404
from .parsing import Blueprint
from .schemas import EmptySchema, Text, TicketSchema

blp = Blueprint(
    "remote", __name__, description="Virtual mobile queue: join remotely, arrive, leave"
)


def _code_limit() -> str:
    return current_app.config["REMOTE_CODE_RATE_LIMIT"]


def _join_limit() -> str:
    return current_app.config["REMOTE_JOIN_RATE_LIMIT"]


def _ticket_limit() -> str:
    return current_app.config["REMOTE_TICKET_RATE_LIMIT"]


class IntakeSchema(Schema):
    open = fields.Boolean(required=True)
    reason = fields.String(
        allow_none=True,
        metadata={
            "description": "why it is closed: `remote_off`, `closed_day`, `closed_hours`, "
            "`capacity_used`, `no_counter`, `unavailable`"
        },
    )
    estimated_wait_s = fields.Integer(
        allow_none=True, metadata={"description": "for a ticket taken now; null: no open counter"}
    )


class CodeRequestSchema(Schema):
    service = Text(required=True, validate=validate.Length(min=1, max=32))
    contact = Text(
        required=True,
        validate=validate.Length(min=3, max=255),
        metadata={"description": "a phone number (as written locally, or E.164) or an e-mail"},
    )
    locale = fields.String(validate=validate.OneOf(["id", "en"]))


class CodeSentSchema(Schema):
    contact = fields.String(metadata={"description": "where the code went, partly hidden"})
    channel = fields.String(metadata={"description": "`sms` or `email`"})
    expires_at = fields.AwareDateTime()


class JoinSchema(CodeRequestSchema):
    code = Text(required=True, validate=validate.Length(min=1, max=32))


class RemoteTicketSchema(TicketSchema):
    confirmed = fields.Boolean(
        metadata={"description": "arrival confirmed: only then is the ticket called"}
    )


class ArrivalSchema(Schema):
    key = Text(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the key of the QR poster at the branch's entrance"},
    )


def _remote_ticket(ticket) -> dict:
    return {**presenters.ticket(ticket, with_token=True), "confirmed": ticket.arrival_confirmed}


def _service(branch, code: str):
    svc = service_of(branch, code)
    if svc is None:
        abort(404, description=f"branch {branch.code} has no service {code!r}")
    return svc


@blp.get("/branches/<code>/services/<service>/intake")
@blp.response(200, IntakeSchema)
@documents_errors(blp, 404)
def get_intake(code, service):
    """Whether the service's queue takes remote tickets now, and the wait of one taken now."""
    branch = branch_or_404(code)
    state = remote.intake(branch, _service(branch, service), now=utcnow())
    return {"open": state.open, "reason": state.reason, "estimated_wait_s": state.estimated_wait_s}


@blp.post("/branches/<code>/remote/codes")
@limiter.limit(_code_limit)
@blp.arguments(CodeRequestSchema())
@blp.response(202, CodeSentSchema)
@documents_errors(blp, 404, 409, 429)
def request_code(data, code):
    """Send a one-time code to a phone number (SMS) or an e-mail address, to join remotely.

    409 `intake_<reason>` when remote intake is closed (see the intake endpoint),
    `already_in_queue` when the contact holds a remote ticket here; 422 `invalid_phone`,
    `invalid_email`; 429 past the limits per network address and per contact
    (`too_many_codes`).
    """
    branch = branch_or_404(code)
    svc = service_in_body(branch, data["service"])
    sent = remote.request_code(
        branch,
        svc,
        contact=data["contact"],
        locale=data.get("locale") or presenters.language(),
        ip=request.remote_addr,
        now=utcnow(),
    )
    db.session.commit()
    return {"contact": sent.masked, "channel": sent.channel, "expires_at": sent.expires_at}


@blp.post("/branches/<code>/remote/tickets")
@limiter.limit(_join_limit)
@blp.arguments(JoinSchema())
@blp.response(201, RemoteTicketSchema)
@documents_errors(blp, 404, 409, 429)
def join(data, code):
    """Join the queue with the code: a ticket (with its token) that is called only after the
    customer confirms arrival at the branch (`confirmed: false` until then).

    422 `wrong_code` (counted: after `REMOTE_CODE_MAX_TRIES` the code dies), `code_expired`,
    `too_many_tries`, `no_code`, `code_other_queue`; 409 `intake_<reason>`,
    `already_in_queue`.
    """
    branch = branch_or_404(code)
    svc = service_in_body(branch, data["service"])
    try:
        ticket = remote.join(
            branch,
            svc,
            contact=data["contact"],
            code=data["code"],
            locale=data.get("locale") or presenters.language(),
            ip=request.remote_addr,
            now=utcnow(),
        )
    except CodeRejected:
        db.session.commit()  # the wrong try counts (customers/verification.py)
        raise
    db.session.commit()
    return _remote_ticket(ticket)


@blp.post("/tickets/<token>/arrival")
@limiter.limit(_ticket_limit)
@blp.arguments(ArrivalSchema())
@blp.response(200, RemoteTicketSchema)
@documents_errors(blp, 403, 404, 409, 429)
def confirm_arrival(data, token):
    """ "I'm here": the key from the QR poster at the branch's entrance confirms arrival.

    403 `wrong_arrival_key` for another branch's (or a made-up) key; 409 `ticket_not_active`.
    Confirming again answers the same.
    """
    ticket = remote.confirm_arrival(ticket_by_token_or_404(token), key=data["key"], now=utcnow())
    db.session.commit()
    return _remote_ticket(ticket)


@blp.post("/tickets/<token>/leave")
@limiter.limit(_ticket_limit)
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, RemoteTicketSchema)
@documents_errors(blp, 404, 409, 429)
def leave(_data, token):
    """Leave the queue (cancelled, reason `left_by_customer`); 409 `cannot_leave` once the
    ticket has been called."""
    ticket = remote.leave(ticket_by_token_or_404(token), now=utcnow())
    db.session.commit()
    return _remote_ticket(ticket)
