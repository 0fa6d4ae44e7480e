"""Slots and bookings. The only code that changes appointments; every function takes `now`.

A day's slots of a service at a branch (`day_slots`): none on the branch's closures
(`BranchClosure`) and its country's public holidays (the `holidays` package); otherwise one
slot every `slot_length` from the start of each opening span of that weekday (in the branch's
own time zone) while the slot still ends within the span. A slot's capacity is the bookable
share (`Service.bookable_percent`) of the counters that serve the service, rounded down.

Taking a place (`hold`, `book`) locks the slot's row first (`_lock_slot`), then counts the
places taken and adds one only if there is room: two customers racing for the last place of a
slot never both get it (tests/test_booking.py races 20 on PostgreSQL).

A booking is changed through the customer's signed link (`booking/links.py`): `reschedule`
moves it to another slot of its service under the new slot's lock, in one unit of work, so
its old place is free and its new one taken at the same commit; `cancel` frees it. Both keep
the booking code and tell the outbox (`notify/receivers.py`) in the same transaction.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import holidays
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from ..branches.models import Branch, Counter, CounterService, Service
from ..core.errors import Conflict, InvalidInput, NotFound
from ..core.events import in_transaction, publish
from ..extensions import db
from .models import Appointment, AppointmentSlot, AppointmentStatus, BranchClosure

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed at a kiosk
CODE_LENGTH = 6
DEFAULT_HOLD_S = 600
MIN_SLOT_MINUTES = 10


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # UTC
    end: datetime
    capacity: int
    taken: int

    @property
    def available(self) -> int:
        return max(self.capacity - self.taken, 0)


# --- the calendar ----------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _country_holidays(country: str, year: int) -> dict:
    try:
        return dict(holidays.country_holidays(country, years=year))
    except NotImplementedError:  # a country the package does not know: no public holidays
        return {}


def closed_reason(branch: Branch, day: date) -> str | None:
    """Why the branch takes no appointment on `day` (a holiday's name, a closure's reason)."""
    closure = db.session.scalar(
        select(BranchClosure).where(BranchClosure.branch_id == branch.id, BranchClosure.day == day)
    )
    if closure is not None:
        return closure.reason or "closed"
    return _country_holidays(branch.country or "ID", day.year).get(day)


def slot_length(service: Service) -> timedelta:
    if service.slot_minutes:
        return timedelta(minutes=service.slot_minutes)
    minutes = math.ceil(service.expected_duration_s / 60 / 5) * 5
    return timedelta(minutes=max(minutes, MIN_SLOT_MINUTES))


def capacity(service: Service) -> int:
    """Places per slot: the bookable share of the counters that serve the service."""
    counters = db.session.scalar(
        select(func.count())
        .select_from(CounterService)
        .join(Counter, Counter.id == CounterService.counter_id)
        .where(CounterService.service_id == service.id, Counter.branch_id == service.branch_id)
    )
    return counters * service.bookable_percent // 100


def slot_starts(branch: Branch, service: Service, day: date) -> list[datetime]:
    """The UTC starts of the day's slots (ignoring closures and holidays)."""
    step = slot_length(service)
    starts = []
    for opens, closes in branch.hours_on(day):
        moment = datetime.combine(day, opens, tzinfo=branch.tz)
        end = datetime.combine(day, closes, tzinfo=branch.tz)
        while moment + step <= end:
            starts.append(moment.astimezone(UTC))
            moment += step
    return starts


def _taken_filter(now: datetime):
    return or_(
        Appointment.status.in_((AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)),
        (Appointment.status == AppointmentStatus.HELD) & (Appointment.hold_expires_at > now),
    )


def day_slots(branch: Branch, service: Service, day: date, *, now: datetime) -> list[Slot]:
    """The slots of `day` (the branch's calendar day) that have not started yet."""
    if not branch.active or not service.active or closed_reason(branch, day) is not None:
        return []
    starts = [s for s in slot_starts(branch, service, day) if s > now]
    if not starts:
        return []
    cap = capacity(service)
    taken = dict(
        db.session.execute(
            select(Appointment.start, func.count())
            .where(
                Appointment.service_id == service.id,
                Appointment.start >= starts[0],
                Appointment.start <= starts[-1],
                _taken_filter(now),
            )
            .group_by(Appointment.start)
        ).all()
    )
    step = slot_length(service)
    return [Slot(s, s + step, cap, taken.get(s, 0)) for s in starts]


# --- taking a place --------------------------------------------------------------------------


def _check_slot(branch: Branch, service: Service, start: datetime, now: datetime) -> None:
    if service.branch_id != branch.id:
        raise NotFound(f"no service {service.code} at {branch.code}")
    if not branch.active or not service.active:
        raise NotFound(f"{service.code} at {branch.code} takes no appointments")
    day = branch.business_day(start)
    reason = closed_reason(branch, day)
    if reason is not None:
        raise InvalidInput(f"{branch.code} is closed on {day.isoformat()}: {reason}", "closed")
    if start not in slot_starts(branch, service, day):
        raise InvalidInput("not the start of one of the service's slots", "not_a_slot")
    if start <= now:
        raise InvalidInput("that slot has already started", "slot_passed")


def _lock_slot(service: Service, start: datetime) -> None:
    """Lock the slot's row until the transaction ends (created on first use)."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(
        insert(AppointmentSlot)
        .values(service_id=service.id, start=start)
        .on_conflict_do_nothing(index_elements=["service_id", "start"])
    )
    db.session.execute(
        select(AppointmentSlot.id)
        .where(AppointmentSlot.service_id == service.id, AppointmentSlot.start == start)
        .with_for_update()
    )


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _take_place(branch, service, start, *, now, status, hold_s, customer, name, locale, email=None):
    _check_slot(branch, service, start, now)
    _lock_slot(service, start)
    taken = db.session.scalar(
        select(func.count()).where(
            Appointment.service_id == service.id,
            Appointment.start == start,
            _taken_filter(now),
        )
    )
    if taken >= capacity(service):
        raise Conflict("this slot is fully booked", "slot_full")
    for _attempt in range(5):
        appointment = Appointment(
            code=_new_code(),
            branch_id=branch.id,
            service_id=service.id,
            start=start,
            end=start + slot_length(service),
            status=status,
            customer=customer,
            name=name,
            email=email,
            locale=locale,
            created_at=now,
            hold_expires_at=now + timedelta(seconds=hold_s)
            if status == AppointmentStatus.HELD
            else None,
            booked_at=now if status == AppointmentStatus.BOOKED else None,
        )
        try:
            with db.session.begin_nested():  # a booking code already in use: draw another
                db.session.add(appointment)
        except IntegrityError:
            continue
        return appointment
    raise Conflict("no free booking code, try again", "busy")  # pragma: no cover


def hold(branch, service, start, *, now, hold_s=DEFAULT_HOLD_S, locale=None) -> Appointment:
    """Keep a place in the slot while the customer fills in the form (until the hold lapses)."""
    return _take_place(
        branch,
        service,
        start,
        now=now,
        status=AppointmentStatus.HELD,
        hold_s=hold_s,
        customer=None,
        name=None,
        locale=locale,
    )


def book(
    branch, service, start, *, now, customer, name=None, email=None, locale=None
) -> Appointment:
    """Book a place in the slot at once (the API; a held place is confirmed by `confirm`)."""
    appointment = _take_place(
        branch,
        service,
        start,
        now=now,
        status=AppointmentStatus.BOOKED,
        hold_s=0,
        customer=customer,
        name=name,
        locale=locale,
        email=email.strip().lower() if email else None,
    )
    db.session.flush()
    _published(appointment, "booked")
    return appointment


def confirm(appointment: Appointment, *, now, customer, name=None, email=None) -> Appointment:
    """Turn a held place into a booking, if the hold has not lapsed."""
    if appointment.status != AppointmentStatus.HELD:
        raise Conflict("this appointment is not waiting for confirmation", "not_held")
    if appointment.hold_expires_at is None or appointment.hold_expires_at <= now:
        raise Conflict("the hold on this slot has lapsed: choose a slot again", "hold_expired")
    appointment.status = AppointmentStatus.BOOKED
    appointment.customer = customer
    appointment.name = name
    appointment.email = email.strip().lower() if email else None
    appointment.booked_at = now
    appointment.hold_expires_at = None
    db.session.flush()
    _published(appointment, "booked")
    return appointment


def confirm_booking(
    appointment: Appointment,
    *,
    now,
    name: str,
    phone: str | None = None,
    email: str | None = None,
    consent: bool = False,
    region: str = "ID",
) -> Appointment:
    """The booking form of the phone pages: who the customer is (found or recorded by phone
    number or e-mail), their consent to be contacted if they gave it (never taken back here),
    then `confirm`. `invalid_phone` for a number that cannot be one."""
    from ..customers.services import identify_customer

    appointment = _locked(appointment)  # the form sent twice at once: confirmed once
    customer = identify_customer(phone=phone, email=email, name=name, region=region)
    if consent and customer is not None:
        from ..customers.privacy import give_consent

        give_consent(customer, now=now, source="booking")
    return confirm(appointment, now=now, customer=customer, name=name, email=email)


def _locked(appointment: Appointment) -> Appointment:
    """The appointment's row, locked until the end of the transaction and read afresh: two
    changes of one booking at once (two taps, two devices) run one after the other."""
    return db.session.scalar(
        select(Appointment)
        .where(Appointment.id == appointment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _changeable(appointment: Appointment, now: datetime) -> None:
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(
            f"a {appointment.status.value} appointment cannot be changed", "booking_not_active"
        )
    if appointment.start <= now:
        raise Conflict("this appointment has already started", "booking_started")


def cancel(appointment: Appointment, *, now) -> Appointment:
    """Cancel a held or booked place (a booked one that has not started yet): the place is
    free at once; a booked one's cancellation notice goes to the outbox."""
    appointment = _locked(appointment)
    if appointment.status not in (AppointmentStatus.HELD, AppointmentStatus.BOOKED):
        raise Conflict(
            f"a {appointment.status.value} appointment cannot be cancelled", "booking_not_active"
        )
    if appointment.status == AppointmentStatus.BOOKED and appointment.start <= now:
        raise Conflict("this appointment has already started", "booking_started")
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = now
    db.session.flush()
    _published(appointment, "cancelled")
    return appointment


def reschedule(appointment: Appointment, new_start: datetime, *, now) -> Appointment:
    """Move a booking to another slot of its service, keeping its booking code.

    The new place is taken like `book` takes one (the new slot's row locked, its places
    counted, `slot_full` when none is left); moving the row frees the old place in the same
    unit of work. The reminders start again for the new time (`reminders_sent` emptied;
    `booked_at` is now, so a reminder whose window the new time is already in is not sent:
    the change notice just said it)."""
    appointment = _locked(appointment)
    _changeable(appointment, now)
    if new_start == appointment.start:
        raise InvalidInput("the appointment is already in this slot", "same_slot")
    branch, service = appointment.branch, appointment.service
    _check_slot(branch, service, new_start, now)
    _lock_slot(service, new_start)
    taken = db.session.scalar(
        select(func.count()).where(
            Appointment.service_id == service.id,
            Appointment.start == new_start,
            _taken_filter(now),
        )
    )
    if taken >= capacity(service):
        raise Conflict("this slot is fully booked", "slot_full")
    previous = appointment.start
    appointment.start = new_start
    appointment.end = new_start + slot_length(service)
    appointment.changes = (appointment.changes or 0) + 1
    appointment.reminders_sent = []
    appointment.booked_at = now
    db.session.flush()
    _published(appointment, "rescheduled", previous_start=previous)
    return appointment


def bookable_services(branch: Branch) -> list[Service]:
    """The branch's services a customer can book: active, with at least one bookable place
    per slot (a bookable share of counters that serve them)."""
    if not branch.active:
        return []
    services = db.session.scalars(
        select(Service)
        .where(Service.branch_id == branch.id, Service.active.is_(True))
        .order_by(Service.position, Service.id)
    ).all()
    return [s for s in services if capacity(s) > 0]


def expire_holds(*, now) -> int:
    """Mark the lapsed holds expired (they already stopped counting at their expiry)."""
    lapsed = db.session.scalars(
        select(Appointment).where(
            Appointment.status == AppointmentStatus.HELD, Appointment.hold_expires_at <= now
        )
    ).all()
    for appointment in lapsed:
        appointment.status = AppointmentStatus.EXPIRED
    db.session.flush()
    return len(lapsed)


def by_code(code: str) -> Appointment:
    appointment = db.session.scalar(
        select(Appointment).where(Appointment.code == code.strip().upper())
    )
    if appointment is None:
        raise NotFound("no appointment with this code")
    return appointment


def _published(appointment: Appointment, kind: str, **extra) -> None:
    # in the unit of work: the outbox (the confirmation to the customer) is written with it
    in_transaction(f"appointment.{kind}", appointment=appointment, **extra)
    # after the commit: dashboards and anything else that only reads
    publish(
        db.session,
        f"appointment.{kind}",
        appointment_id=appointment.id,
        branch_id=appointment.branch_id,
    )
