"""Erasing one customer's personal data on request (`flask customers erase`).

Blanked: the customer's name, phone number, e-mail address, CRM id, language and consents
(`erased_at` set; the row stays, empty, so the visits, responses and cases that point at it
still count); the names and addresses of their appointments; the comments of their feedback;
the staff's notes on their visits; the cases' action taken and
contact notes; every outbox message to one of their addresses: the pending ones are withdrawn
(deleted, as a cancelled booking's reminders are), the others blanked; their one-time code
rows (deleted). Kept: the anonymous statistics (tickets, times, scores, reasons, cases).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import String, cast, delete, func, or_, select, update

from ..booking.models import Appointment
from ..cases.models import Case, CaseStep
from ..core.errors import InvalidInput, NotFound
from ..extensions import db
from ..feedback.models import FeedbackResponse
from ..notify.models import OutboxMessage, OutboxStatus
from ..tickets.models import Ticket, Visit
from .models import ContactVerification, Customer
from .retention import BLANK_MESSAGE, CUSTOMER_BLANK
from .services import normalise_phone


@dataclass
class Erasure:
    customer_id: int
    fields: list[str] = field(default_factory=list)  # the customer's fields that held data
    appointments: int = 0
    feedback_comments: int = 0
    ticket_notes: int = 0
    case_notes: int = 0
    outbox_withdrawn: int = 0
    outbox_blanked: int = 0
    verifications: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def find_customer(
    *,
    phone: str | None = None,
    email: str | None = None,
    customer_id: int | None = None,
    region: str = "ID",
) -> Customer:
    """The one customer named by exactly one of phone, e-mail or id."""
    given = [v for v in (phone, email, customer_id) if v not in (None, "")]
    if len(given) != 1:
        raise InvalidInput("name the customer by exactly one of phone, e-mail or id", "ambiguous")
    if customer_id is not None:
        customer = db.session.get(Customer, customer_id)
    elif phone:
        e164 = normalise_phone(phone, region)
        customer = db.session.scalar(select(Customer).where(Customer.phone == e164))
    else:
        address = email.strip().lower()
        if "@" not in address:
            raise InvalidInput(f"{email!r} is not an e-mail address", "invalid_email")
        customer = db.session.scalar(select(Customer).where(Customer.email == address))
        if customer is None:
            # a customer known by phone number keeps the address of a booking on the booking
            owners = set(
                db.session.scalars(
                    select(Appointment.customer_id).where(
                        func.lower(Appointment.email) == address,
                        Appointment.customer_id.is_not(None),
                    )
                )
            )
            if len(owners) > 1:
                raise InvalidInput(
                    f"{len(owners)} customers booked with this address: name one by --id "
                    f"({', '.join(str(i) for i in sorted(owners))})",
                    "ambiguous",
                )
            customer = db.session.get(Customer, owners.pop()) if owners else None
    if customer is None:
        raise NotFound("no customer matches", "no_such_customer")
    return customer


def _n(statement) -> int:
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def erase_customer(customer: Customer, *, now: datetime) -> Erasure:
    """Erase `customer`'s personal data (see the module); flushes, the caller commits."""
    result = Erasure(customer_id=customer.id)
    result.fields = [
        name
        for name in ("name", "phone", "email", "external_id", "locale")
        if getattr(customer, name) is not None
    ]
    if customer.consent_contact or customer.consent_survey:
        result.fields.append("consent")
    appointments = list(
        db.session.scalars(select(Appointment).where(Appointment.customer_id == customer.id))
    )
    addresses = {a for a in (customer.phone, customer.email) if a}
    addresses |= {a.email for a in appointments if a.email}

    result.appointments = _n(
        update(Appointment)
        .where(Appointment.customer_id == customer.id)
        .values(name=None, email=None)
    )
    result.feedback_comments = _n(
        update(FeedbackResponse)
        .where(FeedbackResponse.customer_id == customer.id, FeedbackResponse.comment.is_not(None))
        .values(comment=None)
    )
    visit_ids = select(Visit.id).where(Visit.customer_id == customer.id).scalar_subquery()
    result.ticket_notes = _n(
        update(Ticket)
        .where(
            Ticket.visit_id.in_(visit_ids),
            or_(Ticket.notes.is_not(None), Ticket.handover_note.is_not(None)),
        )
        .values(notes=None, handover_note=None)
    )
    case_ids = select(Case.id).where(Case.customer_id == customer.id).scalar_subquery()
    result.case_notes = _n(
        update(CaseStep)
        .where(CaseStep.case_id.in_(case_ids), CaseStep.note.is_not(None))
        .values(note=None)
    )
    _n(update(Case).where(Case.customer_id == customer.id).values(action_taken=None))

    if addresses:
        to_them = or_(
            OutboxMessage.recipient.in_(addresses),
            *(
                cast(OutboxMessage.fallbacks, String).contains(a, autoescape=True)
                for a in addresses
            ),
        )
        result.outbox_withdrawn = _n(
            delete(OutboxMessage).where(to_them, OutboxMessage.status == OutboxStatus.PENDING)
        )
        result.outbox_blanked = _n(
            update(OutboxMessage)
            .where(to_them, OutboxMessage.status != OutboxStatus.PENDING)
            .values(**BLANK_MESSAGE)
        )
        result.verifications = _n(
            delete(ContactVerification).where(ContactVerification.contact.in_(addresses))
        )

    for name, value in CUSTOMER_BLANK.items():
        setattr(customer, name, value)
    customer.erased_at = now
    db.session.flush()
    return result
