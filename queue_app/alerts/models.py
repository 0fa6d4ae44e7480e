"""Alert thresholds: rules per branch (optionally per service) and the alerts they raise.

An `AlertRule` watches one metric of a branch's live state (`Metric`): raised when the value
reaches `raise_at`, cleared only once it is at or below `clear_at` (hysteresis) and, with
`clear_after_s`, has stayed there that long. An unacknowledged alert climbs to the owner's
manager every `ack_within_s`.

An `Alert` is one episode of one rule for one subject: the branch as a whole, a service's
queue, or one counter (the idle-counter metric). At most one alert per (rule, subject) is
open (raised or acknowledged): the unique partial index `uq_alerts_open` says so, so two
evaluations at once raise once. Every step of an alert is an `AlertStep`, kept for good.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..branches.models import Branch, Counter, Service, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class Metric(enum.StrEnum):
    LONGEST_WAIT_S = "longest_wait_s"  # the longest current wait of a waiting ticket, seconds
    QUEUE_LENGTH = "queue_length"  # waiting tickets
    EWT_S = "ewt_s"  # the estimated wait of a ticket issued now, seconds
    IDLE_COUNTER_S = "idle_counter_s"  # an open counter idle while its queues wait, seconds
    NO_SHOW_RATE = "no_show_rate"  # share (0..1) of no-shows among the recent calls


class AlertStatus(enum.StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


OPEN_STATUSES = (AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED)
OPEN_ALERT = "status <> 'cleared'"


class AlertStepKind(enum.StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"  # data {"from": level, "to": level, "owner": user id}
    CALMING = "calming"  # the value fell to clear_at or below: the clearing clock runs
    RELAPSED = "relapsed"  # it rose above clear_at again before the alert cleared
    CLEARED = "cleared"


class AlertRule(db.Model):
    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("clear_at <= raise_at", name="hysteresis"),
        CheckConstraint("clear_after_s >= 0", name="clear_after_s"),
        CheckConstraint("ack_within_s IS NULL OR ack_within_s > 0", name="ack_within_s"),
        CheckConstraint("window_s > 0 AND min_count >= 1", name="window"),
        Index("ix_alert_rules_branch", "branch_id", "enabled"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))  # None: the branch
    metric: Mapped[Metric] = mapped_column(str_enum(Metric, "alert_metric"))
    raise_at: Mapped[float] = mapped_column(Float)
    clear_at: Mapped[float] = mapped_column(Float)
    # the value must stay at or below clear_at this long before the alert clears
    clear_after_s: Mapped[int] = mapped_column(Integer, default=0)
    # not acknowledged this long after raising (or after the last escalation): the owner's
    # manager takes it over. None: never escalated (no column default: None is a value here)
    ack_within_s: Mapped[int | None] = mapped_column(Integer)
    # the no-show rate: over the calls that ended in the last `window_s`, at least `min_count`
    window_s: Mapped[int] = mapped_column(Integer, default=3600)
    min_count: Mapped[int] = mapped_column(Integer, default=10)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch: Mapped[Branch] = relationship()
    service: Mapped[Service | None] = relationship()


class Alert(db.Model):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("level >= 1", name="level"),
        # one open alert per rule and subject: a second evaluation's insert fails
        Index(
            "uq_alerts_open",
            "rule_id",
            "subject",
            unique=True,
            postgresql_where=text(OPEN_ALERT),
            sqlite_where=text(OPEN_ALERT),
        ),
        # the escalation sweep: raised alerts whose acknowledgement is due
        Index("ix_alerts_status_ack_due", "status", "ack_due_at"),
        Index("ix_alerts_branch_raised", "branch_id", "raised_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once its rule was deleted: the alert keeps its own copy of what it was about
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    # "branch", "service:<id>" or "counter:<id>"
    subject: Mapped[str] = mapped_column(String(40))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    metric: Mapped[Metric] = mapped_column(str_enum(Metric, "alert_metric"))
    threshold: Mapped[float] = mapped_column(Float)  # the rule's raise_at when it was raised
    clear_at: Mapped[float] = mapped_column(Float)
    value_raised: Mapped[float] = mapped_column(Float)
    current_value: Mapped[float | None] = mapped_column(Float)  # None: no evidence now
    peak_value: Mapped[float] = mapped_column(Float)
    status: Mapped[AlertStatus] = mapped_column(
        str_enum(AlertStatus, "alert_status"), default=AlertStatus.RAISED
    )
    level: Mapped[int] = mapped_column(Integer, default=1)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ack_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # since when the value has been at or below clear_at (None: it is not)
    calm_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    rule: Mapped[AlertRule | None] = relationship()
    branch: Mapped[Branch] = relationship()
    service: Mapped[Service | None] = relationship()
    counter: Mapped[Counter | None] = relationship()
    steps: Mapped[list[AlertStep]] = relationship(
        back_populates="alert", order_by="AlertStep.id", cascade="all, delete-orphan"
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AlertStep(db.Model):
    """One thing that happened to an alert: append-only."""

    __tablename__ = "alert_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    kind: Mapped[AlertStepKind] = mapped_column(str_enum(AlertStepKind, "alert_step_kind"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    value: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    alert: Mapped[Alert] = relationship(back_populates="steps")
