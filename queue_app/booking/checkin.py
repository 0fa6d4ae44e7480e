"""Checking in a booked appointment (kiosk, API), and the no-show rule. Every function takes `now`.

The check-in window of an appointment is `[start - branch.check_in_early_s,
start + branch.check_in_late_s]` (both ends included):

- before it: refused, `too_early` (the error carries `opens_at`, when the window opens);
- inside it: a ticket of the appointment's service with source `appointment` and
  `appointment_due_at = start` (routing calls it first around its time), for the appointment's
  customer; the appointment becomes `checked_in`;
- after it, on the appointment's own business day: the branch's `late_arrival` decides:
  `walk_in` gives a plain kiosk ticket (queued like any walk-in, no due time) and checks the
  appointment in as late; `refuse` refuses with `too_late`. The no-show job may already have
  marked the appointment `no_show` by then: the answer is the same (so it never depends on
  when the job last ran). On a later day the booking is over: `booking_not_active`.

Checking in twice answers the ticket of the first check-in: the appointment's row is locked
first (`FOR UPDATE`; SQLite serializes writers), so a double tap at the kiosk, or two devices at
once, never issue a second ticket.

`mark_no_shows` marks the booked appointments whose window has closed `no_show`, whatever the
branch's late rule: nobody claimed them in time. `expire_no_shows_job` is its scheduled job.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ..branches.models import Branch, LateArrival
from ..core.errors import Conflict, InvalidInput, NotFound
from ..extensions import db
from ..tickets import services as tickets
from ..tickets.models import Source, Ticket
from .models import Appointment, AppointmentStatus
from .services import _published

log = logging.getLogger(__name__)

# what is left of a typed or scanned code once spaces and dashes are gone (codes are 6
# characters today; a little room for longer ones)
CODE = re.compile(r"[A-Z0-9]{4,12}")
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")  # spaces, hyphens and dashes of any kind


@dataclass(frozen=True, slots=True)
class CheckIn:
    appointment: Appointment
    ticket: Ticket
    late: bool  # True: checked in after the window, queued as a walk-in
    repeated: bool = False  # True: it had been checked in before; this is that ticket


class TooEarly(InvalidInput):
    """Before the check-in window: `opens_at` (UTC) is when it opens."""

    def __init__(self, message: str, opens_at: datetime):
        super().__init__(message, "too_early")
        self.opens_at = opens_at


def normalize_code(text: str | None) -> str | None:
    """The booking code in what was typed or scanned (its QR code holds the bare code):
    surrounding and inner spaces and dashes dropped, upper case. None: cannot be a code."""
    code = _SEPARATORS.sub("", (text or "").strip()).upper()
    return code if CODE.fullmatch(code) else None


def _unknown() -> NotFound:
    return NotFound("no booking with this code at this branch", "unknown_booking")


def find(code: str | None, *, lock: bool = False) -> Appointment:
    """The appointment with this booking code (typed loosely); `unknown_booking` if none."""
    normalized = normalize_code(code)
    if normalized is None:
        raise _unknown()
    query = select(Appointment).where(Appointment.code == normalized)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    appointment = db.session.scalar(query)
    if appointment is None:
        raise _unknown()
    return appointment


def window(appointment: Appointment) -> tuple[datetime, datetime]:
    """The first and last moment (both included) the appointment can be checked in."""
    branch = appointment.branch
    return (
        appointment.start - timedelta(seconds=branch.check_in_early_s),
        appointment.start + timedelta(seconds=branch.check_in_late_s),
    )


def check_in(branch: Branch, code: str | None, *, now: datetime) -> CheckIn:
    """Check in the appointment with this booking code at `branch` (see the module's
    docstring for the rules). Flushes, never commits."""
    appointment = find(code, lock=True)
    if appointment.branch_id != branch.id:
        raise _unknown()  # another branch's booking: no hint that the code exists
    if appointment.status == AppointmentStatus.CHECKED_IN:
        if appointment.ticket is None:  # pragma: no cover - checked in always sets the ticket
            raise Conflict("this booking was checked in without a ticket", "booking_not_active")
        return CheckIn(
            appointment,
            appointment.ticket,
            late=appointment.ticket.source != Source.APPOINTMENT,
            repeated=True,
        )
    opens, closes = window(appointment)
    past = now > closes
    if appointment.status == AppointmentStatus.NO_SHOW and past:
        pass  # marked by the job after its window: answered as a late arrival below
    elif appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(
            f"this booking is {appointment.status.value}, not to be checked in",
            "booking_not_active",
        )
    if now < opens:
        raise TooEarly(
            f"too early to check in: check-in opens at {branch.local(opens).isoformat()}", opens
        )
    if not past:
        ticket = tickets.issue_ticket(
            branch,
            appointment.service,
            now=now,
            source=Source.APPOINTMENT,
            customer=appointment.customer,
            appointment_due_at=appointment.start,
        )
        return _checked_in(appointment, ticket, now=now, late=False)
    if branch.business_day(now) != branch.business_day(appointment.start):
        raise Conflict("this booking was for an earlier day", "booking_not_active")
    if branch.late_arrival == LateArrival.REFUSE:
        raise InvalidInput(
            f"too late to check in: check-in closed at {branch.local(closes).isoformat()}",
            "too_late",
        )
    # LateArrival.WALK_IN: a plain ticket, queued like anyone who walks in now
    ticket = tickets.issue_ticket(
        branch, appointment.service, now=now, source=Source.KIOSK, customer=appointment.customer
    )
    return _checked_in(appointment, ticket, now=now, late=True)


def _checked_in(appointment: Appointment, ticket: Ticket, *, now: datetime, late: bool) -> CheckIn:
    appointment.status = AppointmentStatus.CHECKED_IN
    appointment.checked_in_at = now
    appointment.ticket = ticket
    appointment.ticket_id = ticket.id
    db.session.flush()
    _published(appointment, "checked_in")
    return CheckIn(appointment, ticket, late=late)


def mark_no_shows(*, now: datetime) -> int:
    """Mark `no_show` the booked appointments whose check-in window has closed (`now` past
    `start + check_in_late_s` of their branch). Flushes, never commits."""
    # the window closes after the start: only appointments that have started can be due.
    # Locked, so that a check-in running at the same moment is either seen or waits.
    started = db.session.scalars(
        select(Appointment)
        .where(Appointment.status == AppointmentStatus.BOOKED, Appointment.start < now)
        .order_by(Appointment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    marked = 0
    for appointment in started:
        if now > window(appointment)[1]:
            appointment.status = AppointmentStatus.NO_SHOW
            _published(appointment, "no_show")
            marked += 1
    db.session.flush()
    return marked


def expire_no_shows_job(app, now: datetime) -> int:
    """The scheduled job (a function of `(app, now)`, like `jobs/tasks.py`): mark the
    appointments nobody checked in for `no_show`, in one unit of work."""
    with app.app_context():
        try:
            count = mark_no_shows(now=now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    if count:
        log.info("%d appointment(s) marked no-show", count)
    return count
