"""What the rest of the system tells the outbox, inside its own unit of work.

`appointment.booked` (from `booking.services.book` and `confirm`, through
`core.events.in_transaction`): the confirmation is written to the outbox in the transaction
that books, so a booking that rolls back leaves no message, and a committed one always has
its message. Receivers here only add rows to the session; `deliver_due` sends after the commit.

`appointment.rescheduled` and `appointment.cancelled` (the customer's manage link, and the
API) write the change or cancellation notice the same way, and withdraw the reminders of the
old time that are still waiting in the outbox: they must not go out. A rescheduled booking
gets its reminders again for its new time (`booking.services.reschedule` empties
`reminders_sent`); the outbox keys of the reminders already sent for the old time are renamed
(`...:before-change-<n>`), so the reminders of the new time are not taken for them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from ..booking.models import Appointment
from ..core.events import in_transaction_signal
from ..core.types import utcnow
from ..extensions import db
from . import channels, content
from .models import Channel, OutboxMessage, OutboxStatus
from .queue_alerts import init_queue_alerts
from .services import enqueue

CONFIRMATION = "appointment_confirmation"
REMINDER = "appointment_reminder"
RESCHEDULED = "appointment_rescheduled"
CANCELLED = "appointment_cancelled"


def init_notify(app) -> None:
    """Connect the outbox's receivers (blinker keeps one connection however many apps)."""
    in_transaction_signal("appointment.booked").connect(on_appointment_booked)
    in_transaction_signal("appointment.rescheduled").connect(on_appointment_rescheduled)
    in_transaction_signal("appointment.cancelled").connect(on_appointment_cancelled)
    init_queue_alerts(app)  # "next in N", "your turn" and urgent delivery (queue_alerts.py)
    app.extensions["queue_app.notify"] = True


def on_appointment_booked(_sender, *, appointment: Appointment, **_payload) -> None:
    now = appointment.booked_at or utcnow()
    write_appointment_messages(
        appointment,
        content.confirmation(appointment, now=now),
        kind=CONFIRMATION,
        key=f"appointment:{appointment.code}:confirmation",
        now=now,
    )


def on_appointment_rescheduled(
    _sender, *, appointment: Appointment, previous_start: datetime, **_payload
) -> None:
    now = appointment.booked_at or utcnow()
    withdraw_reminders(appointment, rename=f"before-change-{appointment.changes}")
    write_appointment_messages(
        appointment,
        content.rescheduled(appointment, previous_start=previous_start, now=now),
        kind=RESCHEDULED,
        key=f"appointment:{appointment.code}:rescheduled:{appointment.changes}",
        now=now,
    )


def on_appointment_cancelled(_sender, *, appointment: Appointment, **_payload) -> None:
    withdraw_reminders(appointment)
    if appointment.booked_at is None:
        return  # a hold let go: nothing was ever sent about it
    now = appointment.cancelled_at or utcnow()
    write_appointment_messages(
        appointment,
        content.cancellation(appointment),
        kind=CANCELLED,
        key=f"appointment:{appointment.code}:cancelled",
        now=now,
    )


def withdraw_reminders(appointment: Appointment, *, rename: str | None = None) -> int:
    """Delete the appointment's reminders still waiting in the outbox (in this unit of work);
    with `rename`, suffix the keys of those already sent (or failed) with it. Returns how many
    were withdrawn. A reminder being sent at this very moment (claimed) cannot be called
    back: its sender finds the row gone and records nothing."""
    prefix = f"appointment:{appointment.code}:reminder:%"
    withdrawn = db.session.execute(
        delete(OutboxMessage)
        .where(
            OutboxMessage.kind == REMINDER,
            OutboxMessage.dedupe_key.like(prefix),
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if rename:
        for message in db.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == REMINDER, OutboxMessage.dedupe_key.like(prefix)
            )
        ):
            if ":before-change-" not in message.dedupe_key:
                message.dedupe_key = f"{message.dedupe_key}:{rename}"
    db.session.flush()
    return withdrawn


def write_appointment_messages(
    appointment: Appointment, message: content.Content, *, kind: str, key: str, now: datetime
) -> int:
    """The e-mail (if the customer has an address) and the SMS (if a phone number; falling
    back to e-mail). With both and no SMS gateway configured the e-mail alone says it all.
    Returns how many messages were written."""
    customer = appointment.customer
    # the address given for this booking first, then the one on record
    email = appointment.email or (customer.email if customer is not None else None)
    phone = customer.phone if customer is not None else None
    written = 0
    if email:
        written += (
            enqueue(
                kind,
                channel=Channel.EMAIL,
                recipient=email,
                subject=message.subject,
                body=message.text,
                html=message.html,
                attachments=message.attachments,
                locale=message.locale,
                dedupe_key=f"{key}:email",
                now=now,
            )
            is not None
        )
    if phone and (not email or channels.configured(Channel.SMS)):
        written += (
            enqueue(
                kind,
                channel=Channel.SMS,
                recipient=phone,
                subject=message.subject,  # read when the message falls back to e-mail
                body=message.short,
                fallbacks=[{"channel": Channel.EMAIL, "recipient": email}] if email else (),
                locale=message.locale,
                dedupe_key=f"{key}:sms",
                now=now,
            )
            is not None
        )
    return written
