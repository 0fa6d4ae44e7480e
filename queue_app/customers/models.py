from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class Customer(db.Model):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164, e.g. +6281234567890
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(120))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # the bank's CRM id
    locale: Mapped[str | None] = mapped_column(String(8))
    consent_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_survey: Mapped[bool] = mapped_column(Boolean, default=False)
    # when and how each consent was given (`customers/privacy.py` `give_consent`): the source
    # is "booking", "remote_join", "kiosk", "staff", "api"; None when not given or withdrawn
    consent_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_contact_source: Mapped[str | None] = mapped_column(String(16))
    consent_survey_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_survey_source: Mapped[str | None] = mapped_column(String(16))
    # the personal data were erased on request or by the retention job (the row stays, empty,
    # so the anonymous statistics that point at it stay whole)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self):
        return f"<Customer {self.id}>"


class ContactVerification(db.Model):
    """The one-time code proving a phone number or e-mail address (customers/verification.py).

    One row per contact, locked while a code is checked: the row is what serializes two phones
    using the same contact at the same instant. It holds the current code (its keyed hash, its
    expiry, the wrong tries), the branch and service it was asked for, and the count of codes
    asked for in the current window (the per-contact limit).
    """

    __tablename__ = "contact_verifications"
    __table_args__ = (CheckConstraint("attempts >= 0 AND window_count >= 0", name="counts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # E.164 phone number or lower-case e-mail address
    contact: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # "sms" or "email"
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    code_hash: Mapped[str | None] = mapped_column(String(64))  # None: no usable code
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong tries of this code
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_count: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self):
        return f"<ContactVerification {self.id}>"
