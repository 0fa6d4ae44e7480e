"""Cases: an unhappy customer's rating turned into work that climbs the escalation ladder until
someone has called them back (DESIGN.md, "Escalation ladder").

A case is opened from one `FeedbackResponse` (at most one case per response) at level 1, owned by
the touchpoint's owner and due `CASE_LEVEL_HOURS[0]` hours later. The sweep moves a case whose
due time passed without a logged follow-up contact to the next level (owner: the previous owner's
manager; the last level informs the executive list). Every step of a case is a `CaseStep`: who,
when, what, kept for good.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..branches.models import Branch, Service, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class CaseStatus(enum.StrEnum):
    OPEN = "open"  # nobody has taken it yet
    ACKNOWLEDGED = "acknowledged"  # its owner has taken it
    RESOLVED = "resolved"  # closed with a root cause, a reason and the action taken


class RootCause(enum.StrEnum):
    """The 5P frame of pain areas."""

    POLICY = "policy"
    PEOPLE = "people"
    PROCESS = "process"
    PRODUCT = "product"
    PLACE = "place"


class StepKind(enum.StrEnum):
    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    CONTACT = "contact"  # a contact attempt: data {"reached": bool, "channel": "phone" ...}
    NOTE = "note"
    REASSIGNED = "reassigned"  # data {"to_user": id} or {"department": "..."}
    ESCALATED = "escalated"  # data {"from": level, "to": level}
    RESOLVED = "resolved"  # data {"root_cause", "reason_code", "action"}
    RECOVERY_SENT = "recovery_sent"  # the short survey after resolution went out
    RECOVERY_ANSWERED = "recovery_answered"  # data {"nps": .., "happy": bool}
    REOPENED = "reopened"  # a still-unhappy recovery answer


class Case(db.Model):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("level >= 1", name="level"),
        # the sweep: open cases whose time is up
        Index("ix_cases_status_due", "status", "due_at"),
        Index("ix_cases_branch_opened", "branch_id", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("feedback_responses.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[CaseStatus] = mapped_column(
        str_enum(CaseStatus, "case_status"), default=CaseStatus.OPEN
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    department: Mapped[str | None] = mapped_column(String(80))
    # why it was opened, e.g. ["nps<=6", "reason:waiting_time", "keyword:kecewa"]
    triggers: Mapped[list] = mapped_column(JSON, default=list)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None once resolved
    first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    root_cause: Mapped[RootCause | None] = mapped_column(str_enum(RootCause, "root_cause"))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    action_taken: Mapped[str | None] = mapped_column(Text)
    # the recovery survey after resolution: the NPS the customer gave then
    recovery_nps: Mapped[int | None] = mapped_column(Integer)

    branch: Mapped[Branch] = relationship()
    service: Mapped[Service] = relationship()
    steps: Mapped[list[CaseStep]] = relationship(
        back_populates="case", order_by="CaseStep.id", cascade="all, delete-orphan"
    )


class CaseStep(db.Model):
    """One thing that happened to a case: append-only."""

    __tablename__ = "case_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[StepKind] = mapped_column(str_enum(StepKind, "case_step_kind"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[int] = mapped_column(Integer)  # the case's level when it happened
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    case: Mapped[Case] = relationship(back_populates="steps")
