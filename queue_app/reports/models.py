from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.types import UTCDateTime
from ..extensions import db


class ReportSnapshot(db.Model):
    """The finished figures of the report of a closed period (reports/snapshots.py).

    A period is closed when every one of its business days is before each branch's current
    one and none of its tickets is still active: its tickets no longer change, so neither does
    its report. `key` names the report exactly (sorted branch ids, period, first day, service,
    a fingerprint of the settings the figures depend on - the services' target waits and the
    branches' time zones - and the payload's format): a changed target is another key, and
    the old row is simply never read again. `payload` holds the figures only (JSON: totals,
    series, per-dimension summaries keyed by ids, heat map); the branches, services,
    counters and staff they name are read at read time.
    """

    __tablename__ = "report_snapshots"
    __table_args__ = (CheckConstraint("period IN ('day', 'week', 'month')", name="period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256, hex
    period: Mapped[str] = mapped_column(String(8))
    start_day: Mapped[date] = mapped_column(Date)
    end_day: Mapped[date] = mapped_column(Date)
    branch_ids: Mapped[list] = mapped_column(JSON)  # sorted
    service_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
