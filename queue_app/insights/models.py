from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class WaitStat(db.Model):
    """The waits of one branch, service, local day and local hour, rolled up from tickets.

    A row counts the first steps of visits that arrived (ticket issued) in that hour of the
    branch's own calendar and were called: how many (`samples`), their median and their total
    wait in seconds. Filled by `insights.services.roll_up_branch` for finished days; hours
    without a called ticket have no row.
    """

    __tablename__ = "wait_stats"
    __table_args__ = (
        CheckConstraint("hour >= 0 AND hour <= 23", name="hour"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday"),
        CheckConstraint("samples >= 1", name="samples"),
    )

    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # the branch's local day
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # local, 0-23
    weekday: Mapped[int] = mapped_column(SmallInteger)  # of `day`: 0 Monday .. 6 Sunday
    samples: Mapped[int] = mapped_column(Integer)
    median_wait_s: Mapped[int] = mapped_column(Integer)
    total_wait_s: Mapped[int] = mapped_column(BigInteger)
