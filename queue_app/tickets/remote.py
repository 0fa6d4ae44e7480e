"""The virtual mobile queue: joining a branch's queue from a phone, and arriving.

A customer chooses a service, gives a phone number or e-mail address, receives a one-time
code there (`request_code`, written to the outbox in the same transaction), and joins with it
(`join`): a ticket with source `mobile` that is NOT confirmed on arrival. `call_next` never
calls such a ticket (`tickets/services.py`, `_not_arrived`): when its turn comes it goes back
`Branch.remote_move_back_places` places, at most `Branch.remote_move_back_limit` times, then
it expires (cancelled, reason `not_arrived`). At the branch the customer scans the entrance
poster, whose QR carries the branch's signed `arrival_key`, and `confirm_arrival` makes the
ticket callable. `leave` takes a waiting ticket out of the queue.

Remote intake (`intake`) is open while the branch takes remote tickets (`remote_intake`), is
open now (opening hours, no holiday or closure) and still has capacity before the current
opening span ends: the counters serving the service x the seconds left / the service's
expected duration, minus the tickets already waiting for it. The counters are the open ones;
when none is open yet (the first minutes of the day), the counters that serve the service.

Limits: per contact here (codes per window: `customers/verification.py`; one active remote
ticket per contact and branch); per network address in the API (Flask-Limiter).

Like every service: plain arguments, an explicit `now`, flush and never commit. One
exception to "a failure leaves nothing written": a wrong code (`verification.CodeRejected`)
is counted, and the caller commits before answering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from ..booking.services import closed_reason
from ..branches.models import Branch, Counter, CounterService, CounterStatus, Service
from ..core.errors import Conflict, NotAllowed, NotFound
from ..customers import verification
from ..customers.models import Customer
from ..customers.services import identify_customer
from ..extensions import db
from ..notify.models import Channel
from ..notify.services import enqueue
from . import services
from .models import ACTIVE_STATUSES, Source, Ticket, TicketStatus, Visit

ARRIVAL_SALT = "queue_app.remote.arrival"
CODE_MESSAGE_KIND = "remote_code"
MAX_KEY_LENGTH = 200

# why remote intake is closed (`Intake.reason`)
UNAVAILABLE = "unavailable"  # the branch or the service is not active
REMOTE_OFF = "remote_off"  # the branch turned remote intake off
CLOSED_DAY = "closed_day"  # a public holiday or a closure of the branch
CLOSED_HOURS = "closed_hours"  # outside the opening hours
CAPACITY_USED = "capacity_used"  # the waiting tickets fill the time left before closing
NO_COUNTER = "no_counter"  # no counter of the branch serves the service


@dataclass(frozen=True)
class Intake:
    open: bool
    reason: str | None
    estimated_wait_s: int | None  # for a ticket taken now; None when no counter is open
    capacity_left: int | None = None  # remote tickets that still fit before closing


@dataclass(frozen=True)
class Verification:
    """A code was sent: where to (`masked` for the page) and until when it is valid."""

    contact: str  # normalised: E.164 or lower-case e-mail address
    channel: str  # "sms" or "email"
    masked: str
    expires_at: datetime


# --- the entrance poster ---------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=ARRIVAL_SALT)


def arrival_key(branch: Branch) -> str:
    """The key printed (in a QR code) on the branch's entrance poster."""
    return _serializer().dumps(branch.id)


def check_arrival_key(branch: Branch, key: str) -> bool:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return False
    try:
        return _serializer().loads(key) == branch.id
    except BadSignature:
        return False


# --- intake ----------------------------------------------------------------------------------


def _span_end(branch: Branch, now: datetime) -> datetime | None:
    """The end of the opening span `now` is in (aware, the branch's zone), or None."""
    local = branch.local(now)
    for start, end in branch.hours_on(local.date()):
        if start <= local.time() < end:
            return datetime.combine(local.date(), end, tzinfo=branch.tz)
    return None


def _counters_for(service: Service) -> tuple[int, int]:
    """(open counters serving the service, all counters serving it)."""
    row = db.session.execute(
        select(
            func.count(),
            func.count().filter(Counter.status == CounterStatus.OPEN),
        )
        .select_from(CounterService)
        .join(Counter, Counter.id == CounterService.counter_id)
        .where(CounterService.service_id == service.id)
    ).one()
    return row[1], row[0]


def _waiting(branch: Branch, service: Service, now: datetime) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.branch_id == branch.id,
            Ticket.status == TicketStatus.WAITING,
            Ticket.service_id == service.id,
            Ticket.target_counter_id.is_(None),
            Ticket.business_day == branch.business_day(now),
        )
    )


def intake(branch: Branch, service: Service, *, now: datetime) -> Intake:
    """Whether the service's queue takes remote tickets now, and why not."""
    if service.branch_id != branch.id:
        raise NotFound(f"service {service.code!r} is not offered at branch {branch.code}")
    open_counters, all_counters = _counters_for(service)
    waiting = _waiting(branch, service, now)
    duration = service.expected_duration_s
    estimate = None
    if open_counters:  # what a ticket issued now is quoted (`waits.live.quote`)
        from ..waits import live

        estimate = live.wire(live.quote(branch, service.id))["estimated_wait_s"]

    def closed(reason: str, capacity: int | None = None) -> Intake:
        return Intake(False, reason, estimate, capacity)

    if not (branch.active and service.active):
        return closed(UNAVAILABLE)
    if not branch.remote_intake:
        return closed(REMOTE_OFF)
    if closed_reason(branch, branch.business_day(now)) is not None:
        return closed(CLOSED_DAY)
    end = _span_end(branch, now)
    if end is None:
        return closed(CLOSED_HOURS)
    seconds_left = (end - now).total_seconds()
    serving = open_counters or all_counters
    if not serving:
        return closed(NO_COUNTER)
    capacity = math.floor(serving * seconds_left / duration) - waiting
    if capacity <= 0:
        return closed(CAPACITY_USED, 0)
    return Intake(True, None, estimate, capacity)


def _require_open(branch: Branch, service: Service, now: datetime) -> Intake:
    state = intake(branch, service, now=now)
    if not state.open:
        messages = {
            UNAVAILABLE: f"service {service.code!r} is not available now",
            REMOTE_OFF: f"branch {branch.code} does not take remote tickets",
            CLOSED_DAY: f"branch {branch.code} is closed today",
            CLOSED_HOURS: f"branch {branch.code} is closed now",
            CAPACITY_USED: f"the {service.code} queue is full until closing time",
            NO_COUNTER: f"no counter of branch {branch.code} serves {service.code}",
        }
        raise Conflict(messages[state.reason], f"intake_{state.reason}")
    return state


# --- codes and joining -----------------------------------------------------------------------


def _existing_customer(contact: verification.Contact) -> Customer | None:
    column = Customer.phone if contact.is_phone else Customer.email
    return db.session.scalar(select(Customer).where(column == contact.value))


def active_remote_ticket(branch: Branch, customer: Customer | None) -> Ticket | None:
    """The customer's remote ticket still active in this branch, if any."""
    if customer is None or customer.id is None:
        return None
    return db.session.scalar(
        select(Ticket)
        .join(Visit, Visit.id == Ticket.visit_id)
        .where(
            Visit.customer_id == customer.id,
            Ticket.branch_id == branch.id,
            Ticket.source == Source.MOBILE,
            Ticket.status.in_(ACTIVE_STATUSES),
        )
        .limit(1)
    )


def _refuse_second_ticket(branch: Branch, customer: Customer | None) -> None:
    held = active_remote_ticket(branch, customer)
    if held is not None:
        raise Conflict(
            f"this contact already holds ticket {held.number} at {branch.code}",
            "already_in_queue",
        )


def code_message(code: str, *, locale: str, branch: Branch, minutes: int) -> tuple[str, str]:
    """(subject, text) of the code message, in `locale`."""
    with force_locale(locale):
        subject = _("Your queue code for %(branch)s", branch=branch.name)
        text = _(
            "%(code)s is your code to join the queue at %(branch)s. "
            "It is valid for %(minutes)s minutes. Do not share it.",
            code=code,
            branch=branch.name,
            minutes=minutes,
        )
    return subject, text


def _locale(locale: str | None, branch: Branch) -> str:
    languages = current_app.config.get("LANGUAGES", ("id", "en"))
    return locale if locale in languages else branch.locale or languages[0]


def _enqueue_code(contact, code, *, locale, branch, expires_at, now) -> None:
    minutes = max(1, round((expires_at - now).total_seconds() / 60))
    subject, text = code_message(code, locale=locale, branch=branch, minutes=minutes)
    channel = Channel.SMS if contact.is_phone else Channel.EMAIL
    fallbacks = (
        [{"channel": Channel.WHATSAPP, "recipient": contact.value}] if contact.is_phone else ()
    )
    enqueue(
        CODE_MESSAGE_KIND,
        channel=channel,
        recipient=contact.value,
        subject=subject,
        body=text,
        fallbacks=fallbacks,
        locale=locale,
        now=now,
        urgent=True,  # sent right after the commit, not at the next outbox run
    )


def request_code(
    branch: Branch,
    service: Service,
    *,
    contact: str,
    locale: str | None,
    ip: str | None,
    now: datetime,
) -> Verification:
    """Send a one-time code to `contact` for joining this service's queue remotely.

    InvalidInput for a contact that is neither a phone number nor an e-mail address; Conflict
    `intake_<reason>` when remote intake is closed, `already_in_queue` when the contact holds
    an active remote ticket in this branch; TooManyRequests (429) past the per-contact limit.
    `ip` is the requester's address (the per-address limit is the delivery layer's).
    """
    person = verification.parse_contact(contact, region=branch.country)
    _require_open(branch, service, now)
    _refuse_second_ticket(branch, _existing_customer(person))
    row, code = verification.issue_code(person, branch_id=branch.id, service_id=service.id, now=now)
    _enqueue_code(
        person,
        code,
        locale=_locale(locale, branch),
        branch=branch,
        expires_at=row.expires_at,
        now=now,
    )
    return Verification(person.value, person.channel, person.masked, row.expires_at)


def join(
    branch: Branch,
    service: Service,
    *,
    contact: str,
    code: str,
    locale: str | None,
    ip: str | None,
    now: datetime,
) -> Ticket:
    """Join the queue with the code sent to `contact`: a remote ticket awaiting arrival.

    The contact's verification row is locked first, so two joins with the same contact are
    one after the other: the second finds the code used (422 `no_code`) or the first one's
    ticket (409 `already_in_queue`). A wrong code raises `verification.CodeRejected` with the
    try counted: commit, then answer.
    """
    person = verification.parse_contact(contact, region=branch.country)
    row = verification.check_code(person, code, branch_id=branch.id, service_id=service.id, now=now)
    _require_open(branch, service, now)
    _refuse_second_ticket(branch, _existing_customer(person))
    customer = identify_customer(
        phone=person.value if person.is_phone else None,
        email=None if person.is_phone else person.value,
        region=branch.country,
    )
    if customer.locale is None and locale:
        customer.locale = _locale(locale, branch)
    ticket = services.issue_ticket(
        branch,
        service,
        now=now,
        source=Source.MOBILE,
        customer=customer,
        awaiting_arrival=True,
    )
    verification.consume(row, now=now)
    return ticket


# --- at the branch, and leaving --------------------------------------------------------------


def confirm_arrival(ticket: Ticket, *, key: str, now: datetime) -> Ticket:
    """ "I'm here": the scanned poster key must be the ticket's branch's (403 otherwise)."""
    if not check_arrival_key(ticket.branch, key):
        raise NotAllowed("this is not the arrival code of your branch", "wrong_arrival_key")
    return services.confirm_arrival(ticket, now=now)


def leave(ticket: Ticket, *, now: datetime) -> Ticket:
    """The customer leaves the queue from the phone (only a waiting ticket)."""
    return services.leave_queue(ticket, now=now, reason="left_by_customer")
