"""Feedback: what a customer says about one visit step, the survey of each touchpoint, and every
invitation to rate (sent or not, and why not).

A touchpoint is a branch and a service (`SurveyConfig`; a row with no service is the branch's
default, and no row at all means the network's defaults in `feedback/questions.py`). A response
rates exactly one ticket (one step of a visit): `FeedbackResponse.ticket_id` is unique, so a step is
rated once whatever the channel. The response copies the touchpoint (branch, service, counter,
staff member), the channel and the visit step's operational facts at the time it is given, so the
metrics never join back into the live queue tables and never change when a ticket is edited later.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..branches.models import Branch, Service, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class FeedbackChannel(enum.StrEnum):
    TABLET = "tablet"  # the feedback tablet paired with the counter
    QR = "qr"  # the QR code on the printed ticket, or the tracking page
    LINK = "link"  # the signed link sent by e-mail or SMS after the visit
    API = "api"  # another system posting through the REST API


class InvitationStatus(enum.StrEnum):
    SENT = "sent"  # a message with the signed link went to the outbox
    SKIPPED = "skipped"  # not sent: `reason` says why


class SkipReason(enum.StrEnum):
    SAMPLED_OUT = "sampled_out"  # the touchpoint's sampling rate left this visit out
    RECENTLY_INVITED = "recently_invited"  # invited within the quiet period
    OPEN_CASE = "open_case"  # the customer has an open case: no survey while it is worked
    NO_CONTACT = "no_contact"  # no phone number or e-mail address
    NO_CONSENT = "no_consent"  # the customer did not agree to surveys
    ALREADY_RATED = "already_rated"  # rated at the tablet or by QR before the link went out
    NOT_SERVED = "not_served"  # the step ended without service (no-show, cancelled ...)
    SURVEY_OFF = "survey_off"  # the touchpoint asks no question


class SurveyConfig(db.Model):
    """The survey of a touchpoint: which questions, which reasons, how often, when to escalate."""

    __tablename__ = "survey_configs"
    __table_args__ = (
        UniqueConstraint("branch_id", "service_id"),
        CheckConstraint("sample_percent BETWEEN 0 AND 100", name="sample_percent"),
        CheckConstraint("quiet_days >= 0", name="quiet_days"),
        CheckConstraint("link_valid_days >= 1", name="link_valid_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    # None: the branch's default for every service without a row of its own
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    ask_nps: Mapped[bool] = mapped_column(Boolean, default=True)
    ask_csat: Mapped[bool] = mapped_column(Boolean, default=True)
    ask_ces: Mapped[bool] = mapped_column(Boolean, default=False)
    ask_comment: Mapped[bool] = mapped_column(Boolean, default=True)
    # reason codes offered (multi-select), from feedback/questions.py REASONS; [] = none asked
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    # share of finished visit steps invited by e-mail/SMS, and days before the same customer
    # is invited again; how long the signed link stays valid
    sample_percent: Mapped[int] = mapped_column(Integer, default=100)
    quiet_days: Mapped[int] = mapped_column(Integer, default=30)
    link_valid_days: Mapped[int] = mapped_column(Integer, default=7)
    # escalation criteria: a response at or below a threshold (None: not a criterion), with one
    # of these reasons, or with one of these words in its comment opens a case
    escalate_nps_max: Mapped[int | None] = mapped_column(Integer, default=6)
    escalate_csat_max: Mapped[int | None] = mapped_column(Integer, default=2)
    escalate_ces_max: Mapped[int | None] = mapped_column(Integer, default=2)
    escalate_reasons: Mapped[list] = mapped_column(JSON, default=list)
    escalate_keywords: Mapped[list] = mapped_column(JSON, default=list)
    # who owns the touchpoint's cases at level 1 (None: the branch's manager)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    branch: Mapped[Branch] = relationship()
    service: Mapped[Service | None] = relationship()


class FeedbackResponse(db.Model):
    """One rating of one visit step, with the touchpoint and the step's facts copied in."""

    __tablename__ = "feedback_responses"
    __table_args__ = (
        CheckConstraint("nps IS NULL OR nps BETWEEN 0 AND 10", name="nps"),
        CheckConstraint("csat IS NULL OR csat BETWEEN 1 AND 5", name="csat"),
        CheckConstraint("ces IS NULL OR ces BETWEEN 1 AND 5", name="ces"),
        # the metrics: a branch's responses of a range of business days
        Index("ix_feedback_responses_branch_day", "branch_id", "business_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # one response per visit step, whatever the channel
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[FeedbackChannel] = mapped_column(str_enum(FeedbackChannel, "feedback_channel"))
    nps: Mapped[int | None] = mapped_column(Integer)
    csat: Mapped[int | None] = mapped_column(Integer)
    ces: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    comment: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(8))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the business day of the visit step in the branch's zone (the day the metrics count it on)
    business_day: Mapped[date] = mapped_column(Date)
    # the step's facts (DESIGN.md): wait = first call - arrival (issue, or check-in);
    # service time = finish - start; the wait the customer was told at arrival; transfers so far
    wait_s: Mapped[int | None] = mapped_column(Integer)
    quoted_wait_s: Mapped[int | None] = mapped_column(Integer)
    service_s: Mapped[int | None] = mapped_column(Integer)
    transfers: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def quote_kept(self) -> bool | None:
        """Whether the actual wait stayed within the wait quoted at arrival (None: unknown)."""
        if self.wait_s is None or self.quoted_wait_s is None:
            return None
        return self.wait_s <= self.quoted_wait_s


class FeedbackInvitation(db.Model):
    """Every decision to invite a finished visit step to rate by e-mail/SMS: sent or skipped."""

    __tablename__ = "feedback_invitations"
    __table_args__ = (
        # the contact policy's question: when was this customer last invited?
        Index("ix_feedback_invitations_customer", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[InvitationStatus] = mapped_column(
        str_enum(InvitationStatus, "invitation_status")
    )
    reason: Mapped[SkipReason | None] = mapped_column(str_enum(SkipReason, "skip_reason"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
