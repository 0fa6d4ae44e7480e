"""Retention: the personal data of visits older than `RETENTION_DAYS` are blanked.

What goes (for visits that arrived before the cut-off, and what hangs off them):
- the link from the visit, its feedback responses, invitations, cases and appointments to the
  customer (`customer_id` set to NULL);
- free text: the staff's notes and hand-over notes of its tickets, the feedback comments, the
  cases' action taken and case step notes (contact notes);
- the name and e-mail address of its appointments (and of any appointment that started before
  the cut-off);
- outbox messages written before the cut-off and no longer pending: recipient, fallbacks,
  subject, body, HTML, attachments, last error;
- one-time code rows of contacts last used before the cut-off (deleted: they are rate limits);
- a customer who, after that, is linked to nothing and was recorded before the cut-off: name,
  phone, e-mail, CRM id, language and consents blanked, `erased_at` set.

What stays: every ticket with its times, statuses, outcome codes, counters and staff; every
feedback response with its scores, reasons and facts; every case with its level, times, root
cause and reason; the journal's entries, which are append-only (a database trigger refuses
any change) and therefore never hold free text: a hold note or a cancel reason typed by staff
is on the ticket, and its journal entry only says `{"with_note": true}`. Reports, metrics, the
estimator's history and the busy hours give the same figures before and after.

Each batch (`batch_size` visits, messages ...) is one transaction; `run` commits each and goes
on until nothing is left, so running it again does nothing (idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, or_, select, update

from ..booking.models import Appointment
from ..cases.models import Case, CaseStep
from ..extensions import db
from ..feedback.models import FeedbackInvitation, FeedbackResponse
from ..notify.models import OutboxMessage, OutboxStatus
from ..tickets.models import Ticket, Visit
from .models import ContactVerification, Customer

DEFAULT_BATCH = 500


@dataclass
class Counts:
    visits: int = 0
    appointments: int = 0
    outbox_messages: int = 0
    verifications: int = 0
    customers: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _update(statement) -> int:
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def blank_visits(visit_ids: list[int], *, now: datetime) -> None:
    """Blank what is personal in these visits and what hangs off them (see the module)."""
    if not visit_ids:
        return
    session = db.session
    ticket_ids = select(Ticket.id).where(Ticket.visit_id.in_(visit_ids)).scalar_subquery()
    _update(
        update(Ticket).where(Ticket.visit_id.in_(visit_ids)).values(notes=None, handover_note=None)
    )
    _update(
        update(FeedbackResponse)
        .where(FeedbackResponse.visit_id.in_(visit_ids))
        .values(comment=None, customer_id=None)
    )
    _update(
        update(FeedbackInvitation)
        .where(FeedbackInvitation.ticket_id.in_(ticket_ids))
        .values(customer_id=None)
    )
    case_ids = select(Case.id).where(Case.ticket_id.in_(ticket_ids)).scalar_subquery()
    _update(update(CaseStep).where(CaseStep.case_id.in_(case_ids)).values(note=None))
    _update(
        update(Case)
        .where(Case.ticket_id.in_(ticket_ids))
        .values(customer_id=None, action_taken=None)
    )
    _update(
        update(Appointment)
        .where(Appointment.ticket_id.in_(ticket_ids))
        .values(name=None, email=None, customer_id=None)
    )
    _update(
        update(Visit).where(Visit.id.in_(visit_ids)).values(customer_id=None, anonymised_at=now)
    )
    session.flush()


def _visit_batch(cutoff: datetime, *, now: datetime, size: int) -> int:
    ids = list(
        db.session.scalars(
            select(Visit.id)
            .where(Visit.anonymised_at.is_(None), Visit.arrived_at < cutoff)
            .order_by(Visit.id)
            .limit(size)
        )
    )
    blank_visits(ids, now=now)
    return len(ids)


def _appointment_batch(cutoff: datetime, *, size: int) -> int:
    ids = list(
        db.session.scalars(
            select(Appointment.id)
            .where(
                Appointment.start < cutoff,
                or_(
                    Appointment.name.is_not(None),
                    Appointment.email.is_not(None),
                    Appointment.customer_id.is_not(None),
                ),
            )
            .order_by(Appointment.id)
            .limit(size)
        )
    )
    if ids:
        _update(
            update(Appointment)
            .where(Appointment.id.in_(ids))
            .values(name=None, email=None, customer_id=None)
        )
    return len(ids)


BLANK_MESSAGE = {
    "recipient": "",
    "fallbacks": [],
    "subject": None,
    "body": "",
    "html": None,
    "attachments": [],
    "last_error": None,
}


def _outbox_batch(cutoff: datetime, *, size: int) -> int:
    ids = list(
        db.session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.created_at < cutoff,
                OutboxMessage.status != OutboxStatus.PENDING,
                or_(OutboxMessage.recipient != "", OutboxMessage.body != ""),
            )
            .order_by(OutboxMessage.id)
            .limit(size)
        )
    )
    if ids:
        _update(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**BLANK_MESSAGE))
    return len(ids)


def _verification_batch(cutoff: datetime, *, size: int) -> int:
    last_used = func.coalesce(ContactVerification.window_started_at, ContactVerification.created_at)
    ids = list(
        db.session.scalars(
            select(ContactVerification.id)
            .where(
                last_used < cutoff,
                ContactVerification.created_at < cutoff,
                or_(
                    ContactVerification.expires_at.is_(None),
                    ContactVerification.expires_at < cutoff,
                ),
            )
            .order_by(ContactVerification.id)
            .limit(size)
        )
    )
    if ids:
        _update(delete(ContactVerification).where(ContactVerification.id.in_(ids)))
    return len(ids)


def _unlinked():
    """The condition on Customer: nothing points at the customer any more."""
    return and_(
        ~exists().where(Visit.customer_id == Customer.id),
        ~exists().where(Appointment.customer_id == Customer.id),
        ~exists().where(FeedbackResponse.customer_id == Customer.id),
        ~exists().where(FeedbackInvitation.customer_id == Customer.id),
        ~exists().where(Case.customer_id == Customer.id),
    )


CUSTOMER_BLANK = {
    "phone": None,
    "email": None,
    "name": None,
    "external_id": None,
    "locale": None,
    "consent_contact": False,
    "consent_survey": False,
    "consent_contact_at": None,
    "consent_contact_source": None,
    "consent_survey_at": None,
    "consent_survey_source": None,
}


def _customer_batch(cutoff: datetime, *, now: datetime, size: int) -> int:
    ids = list(
        db.session.scalars(
            select(Customer.id)
            .where(Customer.erased_at.is_(None), Customer.created_at < cutoff, _unlinked())
            .order_by(Customer.id)
            .limit(size)
        )
    )
    if ids:
        _update(
            update(Customer).where(Customer.id.in_(ids)).values(**CUSTOMER_BLANK, erased_at=now)
        )
    return len(ids)


def cutoff_for(now: datetime, days: int) -> datetime:
    if days < 1:
        raise ValueError("keep at least one day")
    return now - timedelta(days=days)


def run(
    *,
    now: datetime,
    days: int,
    batch_size: int = DEFAULT_BATCH,
    commit: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> Counts:
    """Anonymise everything older than `days` days before `now`, batch by batch, each batch
    committed (with `commit=False`, flushed only: a dry run the caller rolls back)."""
    cutoff = cutoff_for(now, days)
    total = Counts()
    steps = (
        ("visits", lambda: _visit_batch(cutoff, now=now, size=batch_size)),
        ("appointments", lambda: _appointment_batch(cutoff, size=batch_size)),
        ("outbox_messages", lambda: _outbox_batch(cutoff, size=batch_size)),
        ("verifications", lambda: _verification_batch(cutoff, size=batch_size)),
        ("customers", lambda: _customer_batch(cutoff, now=now, size=batch_size)),
    )
    for name, step in steps:
        while True:
            done = step()
            if commit:
                db.session.commit()
            else:
                db.session.flush()
            if not done:
                break
            setattr(total, name, getattr(total, name) + done)
            if progress is not None:
                progress(name, done)
            if not commit and done < batch_size:
                break  # a dry run sees its own changes: the next query would find none
    return total
