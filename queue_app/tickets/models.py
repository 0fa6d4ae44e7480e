from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
    true,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..accounts.models import User
from ..branches.models import Branch, Counter, Service, str_enum
from ..core.types import UTCDateTime, utcnow
from ..customers.models import Customer
from ..extensions import db


class TicketStatus(enum.StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    HELD = "held"
    FINISHED = "finished"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"


ACTIVE_STATUSES = (
    TicketStatus.WAITING,
    TicketStatus.CALLED,
    TicketStatus.SERVING,
    TicketStatus.HELD,
)
FINAL_STATUSES = tuple(s for s in TicketStatus if s not in ACTIVE_STATUSES)


class Priority(enum.StrEnum):
    NORMAL = "normal"
    ELDERLY = "elderly"
    DISABLED = "disabled"
    PREGNANT = "pregnant"
    VIP = "vip"


# a higher rank goes first under the strict policy and gets a larger head start under aging
PRIORITY_RANK = {
    Priority.NORMAL: 0,
    Priority.ELDERLY: 1,
    Priority.DISABLED: 1,
    Priority.PREGNANT: 1,
    Priority.VIP: 2,
}


class Source(enum.StrEnum):
    KIOSK = "kiosk"
    MOBILE = "mobile"
    APPOINTMENT = "appointment"
    STAFF = "staff"


WAITING_IN_SERVICE_QUEUE = "status = 'waiting' AND target_counter_id IS NULL"


class Visit(db.Model):
    """One customer's journey through a branch; its steps are tickets."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # the customer's secret for following the visit on a phone (192 random bits)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the retention job blanked its personal data (`customers/retention.py`)
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    branch: Mapped[Branch] = relationship()
    customer: Mapped[Customer | None] = relationship()
    tickets: Mapped[list[Ticket]] = relationship(
        back_populates="visit", order_by="Ticket.step", foreign_keys="Ticket.visit_id"
    )


class Ticket(db.Model):
    """One step of a visit: waiting for, and being served at, one service."""

    __tablename__ = "tickets"
    __table_args__ = (
        # the numbering guarantee: a sequence value is used once per service and business day
        UniqueConstraint("service_id", "business_day", "sequence"),
        UniqueConstraint("visit_id", "step"),
        CheckConstraint("recall_count >= 0", name="recall_count"),
        CheckConstraint("step >= 1", name="step"),
        # the routing query: waiting tickets of a branch in queue order
        Index("ix_tickets_queue", "branch_id", "status", "service_id", "queue_since"),
        Index("ix_tickets_counter_status", "counter_id", "status"),
        Index("ix_tickets_branch_day", "branch_id", "business_day"),
        # a ticket's position: the waiting tickets of its service's queue ahead of it,
        # counted for every ticket issued (tickets/fastpath.py, queries.standing); only
        # waiting tickets are in it, so it stays as small as the queues themselves
        Index(
            "ix_tickets_waiting",
            "branch_id",
            "service_id",
            "queue_since",
            postgresql_where=text(WAITING_IN_SERVICE_QUEUE),
            sqlite_where=text(WAITING_IN_SERVICE_QUEUE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    step: Mapped[int] = mapped_column(Integer, default=1)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    business_day: Mapped[date] = mapped_column(Date)
    # the number's sequence value; a transferred step keeps the customer's number and has none
    sequence: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(12))
    priority: Mapped[Priority] = mapped_column(
        str_enum(Priority, "priority"), default=Priority.NORMAL
    )
    source: Mapped[Source] = mapped_column(str_enum(Source, "source"), default=Source.KIOSK)
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"), default=TicketStatus.WAITING
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the queue is ordered by this: issue time, or the original arrival for a transfer that
    # keeps its place
    queue_since: Mapped[datetime] = mapped_column(UTCDateTime)
    appointment_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first call
    last_called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # left the queue, any way
    recall_count: Mapped[int] = mapped_column(Integer, default=0)
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # only this counter may call the ticket (transfer to a counter, resume after hold)
    target_counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    # indexed: a step's successor is looked up by it, and deleting a ticket checks it
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    outcome_code: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)  # staff notes on this step
    handover_note: Mapped[str | None] = mapped_column(Text)  # for the next member of staff
    # the virtual mobile queue (tickets/remote.py): a remote ticket is called only once its
    # customer confirmed arrival ("I'm here"); every other ticket is confirmed at issue. Until
    # then, each time its turn comes it goes back a few places (counted here), then expires.
    arrival_confirmed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    arrival_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moved_back_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the wait the customer was told when the ticket was issued (or checked in); feedback
    # compares it with the actual wait (was the quoted wait kept?)
    quoted_wait_s: Mapped[int | None] = mapped_column(Integer)

    visit: Mapped[Visit] = relationship(back_populates="tickets", foreign_keys=[visit_id])
    branch: Mapped[Branch] = relationship()
    service: Mapped[Service] = relationship()
    counter: Mapped[Counter | None] = relationship(foreign_keys=[counter_id])
    target_counter: Mapped[Counter | None] = relationship(foreign_keys=[target_counter_id])
    staff: Mapped[User | None] = relationship(foreign_keys=[staff_id])
    previous: Mapped[Ticket | None] = relationship(remote_side=[id], foreign_keys=[previous_id])

    @property
    def token(self) -> str:
        return self.visit.token

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def __repr__(self):
        return f"<Ticket {self.number} {self.status}>"


class TicketSequence(db.Model):
    """The last number given out per service and business day, incremented atomically."""

    __tablename__ = "ticket_sequences"
    __table_args__ = (UniqueConstraint("service_id", "business_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    business_day: Mapped[date] = mapped_column(Date)
    last_value: Mapped[int] = mapped_column(Integer)


class JourneyEvent(db.Model):
    """Append-only log of who did what to which ticket (or counter) when."""

    __tablename__ = "journey_events"
    __table_args__ = (UniqueConstraint("branch_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    seq: Mapped[int] = mapped_column(BigInteger)  # the branch's event sequence number
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    data: Mapped[dict | None] = mapped_column(JSON)


class AppendOnlyViolation(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _journal_is_append_only(session, _flush_context, _instances):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, JourneyEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyViolation("journey events are never changed or deleted")
