"""The queue's own messages: "you are next in N" and "it is your turn".

Every change of a ticket is recorded in the journey journal (`tickets/journal.py`), which sends
`journal.recorded` inside the unit of work just before it numbers the entries. From those
entries this module works out, in the same transaction:

- **it is your turn**: a ticket was called (`called`) or called again (`recall`): one urgent
  message "go to <counter>", once per ticket and call (dedupe key `queue:turn:<id>:<recalls>`),
  delivered right after the commit (`enqueue(urgent=True)`).
- **you are next in N**: the queues the changed tickets were in moved (a ticket left the waiting
  list: called, cancelled, left, no-show, transferred; or was moved back); every waiting ticket
  of those queues now at place <= `QUEUE_NEXT_IN_N` gets one message, once per ticket (dedupe
  key `queue:next:<id>`), delivered by the outbox job. Issuing a ticket never moves anyone
  forward (and the fast path, `tickets/fastpath.py`, records no ORM entries): no alert.

Only tickets with a contact are told: the visit's customer has a phone number and/or an e-mail
address, and either agreed to be contacted or joined remotely (source `mobile`: the contact was
verified with a one-time code for exactly this). Channels: `services.channel_chain`.

Cost, on every call of a busy branch: one cheap `EXISTS` query decides whether anyone in the
affected queues (or the called ticket) can be told at all; only then one query computes the
places of the affected queues (a window function: the same order and queues as
`tickets.queries.standing`, for every queue at once, filtered to places <= N, with the
contact, the service and whether the message was already written), and one insert per new
message. Nothing is queried per waiting ticket.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import String, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from ..branches.models import Branch, Counter, Service
from ..core.events import in_transaction_signal
from ..customers.models import Customer
from ..kiosk.links import ticket_tracking_url
from ..tickets.models import Source, Ticket, TicketStatus, Visit
from . import queue_content
from .models import OutboxMessage
from .services import channel_chain, enqueue, init_urgent_delivery

NEXT_IN_LINE = "queue_next"
YOUR_TURN = "queue_turn"
CALLS = ("called", "recall")
# entries that put a ticket in a queue without taking anyone out of one (its own place may be
# <= N: a transfer that keeps the customer's place)
JOINS = ("transferred_in",)
WAITING = TicketStatus.WAITING.value


def init_queue_alerts(app) -> None:
    """Connect the receivers (with the urgent sender they rely on)."""
    init_urgent_delivery(app)
    in_transaction_signal("journal.recorded").connect(on_journal_recorded)


@dataclass
class _Queues:
    """The queues of one branch whose order changed: service queues and counter queues."""

    services: set[int] = field(default_factory=set)
    counters: set[int] = field(default_factory=set)


def on_journal_recorded(_sender, *, session: Session, entries, **_payload) -> None:
    limit = int(current_app.config.get("QUEUE_NEXT_IN_N", 3) or 0)
    moved: dict[int, _Queues] = defaultdict(_Queues)
    calls = []  # (ticket, counter id)
    for entry in entries:
        if entry.ticket_id is None:
            continue
        is_call = entry.kind in CALLS
        if not (is_call or entry.from_status == WAITING or entry.kind in JOINS):
            continue
        ticket = session.get(Ticket, entry.ticket_id)  # in the session: it was just changed
        if ticket is None:
            continue
        if is_call and ticket.status == TicketStatus.CALLED:
            calls.append((ticket, entry.counter_id or ticket.counter_id))
        if entry.from_status == WAITING or entry.kind in JOINS:
            queues = moved[entry.branch_id]
            queues.services.add(ticket.service_id)
            for counter_id in (ticket.target_counter_id, entry.counter_id):
                if counter_id is not None:
                    queues.counters.add(counter_id)
    if limit <= 0:
        moved.clear()
    if not calls and not moved:
        return
    # the gate: one cheap query says whether anyone concerned can be told at all
    gates = [
        _with_contact(select(Ticket.id))
        .where(_in_queues(branch_id, queues), _contactable())
        .exists()
        for branch_id, queues in moved.items()
    ]
    if calls:
        gates.append(
            _with_contact(select(Ticket.id))
            .where(Ticket.id.in_([t.id for t, _c in calls]), _contactable())
            .exists()
        )
    answers = session.execute(select(*(gate.label(f"g{n}") for n, gate in enumerate(gates)))).one()
    now = max(entry.at for entry in entries)
    for (branch_id, queues), anyone in zip(moved.items(), answers, strict=False):
        if anyone:
            _next_in_line(session, branch_id, queues, limit=limit, now=now)
    if calls and answers[-1]:
        _your_turn(session, calls, now=now)


# --- who can be told -------------------------------------------------------------------------


def _contactable():
    """The condition on (Ticket, Customer) of a ticket whose customer may be told."""
    return and_(
        or_(Customer.phone.is_not(None), Customer.email.is_not(None)),
        or_(Customer.consent_contact.is_(True), Ticket.source == Source.MOBILE),
    )


def _in_queues(branch_id: int, queues: _Queues):
    return and_(
        Ticket.branch_id == branch_id,
        Ticket.status == TicketStatus.WAITING,
        or_(
            and_(Ticket.target_counter_id.is_(None), Ticket.service_id.in_(queues.services)),
            Ticket.target_counter_id.in_(queues.counters or [-1]),
        ),
    )


def _with_contact(query):
    return query.join(Visit, Visit.id == Ticket.visit_id).join(
        Customer, Customer.id == Visit.customer_id
    )


def _already_written(key_prefix: str):
    return exists().where(OutboxMessage.dedupe_key == literal(key_prefix) + cast(Ticket.id, String))


# --- you are next in N -----------------------------------------------------------------------


def _next_in_line(session, branch_id: int, queues: _Queues, *, limit: int, now) -> int:
    # places as `tickets.queries.standing` counts them: a ticket sent to a counter queues among
    # the tickets sent to that counter, any other among the service's; oldest `queue_since`
    # (then lowest id) first
    place = func.row_number().over(
        partition_by=(
            Ticket.target_counter_id,
            case((Ticket.target_counter_id.is_(None), Ticket.service_id)),
        ),
        order_by=(Ticket.queue_since, Ticket.id),
    )
    places = (
        select(Ticket.id.label("ticket_id"), place.label("place"))
        .where(_in_queues(branch_id, queues))
        .subquery()
    )
    rows = session.execute(
        _with_contact(
            select(Ticket, Customer, Service, Visit.token, places.c.place).join(
                places, places.c.ticket_id == Ticket.id
            )
        )
        .join(Service, Service.id == Ticket.service_id)
        .where(
            places.c.place <= limit,
            _contactable(),
            ~_already_written("queue:next:"),
        )
        .order_by(places.c.place, Ticket.id)
    ).all()
    if not rows:
        return 0
    branch = session.get(Branch, branch_id)
    written = 0
    for ticket, customer, service, token, position in rows:
        locale = queue_content.pick_locale(customer.locale, branch.locale)
        message = queue_content.next_in_line(
            locale=locale,
            number=ticket.number,
            place=position,
            branch=branch.name,
            service=service.display_name(locale),
            url=ticket_tracking_url(token),
            confirm_arrival=not ticket.arrival_confirmed,
        )
        written += _write(
            NEXT_IN_LINE, customer, message, key=f"queue:next:{ticket.id}", now=now, urgent=False
        )
    return written


# --- it is your turn -------------------------------------------------------------------------


def _your_turn(session, calls, *, now) -> int:
    ids = [ticket.id for ticket, _counter in calls]
    rows = session.execute(
        _with_contact(select(Ticket.id, Customer, Visit.token)).where(
            Ticket.id.in_(ids), _contactable()
        )
    ).all()
    found = {ticket_id: (customer, token) for ticket_id, customer, token in rows}
    written = 0
    for ticket, counter_id in calls:
        if ticket.id not in found:
            continue
        customer, token = found[ticket.id]
        branch = session.get(Branch, ticket.branch_id)
        counter = session.get(Counter, counter_id) if counter_id is not None else None
        locale = queue_content.pick_locale(customer.locale, branch.locale)
        message = queue_content.your_turn(
            locale=locale,
            number=ticket.number,
            counter=counter.name if counter is not None else "",
            branch=branch.name,
            url=ticket_tracking_url(token),
        )
        written += _write(
            YOUR_TURN,
            customer,
            message,
            key=f"queue:turn:{ticket.id}:{ticket.recall_count}",
            now=now,
            urgent=True,
        )
    return written


def _write(kind, customer, message, *, key: str, now, urgent: bool) -> int:
    chain = channel_chain(phone=customer.phone, email=customer.email)
    if not chain:
        return 0
    (channel, recipient), *fallbacks = chain
    written = enqueue(
        kind,
        channel=channel,
        recipient=recipient,
        subject=message.subject,
        body=message.text if channel == "email" else message.short,
        fallbacks=[{"channel": c, "recipient": r} for c, r in fallbacks],
        locale=message.locale,
        dedupe_key=key,
        now=now,
        urgent=urgent,
    )
    return int(written is not None)
