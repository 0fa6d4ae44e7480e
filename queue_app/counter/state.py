"""The counter screen's state as plain JSON-ready data, read in a fixed number of queries.

The page renders from this (embedded in the first response, then `GET .../state`); realtime
change events only tell the page that it is time to read it again.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..accounts.models import Role, User
from ..branches.models import Branch, Counter, CounterStatus, Service
from ..customers import privacy
from ..customers import queries as customer_queries
from ..customers.models import Customer
from ..customers.privacy import mask_phone  # noqa: F401 (the counter's mask, kept importable)
from ..extensions import db
from ..tickets import queries as ticket_queries
from ..tickets.models import Ticket, TicketStatus
from .choices import OUTCOMES, PAUSE_REASONS

HISTORY_LIMIT = 10


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _lang() -> str:
    locale = get_locale()
    return locale.language if locale else "id"


def is_supervisor(user: User, branch: Branch) -> bool:
    return user.role in {Role.BRANCH_MANAGER, Role.ADMIN} and user.can_work_floor(branch)


def can_operate(counter: Counter, user: User) -> bool:
    """Whether the screen offers the counter's actions to `user` (the engine decides anyway)."""
    if counter.status == CounterStatus.CLOSED or counter.staff_id in (None, user.id):
        return True
    return is_supervisor(user, counter.branch)


def pause_label(reason: str | None) -> str | None:
    """'prayer: Jumat' -> 'Prayer (Jumat)' in the page's language."""
    if not reason:
        return None
    code, _, text = reason.partition(":")
    labels = {c: str(label) for c, label in PAUSE_REASONS}
    if code in labels:
        return labels[code] + (f" ({text.strip()})" if text.strip() else "")
    return reason


def outcome_label(code: str | None) -> str | None:
    if not code:
        return None
    return next((str(label) for c, label in OUTCOMES if c == code), code)


def _ticket(t: Ticket, lang: str, counter: Counter) -> dict:
    return {
        "id": t.id,
        "number": t.number,
        "status": t.status.value,
        "service_id": t.service_id,
        "service": t.service.display_name(lang),
        "priority": t.priority.value,
        "targeted": t.target_counter_id == counter.id,
        "transferred": t.previous_id is not None,
        "handover_note": t.handover_note,
        "notes": t.notes,
        "issued_at": _iso(t.issued_at),
        "queue_since": _iso(t.queue_since),
        "called_at": _iso(t.called_at),
        "last_called_at": _iso(t.last_called_at),
        "started_at": _iso(t.started_at),
        "recall_count": t.recall_count,
        "appointment_due_at": _iso(t.appointment_due_at),
    }


def _local(moment: datetime | None, tz: str, locale) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(tz))
    day = format_date(local, "medium", locale=locale)
    return f"{day} {format_time(local, 'short', locale=locale)}"


def customer_panel(customer: Customer, current_visit_id: int | None, viewer=None) -> dict:
    """Who the called customer is and what happened on their earlier visits: the name and the
    phone number as `viewer` may see them at a counter (`customers/privacy.py`)."""
    lang = _lang()
    locale = get_locale()
    history = customer_queries.customer_history(
        customer.id, limit=HISTORY_LIMIT, exclude_visit_id=current_visit_id
    )
    return {
        "id": customer.id,
        "name": privacy.shown(viewer, privacy.COUNTER, "name", customer.name),
        "phone": privacy.shown(viewer, privacy.COUNTER, "phone", customer.phone),
        "number": customer.external_id or f"#{customer.id}",
        "visits": [
            {
                "date": _local(v.arrived_at, v.branch_timezone, locale),
                "branch": v.branch_code,
                "branch_name": v.branch_name,
                "steps": [
                    {
                        "number": s.number,
                        "service": s.service_label(lang),
                        "status": s.status.value,
                        "staff": s.staff_name,
                        "counter": s.counter_name,
                        "outcome": outcome_label(s.outcome_code),
                        "notes": s.notes,
                        "handover_note": s.handover_note,
                    }
                    for s in v.steps
                ],
            }
            for v in history
        ],
        "ratings": customer_queries.customer_ratings(customer.id),
        "cases": customer_queries.customer_open_cases(customer.id),
    }


def counter_state(counter: Counter, user: User, now: datetime) -> dict:
    branch = counter.branch
    lang = _lang()
    served = [s for s in counter.services if s.active]
    served_ids = [s.id for s in served]
    today = branch.business_day(now)
    waiting = [
        t
        for t in ticket_queries.waiting_tickets(branch.id, served_ids, counter.id)
        if t.business_day == today
    ]
    here = db.session.scalars(
        select(Ticket)
        .options(joinedload(Ticket.visit))  # the customer panel asks for the active one's
        .where(
            Ticket.counter_id == counter.id,
            Ticket.status.in_((TicketStatus.CALLED, TicketStatus.SERVING, TicketStatus.HELD)),
        )
        .order_by(Ticket.last_called_at, Ticket.id)
    ).all()
    active = next((t for t in here if t.status != TicketStatus.HELD), None)
    held = [t for t in here if t.status == TicketStatus.HELD]
    services = db.session.scalars(
        select(Service)
        .where(Service.branch_id == branch.id, Service.active.is_(True))
        .order_by(Service.position, Service.id)
    ).all()
    counters = db.session.scalars(
        select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.position, Counter.id)
    ).all()
    staff = db.session.get(User, counter.staff_id) if counter.staff_id else None

    groups = [
        {
            "key": "targeted",
            "code": None,
            "service_id": None,
            "service": None,
            "tickets": [_ticket(t, lang, counter) for t in waiting if t.target_counter_id],
        }
    ]
    for s in served:
        groups.append(
            {
                "key": f"service-{s.id}",
                "code": s.code,
                "service_id": s.id,
                "service": s.display_name(lang),
                "tickets": [
                    _ticket(t, lang, counter)
                    for t in waiting
                    if t.target_counter_id is None and t.service_id == s.id
                ],
            }
        )

    customer = None
    active_data = None
    if active is not None:
        active_data = _ticket(active, lang, counter)
        visit = active.visit
        if visit.customer_id is not None:
            customer = customer_panel(
                db.session.get(Customer, visit.customer_id), visit.id, viewer=user
            )

    return {
        "now": _iso(now),
        "seq": branch.event_seq,
        "branch": {
            "code": branch.code,
            "name": branch.name,
            "timezone": branch.timezone,
            "recall_limit": branch.recall_limit,
            "transfer_keeps_place": branch.transfer_keeps_place,
        },
        "counter": {
            "id": counter.id,
            "name": counter.name,
            "status": counter.status.value,
            "pause_reason": pause_label(counter.pause_reason),
            "status_since": _iso(counter.status_since),
            "staff": staff.display_name if staff else None,
            "mine": counter.staff_id == user.id,
            "can_operate": can_operate(counter, user),
            "services": [s.display_name(lang) for s in served],
            "service_codes": [s.code for s in served],
        },
        "user": {"id": user.id, "name": user.display_name},
        "active": active_data,
        "held": [_ticket(t, lang, counter) for t in held],
        "waiting": groups,
        "waiting_count": len(waiting),
        "customer": customer,
        "transfer": {
            "services": [{"code": s.code, "name": s.display_name(lang)} for s in services],
            "counters": [
                {"id": c.id, "name": c.name, "status": c.status.value}
                for c in counters
                if c.id != counter.id and c.status != CounterStatus.CLOSED
            ],
        },
    }
