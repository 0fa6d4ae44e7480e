from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..branches.models import Branch, Counter, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class DeviceKind(enum.StrEnum):
    KIOSK = "kiosk"
    DISPLAY = "display"
    FEEDBACK = "feedback"  # a feedback tablet paired with one counter (feedback/)


class Device(db.Model):
    """A kiosk or lobby display.

    A device that opens its page for the first time registers itself: it gets a secret token
    (kept in a cookie, only its SHA-256 stored here) and a short pairing code it shows on
    screen. An admin or branch manager enters that code to pair it with a branch; from then on
    the token identifies the device until someone revokes it. Pending: `paired_at` is empty;
    revoked: `revoked_at` is set (the device shows the pairing screen again).
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DeviceKind] = mapped_column(str_enum(DeviceKind, "device_kind"))
    name: Mapped[str] = mapped_column(String(80), default="")
    branch_id: Mapped[int | None] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE"), index=True
    )
    # a feedback tablet rates the visits finished at this counter of its branch
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id", ondelete="SET NULL"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pairing_code: Mapped[str | None] = mapped_column(String(12), unique=True)
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # per-device settings: kiosk orientation and services shown, display messages/images ...
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paired_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    branch: Mapped[Branch | None] = relationship()
    counter: Mapped[Counter | None] = relationship()
    paired_by: Mapped[User | None] = relationship()

    @property
    def is_paired(self) -> bool:
        return self.paired_at is not None and self.revoked_at is None and self.branch_id is not None

    def __repr__(self):
        return f"<Device {self.id} {self.kind} branch={self.branch_id}>"
