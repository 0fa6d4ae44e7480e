"""The outbox: messages to customers (e-mail, SMS, WhatsApp), written in the transaction of
the change they are about and delivered after it, with retries (`notify/services.py`)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..branches.models import str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # to be sent at next_attempt_at
    SENT = "sent"
    FAILED = "failed"  # every channel and every attempt failed


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # what it is about, e.g. "appointment_confirmation", "appointment_reminder", "queue_next"
    kind: Mapped[str] = mapped_column(String(40))
    # written once per (kind, subject, moment): a retried unit of work never sends twice
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "outbox_channel"))
    recipient: Mapped[str] = mapped_column(String(255))
    # the channels to try next when this one fails: [{"channel": "sms", "recipient": "+62..."}]
    fallbacks: Mapped[list] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(8), default="id")
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # [{"filename": "kunjungan.ics", "content_type": "text/calendar", "data_b64": "..."}]
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
