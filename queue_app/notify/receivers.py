"""What the rest of the system tells the outbox, inside its own unit of work.

`appointment.booked` (from `booking.services.book` and `confirm`, through
`core.events.in_transaction`): the confirmation is written to the outbox in the transaction
that books, so a booking that rolls back leaves no message, and a committed one always has
its message. Receivers here only add rows to the session; `deliver_due` sends after the commit.
"""

from __future__ import annotations

from datetime import datetime

from ..booking.models import Appointment
from ..core.events import in_transaction_signal
from ..core.types import utcnow
from . import channels, content
from .models import Channel
from .services import enqueue

CONFIRMATION = "appointment_confirmation"
REMINDER = "appointment_reminder"


def init_notify(app) -> None:
    """Connect the outbox's receivers (blinker keeps one connection however many apps)."""
    in_transaction_signal("appointment.booked").connect(on_appointment_booked)
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
