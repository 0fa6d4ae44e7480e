"""Reminders before an appointment, at the offsets of APPOINTMENT_REMINDERS ("24h,2h").

A booked appointment gets the reminder of an offset once its start is that close
(`start - offset <= now < start`), once: the offset's name goes into
`Appointment.reminders_sent` and the outbox key is per appointment and offset. When several
offsets are due at once (the job did not run for a while) only the closest one is sent, and a
booking made inside an offset's window gets no reminder for it: its confirmation just said it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..booking.models import Appointment, AppointmentStatus
from ..extensions import db
from . import content
from .receivers import REMINDER, write_appointment_messages

_OFFSET = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_offsets(spec: str) -> list[tuple[str, timedelta]]:
    """ "24h,2h" -> [("24h", 24 hours), ("2h", 2 hours)], the largest first."""
    offsets = []
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        match = _OFFSET.match(part)
        if match is None:
            raise ValueError(f"APPOINTMENT_REMINDERS: {part!r} is not like 24h, 2h, 30m or 1d")
        amount, unit = match.groups()
        offsets.append((f"{amount}{unit}", timedelta(**{_UNITS[unit]: int(amount)})))
    return sorted(offsets, key=lambda o: o[1], reverse=True)


def queue_reminders(*, now: datetime) -> int:
    """Write the reminders due at `now` to the outbox (flushes); returns how many messages."""
    offsets = parse_offsets(current_app.config.get("APPOINTMENT_REMINDERS", "24h,2h"))
    if not offsets:
        return 0
    horizon = now + offsets[0][1]
    appointments = db.session.scalars(
        select(Appointment)
        .where(
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.start > now,
            Appointment.start <= horizon,
        )
        .order_by(Appointment.start, Appointment.id)
    ).all()
    written = 0
    for appointment in appointments:
        done = set(appointment.reminders_sent or ())
        due = [(n, o) for n, o in offsets if n not in done and appointment.start - o <= now]
        if not due:
            continue
        name, offset = due[-1]  # the closest to the start
        appointment.reminders_sent = [*(appointment.reminders_sent or ()), *(n for n, _ in due)]
        booked_at = appointment.booked_at or appointment.created_at
        if booked_at is not None and booked_at > appointment.start - offset:
            continue  # booked inside this window: the confirmation is the reminder
        written += write_appointment_messages(
            appointment,
            content.reminder(appointment),
            kind=REMINDER,
            key=f"appointment:{appointment.code}:reminder:{name}",
            now=now,
        )
    db.session.flush()
    return written
