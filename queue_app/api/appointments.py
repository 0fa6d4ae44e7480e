"""Appointments: a service's free slots of a day, booking one, looking it up by its code,
checking it in (`booking/checkin.py`), and cancelling or rescheduling it with its manage token
(`booking/links.py`: the booking code alone is not enough to change a booking)."""

from datetime import UTC, date, datetime

from flask import abort, current_app
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..booking import checkin, links
from ..booking import services as booking
from ..core.errors import NotFound
from ..core.types import utcnow
from ..customers.privacy import mask_name
from ..customers.services import identify_customer
from ..extensions import db, limiter
from . import presenters
from .auth import OPTIONAL_SECURITY, documents_errors
from .lookups import branch_or_404, service_in_body, service_of
from .parsing import Blueprint
from .schemas import EARLIEST, LATEST, Text, TicketSchema


def _code_limit() -> str:
    return current_app.config["BOOKING_CODE_RATE_LIMIT"]


def _book_limit() -> str:
    """Bookings per network address, as holds on the phone pages (booking/web.py)."""
    config = current_app.config
    return config.get("BOOKING_HOLD_RATE_LIMIT") or config["BOOKING_CODE_RATE_LIMIT"]


blp = Blueprint("appointments", __name__, description="Appointments: free slots and bookings")


class SlotQuerySchema(Schema):
    date = fields.Date(
        required=True,
        validate=validate.Range(min=EARLIEST.date(), max=LATEST.date()),
        metadata={"description": "the day in the branch's own calendar, YYYY-MM-DD"},
    )


class SlotSchema(Schema):
    start = fields.String(metadata={"description": "ISO 8601 with the branch's UTC offset"})
    end = fields.String()
    available = fields.Integer()
    capacity = fields.Integer()


class SlotListSchema(Schema):
    date = fields.Date()
    closed = fields.String(
        allow_none=True, metadata={"description": "why the branch takes no bookings that day"}
    )
    items = fields.List(fields.Nested(SlotSchema))


class BookingCustomerSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=120))
    phone = Text(validate=validate.Length(min=3, max=32))
    email = fields.Email(validate=validate.Length(max=255))

    @validates_schema
    def _reachable(self, data, **_kwargs):
        if not data.get("phone") and not data.get("email"):
            raise ValidationError("a phone number or an e-mail address is needed", "phone")


class BookAppointmentSchema(Schema):
    service = Text(required=True, validate=validate.Length(min=1, max=32))
    start = fields.AwareDateTime(
        required=True,
        validate=validate.Range(min=EARLIEST, max=LATEST),
        metadata={"description": "a slot's start, as the slots list gives it"},
    )
    customer = fields.Nested(BookingCustomerSchema, required=True)
    locale = fields.String(validate=validate.OneOf(["id", "en"]))


class AppointmentSchema(Schema):
    code = fields.String(metadata={"description": "the booking code (kiosk check-in, changes)"})
    status = fields.String()
    branch = fields.String()
    service = fields.String()
    service_name = fields.String()
    start = fields.String()
    end = fields.String()
    name = fields.String(allow_none=True)
    checked_in_at = fields.String(
        allow_none=True, metadata={"description": "ISO 8601 with the branch's UTC offset"}
    )


class BookedSchema(AppointmentSchema):
    manage_token = fields.String(
        metadata={
            "description": "authorises cancelling and rescheduling this booking (keep it secret;"
            " the booking code alone cannot change a booking)"
        }
    )
    manage_url = fields.String(metadata={"description": "the customer's page of this booking"})


class ManageTokenSchema(Schema):
    token = Text(
        required=True,
        validate=validate.Length(min=1, max=512),
        metadata={"description": "the `manage_token` given when the booking was made"},
    )


class RescheduleSchema(ManageTokenSchema):
    start = fields.AwareDateTime(
        required=True,
        validate=validate.Range(min=EARLIEST, max=LATEST),
        metadata={"description": "the new slot's start (same service), as the slots list gives"},
    )


class CheckInSchema(TicketSchema):
    late = fields.Boolean(
        required=True,
        metadata={
            "description": "checked in after the window (`check_in_late_s` past the start): "
            "a plain walk-in ticket without appointment time"
        },
    )


@blp.get("/branches/<code>/services/<service>/slots")
@blp.arguments(SlotQuerySchema(), location="query")
@blp.response(200, SlotListSchema)
@documents_errors(blp, 404)
def list_slots(args, code, service):
    """The slots of a day with the places still free (`available`), those not started yet.

    Empty, with `closed` set, on a public holiday of the branch's country or a branch closure.
    """
    branch = branch_or_404(code)
    svc = service_of(branch, service)
    if svc is None:
        abort(404, description=f"branch {branch.code} has no service {service!r}")
    day: date = args["date"]
    now = utcnow()
    closed = booking.closed_reason(branch, day)
    slots = booking.day_slots(branch, svc, day, now=now)
    return {
        "date": day,
        "closed": closed,
        "items": [presenters.slot(branch, s) for s in slots],
    }


@blp.post("/branches/<code>/appointments")
@limiter.limit(_book_limit)
@blp.arguments(BookAppointmentSchema())
@blp.response(201, BookedSchema)
@documents_errors(blp, 404, 409, 429)
@blp.doc(security=OPTIONAL_SECURITY)
def book_appointment(data, code):
    """Book a place in a slot (409 `slot_full` when none is left).

    `start` must be the start of one of the service's slots that day (422 `not_a_slot`); a
    phone number is stored in E.164, an invalid one is refused (422 `invalid_phone`).
    """
    branch = branch_or_404(code)
    svc = service_in_body(branch, data["service"])
    person = data["customer"]
    customer = identify_customer(
        phone=person.get("phone"),
        email=person.get("email"),
        name=person["name"],
        region=branch.country,
    )
    start: datetime = data["start"].astimezone(UTC)
    appointment = booking.book(
        branch,
        svc,
        start,
        now=utcnow(),
        customer=customer,
        name=person["name"],
        email=person.get("email"),
        locale=data.get("locale") or presenters.language(),
    )
    db.session.commit()
    return {
        **presenters.appointment(appointment),
        "manage_token": links.manage_token(appointment),
        "manage_url": links.manage_url(appointment),
    }


@blp.get("/appointments/<booking_code>")
@limiter.limit(_code_limit)
@blp.response(200, AppointmentSchema)
@documents_errors(blp, 404, 429)
def get_appointment(booking_code):
    """The appointment with this booking code (the code is the customer's secret: no token).

    The code may be written loosely (`ab3-k7q`, with spaces); 404 `unknown_booking` if none.
    A six-character code is short, so the name comes back masked (`Si•• R•••••`): the code
    alone never tells who booked.
    """
    found = presenters.appointment(checkin.find(booking_code))
    return {**found, "name": mask_name(found.get("name"))}


@blp.post("/branches/<code>/appointments/<booking_code>/check-in")
@limiter.limit(_code_limit)
@blp.response(201, CheckInSchema)
@documents_errors(blp, 404, 409, 422, 429)
@blp.doc(security=OPTIONAL_SECURITY)
def check_in(code, booking_code):
    """Check in a booked appointment on arrival at the branch: its ticket (with the token).

    From `check_in_early_s` before the start to `check_in_late_s` after it (the branch's
    settings) the ticket has source `appointment` and is called first around the appointment's
    time. Later that day a branch with `late_arrival: walk_in` gives a plain walk-in ticket
    (`late: true`); one with `refuse` answers 422 `too_late`. Earlier: 422 `too_early` (the
    message says from when). Checking in again answers the same ticket. 404
    `unknown_booking` (no such code at this branch), 409 `booking_not_active` (cancelled,
    lapsed, or for an earlier day).
    """
    branch = branch_or_404(code)
    done = checkin.check_in(branch, booking_code, now=utcnow())
    db.session.commit()
    return {**presenters.ticket(done.ticket, with_token=True), "late": done.late}


def _managed(booking_code: str, token: str):
    """The appointment the manage token names, if it is the one of the path's code."""
    appointment = links.by_manage_token(token)
    if checkin.normalize_code(booking_code) != appointment.code:
        raise NotFound("this link is not valid or has expired", "invalid_link")
    return appointment


@blp.post("/appointments/<booking_code>/cancel")
@limiter.limit(_code_limit)
@blp.arguments(ManageTokenSchema())
@blp.response(200, AppointmentSchema)
@documents_errors(blp, 404, 409, 429)
@blp.doc(security=OPTIONAL_SECURITY)
def cancel_appointment(data, booking_code):
    """Cancel a booking that has not started yet; the customer is told (e-mail, SMS).

    Needs the booking's `manage_token` (404 `invalid_link` when it is not this booking's, was
    altered or is too old); 409 `booking_not_active` (already cancelled, checked in, ...) or
    `booking_started`.
    """
    appointment = _managed(booking_code, data["token"])
    appointment = booking.cancel(appointment, now=utcnow())
    db.session.commit()
    return presenters.appointment(appointment)


@blp.post("/appointments/<booking_code>/reschedule")
@limiter.limit(_code_limit)
@blp.arguments(RescheduleSchema())
@blp.response(200, AppointmentSchema)
@documents_errors(blp, 404, 409, 429)
@blp.doc(security=OPTIONAL_SECURITY)
def reschedule_appointment(data, booking_code):
    """Move a booking to another slot of the same service, keeping its code; the customer is
    told (e-mail with the new calendar file, SMS).

    Needs the booking's `manage_token` (404 `invalid_link`). 409 `slot_full` (the old place
    is kept), `booking_not_active`, `booking_started`; 422 `not_a_slot`, `slot_passed`,
    `closed`, `same_slot`.
    """
    appointment = _managed(booking_code, data["token"])
    appointment = booking.reschedule(appointment, data["start"].astimezone(UTC), now=utcnow())
    db.session.commit()
    return presenters.appointment(appointment)
