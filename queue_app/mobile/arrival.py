"""Checking in a booked appointment on the phone, at the branch.

The entrance poster's second QR code (`/b/<code>/here?k=<arrival key>`, see
`tickets/remote.py` `arrival_key`) is what proves the phone is at the branch, as for the
virtual queue's "I'm here". Scanned with the phone that booked the appointment, or that opened
its manage link (the session remembers those appointments, `common.remember_appointment`),
the page offers to check it in; `check_in_here` does it with the kiosk's own rules
(`booking.checkin.check_in`: the same window, the same late rule, one ticket however often it
is tapped).

`held_appointments` says, for each appointment this phone holds at the branch, what the page
can offer: check in (`open`; `early`: the window opens later; `late`: after the window, the
branch queues it as a walk-in), nothing (`missed`: after the window, the branch refuses late
arrivals), follow the ticket (`checked_in`) or come back on its day (`later`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_date, format_time
from sqlalchemy import select

from ..booking import checkin
from ..booking.models import Appointment, AppointmentStatus
from ..branches.models import Branch, LateArrival
from ..core.errors import NotAllowed, NotFound
from ..extensions import db
from ..notify.content import local_when
from ..tickets import remote
from ..tickets.models import Ticket

OPEN = "open"
EARLY = "early"
LATE = "late"
MISSED = "missed"
CHECKED_IN = "checked_in"
LATER = "later"
CAN_CHECK_IN = {OPEN, EARLY, LATE}


def check_in_here(
    branch: Branch, appointment_id: int, *, key: str, now: datetime
) -> checkin.CheckIn:
    """Check in the appointment `appointment_id` at `branch`, scanned with the branch's arrival
    `key`: `wrong_arrival_key` (403) without it, `unknown_booking` (404) for an appointment of
    another branch, else what `booking.checkin.check_in` answers. Flushes, never commits."""
    if not remote.check_arrival_key(branch, key):
        raise NotAllowed("this is not the arrival code of your branch", "wrong_arrival_key")
    code = db.session.scalar(
        select(Appointment.code).where(
            Appointment.id == appointment_id, Appointment.branch_id == branch.id
        )
    )
    if code is None:
        raise NotFound("no booking with this code at this branch", "unknown_booking")
    return checkin.check_in(branch, code, now=now)


def _clock(moment: datetime, branch: Branch, lang: str) -> str:
    local = branch.local(moment)
    return format_time(local, "short", locale=lang).replace("\u202f", " ").replace("\xa0", " ")


def check_in_times(appointment: Appointment, lang: str) -> dict:
    """When the appointment can be checked in, as the customer reads it in the branch's zone:
    `opens` ("08.30"), `closes` with the zone ("09.15 WIB"), `opens_date` (the day)."""
    branch = appointment.branch
    opens, closes = checkin.window(appointment)
    return {
        "opens": _clock(opens, branch, lang),
        "closes": local_when(closes, branch.tz, lang)["time"],
        "opens_date": format_date(branch.local(opens).date(), "full", locale=lang),
    }


@dataclass(frozen=True)
class HeldAppointment:
    """An appointment of this phone at the branch, as the arrival page shows it."""

    id: int
    state: str  # see the module's docstring
    time: str  # its start, in the branch's time
    date: str  # its day
    service_name: str
    opens: str
    closes: str
    ticket: Ticket | None  # once checked in

    @property
    def can_check_in(self) -> bool:
        return self.state in CAN_CHECK_IN


def _state(appointment: Appointment, now: datetime) -> str | None:
    branch = appointment.branch
    today = branch.business_day(now)
    day = branch.business_day(appointment.start)
    status = appointment.status
    if status == AppointmentStatus.CHECKED_IN:
        if appointment.ticket is not None and (day == today or appointment.ticket.is_active):
            return CHECKED_IN
        return None
    if status == AppointmentStatus.BOOKED and day > today:
        return LATER
    if status not in (AppointmentStatus.BOOKED, AppointmentStatus.NO_SHOW) or day != today:
        return None  # cancelled, lapsed, or an earlier day's: nothing to do here
    opens, closes = checkin.window(appointment)
    if now < opens:
        return EARLY
    if now <= closes:
        return OPEN
    return LATE if branch.late_arrival == LateArrival.WALK_IN else MISSED


def held_appointments(
    branch: Branch, ids: list[int], *, now: datetime, lang: str
) -> list[HeldAppointment]:
    """The appointments among `ids` (this phone's) at `branch` that the arrival page has
    something to say about, soonest first."""
    if not ids:
        return []
    found = db.session.scalars(
        select(Appointment)
        .where(Appointment.id.in_(ids), Appointment.branch_id == branch.id)
        .order_by(Appointment.start, Appointment.id)
    ).all()
    rows = []
    for appointment in found:
        state = _state(appointment, now)
        if state is None:
            continue
        times = check_in_times(appointment, lang)
        rows.append(
            HeldAppointment(
                id=appointment.id,
                state=state,
                time=_clock(appointment.start, branch, lang),
                date=format_date(branch.local(appointment.start).date(), "full", locale=lang),
                service_name=appointment.service.display_name(lang),
                opens=times["opens"],
                closes=times["closes"],
                ticket=appointment.ticket if state == CHECKED_IN else None,
            )
        )
    return rows
