"""Appointments: bookable slots of a service, held and booked places in them, branch closures.

A slot is (service, start): its length is the service's `slot_minutes`, its capacity the
bookable share (`Service.bookable_percent`) of the counters that serve the service. A place in
a slot is an `Appointment`: `held` while the customer fills in the form (until
`hold_expires_at`), then `booked`. The `AppointmentSlot` row of (service, start) exists only to
be locked: every booking of that slot takes it `FOR UPDATE` (SQLite: the write transaction),
counts the live places and inserts one only if there is room, so a slot is never booked past
its capacity whatever the timing.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..branches.models import Branch, Service, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class AppointmentStatus(enum.StrEnum):
    HELD = "held"  # the customer is filling in the form; lapses at hold_expires_at
    BOOKED = "booked"
    CHECKED_IN = "checked_in"  # arrived: a ticket was issued for it
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # a hold that lapsed
    NO_SHOW = "no_show"  # never checked in


# the places that count against a slot's capacity (a held one only until its hold lapses)
TAKING_PLACE = (AppointmentStatus.HELD, AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


class BranchClosure(db.Model):
    """A day a branch is closed besides its country's public holidays (renovation, local
    holiday): no slots."""

    __tablename__ = "branch_closures"
    __table_args__ = (UniqueConstraint("branch_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(120), default="")

    branch: Mapped[Branch] = relationship()


class AppointmentSlot(db.Model):
    """The lock of one slot (see the module's docstring); created on its first booking."""

    __tablename__ = "appointment_slots"
    __table_args__ = (UniqueConstraint("service_id", "start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UTCDateTime)


class Appointment(db.Model):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_slot", "service_id", "start", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)  # the booking code a customer types
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[AppointmentStatus] = mapped_column(
        str_enum(AppointmentStatus, "appointment_status"), default=AppointmentStatus.HELD
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(120))  # as given for this booking
    email: Mapped[str | None] = mapped_column(String(255))  # where its messages go, if given
    locale: Mapped[str | None] = mapped_column(String(8))
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # how often the slot was changed through the customer's link (reschedule)
    changes: Mapped[int] = mapped_column(Integer, default=0)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # the reminders already written to the outbox, by name ("24h", "2h" ...)
    reminders_sent: Mapped[list] = mapped_column(JSON, default=list)

    branch: Mapped[Branch] = relationship()
    service: Mapped[Service] = relationship()
    customer: Mapped[Customer | None] = relationship()  # noqa: F821
    ticket: Mapped[Ticket | None] = relationship()  # noqa: F821

    def __repr__(self):
        return f"<Appointment {self.code} {self.status.value} {self.start.isoformat()}>"
