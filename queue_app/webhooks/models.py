"""Webhook endpoints and their deliveries.

A `WebhookDelivery` is one event for one endpoint: written in the same transaction as the
change it is about (never lost, never sent for a change that rolled back), then sent by the
`deliver_webhooks` job (`services.deliver_due`). Its `uid` is the `X-QueueApp-Delivery` header:
the same on every attempt and on a replay, so a receiver can drop duplicates.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..branches.models import Branch, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db

EVENTS = ("ticket.called", "ticket.finished", "feedback.received", "case.escalated", "alert.raised")


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(db.Model):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    url: Mapped[str] = mapped_column(String(500))
    # the HMAC key that signs every delivery, shown once when made; stored sealed (a copy of
    # the database does not reveal it): `services.signing_secret` opens it
    secret_sealed: Mapped[str] = mapped_column("secret", String(512))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # only the events of this branch (None: every branch)
    branch_id: Mapped[int | None] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch: Mapped[Branch | None] = relationship()

    def wants(self, event: str, branch_id: int | None) -> bool:
        return (
            self.active
            and event in (self.events or ())
            and (self.branch_id is None or self.branch_id == branch_id)
        )


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_try_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    branch_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "webhook_delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the attempt after which a failure is final (a replay allows one more)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    endpoint: Mapped[WebhookEndpoint] = relationship()
