from __future__ import annotations

import enum
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.types import UTCDateTime, utcnow
from ..extensions import db

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def str_enum(cls, name):
    """A Python enum stored as its values in a VARCHAR with a named CHECK constraint."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in cls),
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class LateArrival(enum.StrEnum):
    WALK_IN = "walk_in"  # checked in after the window: queued as a walk-in
    REFUSE = "refuse"  # checked in after the window: refused, the appointment stays a no-show


class PriorityPolicy(enum.StrEnum):
    STRICT = "strict"  # a higher priority class always goes first
    INTERLEAVE = "interleave"  # N priority calls, then M normal calls, per counter
    AGING = "aging"  # priority adds a head start to the time waited


class CounterStatus(enum.StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


class Branch(db.Model):
    __tablename__ = "branches"
    __table_args__ = (
        CheckConstraint("interleave_priority >= 1 AND interleave_normal >= 1", name="interleave"),
        CheckConstraint("recall_limit >= 0", name="recall_limit"),
        CheckConstraint(
            "remote_move_back_places >= 1 AND remote_move_back_limit >= 0",
            name="remote_move_back",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="id")
    country: Mapped[str] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(80))
    address: Mapped[str | None] = mapped_column(String(255))
    # WGS 84 degrees, for the nearby branches with shorter waits (insights)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # {"mon": [["08:00", "15:00"]], ..., "sun": []}, in the branch's own time zone
    opening_hours: Mapped[dict] = mapped_column(JSON, default=dict)
    priority_policy: Mapped[PriorityPolicy] = mapped_column(
        str_enum(PriorityPolicy, "priority_policy"), default=PriorityPolicy.STRICT
    )
    interleave_priority: Mapped[int] = mapped_column(Integer, default=1)
    interleave_normal: Mapped[int] = mapped_column(Integer, default=2)
    aging_boost_s: Mapped[int] = mapped_column(Integer, default=600)
    recall_limit: Mapped[int] = mapped_column(Integer, default=3)
    # a checked-in appointment goes first from this long before its time until this long after
    appointment_early_s: Mapped[int] = mapped_column(Integer, default=300)
    appointment_grace_s: Mapped[int] = mapped_column(Integer, default=900)
    transfer_keeps_place: Mapped[bool] = mapped_column(Boolean, default=True)
    # appointments: check-in is open from this long before the slot until this long after it;
    # a later arrival becomes a walk-in ("walk_in") or is turned away ("refuse")
    check_in_early_s: Mapped[int] = mapped_column(Integer, default=1800, server_default="1800")
    check_in_late_s: Mapped[int] = mapped_column(Integer, default=900, server_default="900")
    late_arrival: Mapped[LateArrival] = mapped_column(
        str_enum(LateArrival, "late_arrival"),
        default=LateArrival.WALK_IN,
        server_default=LateArrival.WALK_IN.value,
    )
    # the virtual mobile queue (tickets/remote.py): remote intake on or off; a remote ticket
    # not confirmed on arrival when its turn comes goes back this many places in its queue,
    # at most this many times, then expires
    remote_intake: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    remote_move_back_places: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    remote_move_back_limit: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # every change in the branch takes the next number; clients use it to detect missed events
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    services: Mapped[list[Service]] = relationship(
        back_populates="branch", order_by="Service.position, Service.id"
    )
    counters: Mapped[list[Counter]] = relationship(
        back_populates="branch", order_by="Counter.position, Counter.id"
    )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def business_day(self, moment: datetime) -> date:
        """The calendar day in the branch's own time zone."""
        return self.local(moment).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Start and end (exclusive) of a business day as aware datetimes."""
        start = datetime.combine(day, time.min, tzinfo=self.tz)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=self.tz)
        return start, end

    def hours_on(self, day: date) -> list[tuple[time, time]]:
        spans = (self.opening_hours or {}).get(WEEKDAYS[day.weekday()], [])
        return [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans]

    def is_open_at(self, moment: datetime) -> bool:
        local = self.local(moment)
        return any(a <= local.time() < b for a, b in self.hours_on(local.date()))

    def __repr__(self):
        return f"<Branch {self.code}>"


def network_day(branches, moment: datetime) -> date:
    """ "Today" for a view over several branches: the earliest of their business days at
    `moment`, so that the days before it are over in every one of them (UTC with none).

    A network view ending "yesterday" then never shows a day a branch is still living, and
    a branch west of the others does not lose its last day while UTC has not caught up."""
    days = [branch.business_day(moment) for branch in branches]
    return min(days) if days else moment.astimezone(ZoneInfo("UTC")).date()


class Service(db.Model):
    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("branch_id", "code"),
        UniqueConstraint("branch_id", "prefix"),
        CheckConstraint("expected_duration_s > 0", name="expected_duration"),
        CheckConstraint("target_wait_s > 0", name="target_wait"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    # {"id": "Teller", "en": "Teller"}: the name in each language, `name` is the fallback
    names: Mapped[dict] = mapped_column(JSON, default=dict)
    segment: Mapped[str | None] = mapped_column(String(40))
    prefix: Mapped[str] = mapped_column(String(3))
    expected_duration_s: Mapped[int] = mapped_column(Integer, default=300)
    target_wait_s: Mapped[int] = mapped_column(Integer, default=900)
    # appointments: the share of the serving counters' time offered for booking (the rest is
    # kept for walk-ins) and the slot length (None: the expected duration, rounded up to 5 min)
    bookable_percent: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    slot_minutes: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    branch: Mapped[Branch] = relationship(back_populates="services")

    def display_name(self, locale: str | None = None) -> str:
        return (self.names or {}).get(locale or "", self.name)

    def __repr__(self):
        return f"<Service {self.code}@{self.branch_id}>"


class Counter(db.Model):
    __tablename__ = "counters"
    __table_args__ = (UniqueConstraint("branch_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))  # shown on lobby displays and spoken
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[CounterStatus] = mapped_column(
        str_enum(CounterStatus, "counter_status"), default=CounterStatus.CLOSED
    )
    pause_reason: Mapped[str | None] = mapped_column(String(120))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # where this counter stands in its branch's N:M interleave cycle
    interleave_pos: Mapped[int] = mapped_column(Integer, default=0)
    # its staffing plan per weekday, local times in the branch's zone (`branches/plans.py`):
    # {"mon": {"hours": ["08:30", "14:00"], "breaks": [["12:00", "12:30"]]}, ...}; no "hours"
    # (or no day, or None): the branch's opening hours, no breaks
    plan: Mapped[dict | None] = mapped_column(JSON)

    branch: Mapped[Branch] = relationship(back_populates="counters")
    staff: Mapped[User | None] = relationship(foreign_keys=[staff_id])  # noqa: F821
    service_links: Mapped[list[CounterService]] = relationship(
        order_by="CounterService.position",
        cascade="all, delete-orphan",
        back_populates="counter",
    )

    @property
    def services(self) -> list[Service]:
        """The services this counter serves, in its priority order."""
        return [link.service for link in self.service_links]

    def __repr__(self):
        return f"<Counter {self.name}@{self.branch_id}>"


class CounterService(db.Model):
    __tablename__ = "counter_services"
    __table_args__ = (UniqueConstraint("counter_id", "position"),)

    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)

    counter: Mapped[Counter] = relationship(back_populates="service_links")
    # loaded with the link: reading a counter's services is one statement, not one per service
    service: Mapped[Service] = relationship(lazy="joined")
