"""What a kiosk does to the queue: issue one ticket per form, and the booking check-in hook.

Every change goes through `tickets.services`; this module adds what is particular to a kiosk:

- **One ticket per form.** Each rendered form carries a random key. The kiosk's device row is
  locked while a ticket is issued and remembers the last keys it issued for (in its
  `settings`), so a double tap, a resubmitted form or the browser's back-and-resend returns the
  first ticket instead of a second one, also when both requests arrive at the same time (the
  session cookie could not do that: both requests carry the same cookie).
- **Open hours.** A kiosk issues only while its branch is open.
- **Booking check-in** (`check_in_booking`): a booking code typed or scanned (also a link that
  carries it) checked in through `booking.checkin`, which answers a second check-in with the
  first ticket.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..booking import checkin
from ..booking.models import Appointment
from ..branches.models import Branch, Service
from ..core.errors import Conflict, InvalidInput, NotFound
from ..customers.services import identify_customer
from ..devices.models import Device
from ..extensions import db
from ..tickets import services as tickets
from ..tickets.models import Source, Ticket, TicketStatus

FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
RECENT_SETTING = "kiosk_recent_tickets"  # [[form key, ticket id, issued at ISO], ...] newest first
RECENT_LIMIT = 20
CUSTOMER_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,31}")
PHONE_MAX = 32
BOOKING_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{3,31}")


def new_form_key() -> str:
    """A fresh key for one rendered form (hidden field)."""
    return secrets.token_urlsafe(18)


def offered_services(branch: Branch) -> list[Service]:
    """The services a customer can take a ticket for, in the branch's order."""
    return list(
        db.session.scalars(
            select(Service)
            .where(Service.branch_id == branch.id, Service.active.is_(True))
            .order_by(Service.position, Service.id)
        )
    )


def waiting_counts(branch: Branch) -> dict[int, int]:
    """How many tickets wait for each service of the branch (service id -> count)."""
    return dict(
        db.session.execute(
            select(Ticket.service_id, func.count())
            .where(Ticket.branch_id == branch.id, Ticket.status == TicketStatus.WAITING)
            .group_by(Ticket.service_id)
        ).all()
    )


def is_open(branch: Branch, now: datetime) -> bool:
    return branch.active and branch.is_open_at(now)


def kiosk_service(branch: Branch, code: str | None) -> Service:
    """The branch's service with this code, if a customer may queue for it now."""
    service = None
    if code and len(code) <= 32:
        service = db.session.scalar(
            select(Service).where(Service.branch_id == branch.id, Service.code == code)
        )
    if service is None:
        raise NotFound(f"no service {code!r} at branch {branch.code}", "unknown_service")
    if not service.active:
        raise Conflict(f"service {code!r} is not available now", "service_unavailable")
    return service


@dataclass
class Issued:
    ticket: Ticket
    repeated: bool  # True: the form had been sent before, this is its first ticket


def _lock_device(device_id: int) -> Device:
    """The device row locked and read afresh (its recent form keys), with its branch in the
    same statement (read afresh, an object's relationships are too; the branch row itself is
    not locked)."""
    return db.session.scalar(
        select(Device)
        .options(joinedload(Device.branch))
        .where(Device.id == device_id)
        .with_for_update(of=Device)
        .execution_options(populate_existing=True)
    )


def _recent(device: Device) -> list[list]:
    entries = (device.settings or {}).get(RECENT_SETTING) or []
    return [e for e in entries if isinstance(e, list) and len(e) == 3]


def issue_once(
    device: Device,
    *,
    service_code: str | None,
    form_key: str | None,
    now: datetime,
    phone: str | None = None,
    customer_number: str | None = None,
) -> Issued:
    """Issue a kiosk ticket for a form, or return the ticket this form was given before."""
    if not form_key or not FORM_KEY.fullmatch(form_key):
        raise InvalidInput("the form carries no valid key", "form_expired")
    device = _lock_device(device.id)  # serializes this kiosk's issuing until the commit
    for key, ticket_id, _at in _recent(device):
        if key == form_key:
            earlier = db.session.get(Ticket, ticket_id)
            if earlier is not None:
                return Issued(earlier, repeated=True)
    branch = device.branch
    if not is_open(branch, now):
        raise Conflict(f"branch {branch.code} is closed now", "branch_closed")
    service = kiosk_service(branch, service_code)
    phone = (phone or "").strip()
    customer_number = (customer_number or "").strip().upper()
    customer = None
    if phone:
        if len(phone) > PHONE_MAX:
            raise InvalidInput("the phone number is too long", "invalid_phone")
        customer = identify_customer(phone=phone, region=branch.country)
    elif customer_number:
        if not CUSTOMER_NUMBER.fullmatch(customer_number):
            raise InvalidInput("not a customer number", "invalid_customer_number")
        customer = identify_customer(external_id=customer_number, region=branch.country)
    ticket = tickets.issue_ticket(branch, service, now=now, source=Source.KIOSK, customer=customer)
    entries = [[form_key, ticket.id, now.isoformat()], *_recent(device)[: RECENT_LIMIT - 1]]
    device.settings = {**(device.settings or {}), RECENT_SETTING: entries}
    return Issued(ticket, repeated=False)


def recent_ticket(device: Device, ticket_id: int, *, now: datetime, ttl: timedelta):
    """A ticket this kiosk issued less than `ttl` ago (the ticket screen shows nothing else:
    its QR code is the customer's key to the visit)."""
    for _key, known_id, at in _recent(device):
        if known_id != ticket_id:
            continue
        try:
            issued = datetime.fromisoformat(at)
        except (TypeError, ValueError):
            return None
        if now - issued > ttl:
            return None
        ticket = db.session.get(Ticket, ticket_id)
        if ticket is None or ticket.branch_id != device.branch_id:
            return None
        return ticket
    return None


# --- booking check-in ------------------------------------------------------------------


class BookingStatus(enum.StrEnum):
    CHECKED_IN = "checked_in"  # within its window: an appointment ticket, called around its time
    LATE = "late"  # after its window at a walk-in branch: a plain ticket, queued as a walk-in


@dataclass
class BookingCheckIn:
    status: BookingStatus
    code: str
    ticket: Ticket
    appointment: Appointment
    repeated: bool = False  # checked in before (a double tap): the first ticket again

    @property
    def late(self) -> bool:
        return self.status == BookingStatus.LATE


def booking_code_from_scan(text: str | None) -> str:
    """The booking code in what was typed or scanned: the code itself, or a link carrying it
    (`.../b/<code>` or `...?code=<code>`)."""
    raw = (text or "").strip()
    if "://" in raw:
        parts = urlsplit(raw)
        from_query = parse_qs(parts.query).get("code")
        raw = from_query[0] if from_query else parts.path.rstrip("/").rsplit("/", 1)[-1]
    code = raw.replace(" ", "").upper()
    if not BOOKING_CODE.fullmatch(code):
        raise InvalidInput("not a booking code", "invalid_booking_code")
    return code


def check_in_booking(branch: Branch, text: str | None, *, now: datetime) -> BookingCheckIn:
    """Check in the appointment behind a booking code or its QR code (`booking.checkin`):
    its ticket, or the domain error that says why not (`unknown_booking`, `too_early`,
    `too_late`, `booking_not_active`)."""
    code = booking_code_from_scan(text)
    done = checkin.check_in(branch, code, now=now)
    return BookingCheckIn(
        status=BookingStatus.LATE if done.late else BookingStatus.CHECKED_IN,
        code=done.appointment.code,
        ticket=done.ticket,
        appointment=done.appointment,
        repeated=done.repeated,
    )
