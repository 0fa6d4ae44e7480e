"""The queue engine. The only code that changes tickets; it flushes, the caller commits.

Every function takes plain objects and an explicit `now`, never the request. Each one locks
the rows it changes (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite every transaction is
`BEGIN IMMEDIATE`, so write transactions are serialized anyway), checks the state machine and
the actor's right to act, changes the ticket and appends to the journey log.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from sqlalchemy import and_, event, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, joinedload

from ..accounts.models import Role, User, user_services
from ..branches.models import (
    Branch,
    Counter,
    CounterService,
    CounterStatus,
    PriorityPolicy,
    Service,
)
from ..core.db import is_postgres
from ..core.errors import Conflict, IllegalTransition, InvalidInput, NotAllowed, NotFound
from ..customers.models import Customer
from ..extensions import db
from ..routing import policy as routing
from . import fastpath, journal, states
from .models import PRIORITY_RANK, Priority, Source, Ticket, TicketSequence, TicketStatus, Visit

TOKEN_BYTES = 24  # 192 bits

# what the journal says of a free-text note of staff (the text itself is on the ticket)
NOTE_GIVEN = {"with_note": True}


def format_number(prefix: str, sequence: int) -> str:
    return f"{prefix}{sequence:03d}"


# --- issuing ---------------------------------------------------------------------------------


def next_sequence(branch_id: int, service_id: int, day) -> int:
    """Atomically take the next number of a service's business day.

    One row per (service, day), created by the first ticket and incremented in place by
    `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: the database serializes concurrent
    increments on that row, and the unique index on tickets stands behind it.
    """
    insert = pg_insert if is_postgres(db.session) else sqlite_insert
    stmt = (
        insert(TicketSequence)
        .values(branch_id=branch_id, service_id=service_id, business_day=day, last_value=1)
        .on_conflict_do_update(
            index_elements=[TicketSequence.service_id, TicketSequence.business_day],
            set_={"last_value": TicketSequence.last_value + 1},
        )
        .returning(TicketSequence.last_value)
    )
    return db.session.execute(stmt).scalar_one()


def issue_ticket(
    branch: Branch,
    service: Service,
    *,
    now: datetime,
    priority: Priority = Priority.NORMAL,
    source: Source = Source.KIOSK,
    customer: Customer | None = None,
    appointment_due_at: datetime | None = None,
    actor: User | None = None,
    awaiting_arrival: bool = False,
) -> Ticket:
    """Start a visit with its first ticket, numbered per service and business day.

    `awaiting_arrival`: a remote ticket (virtual mobile queue, `tickets/remote.py`) that may
    be called only once its customer has confirmed arrival (`confirm_arrival`); every other
    ticket is confirmed at issue.
    """
    if service.branch_id != branch.id:
        raise NotFound(f"service {service.code!r} is not offered at branch {branch.code}")
    if not service.active or not branch.active:
        raise Conflict(f"service {service.code!r} is not available now", "service_unavailable")
    if source == Source.APPOINTMENT and appointment_due_at is None:
        raise InvalidInput("an appointment ticket needs its appointment time", "missing_due_at")
    if source != Source.APPOINTMENT and appointment_due_at is not None:
        # routing puts due appointments first: only an appointment may carry a due time
        raise InvalidInput(
            "only an appointment ticket has an appointment time", "unexpected_due_at"
        )
    if awaiting_arrival and source != Source.MOBILE:
        raise InvalidInput("only a remote ticket waits for its arrival", "unexpected_arrival")
    day = branch.business_day(now)
    # the estimate known now (a cache read of `waits.live`), before any row is written or locked
    quoted = quoted_wait(branch, service, now=now, appointment_due_at=appointment_due_at)
    if not awaiting_arrival and fastpath.applies(
        db.session, customer=customer, source=source, appointment_due_at=appointment_due_at
    ):
        # PostgreSQL: the same rows, journal entry and answer in one statement
        ticket = fastpath.issue(
            db.session,
            branch,
            service,
            day=day,
            now=now,
            token=secrets.token_urlsafe(TOKEN_BYTES),
            priority=priority,
            source=source,
            actor_id=actor.id if actor else None,
            quoted_wait_s=quoted,
        )
        if ticket is not None:
            return ticket
        # nothing written: the rows are not what the objects say; the ORM path decides
    visit = Visit(
        branch_id=branch.id,
        customer_id=customer.id if customer else None,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        arrived_at=now,
    )
    db.session.add(visit)
    db.session.flush()
    # the number is taken as late as possible: its row stays locked until the commit
    sequence = next_sequence(branch.id, service.id, day)
    ticket = Ticket(
        visit_id=visit.id,
        visit=visit,
        step=1,
        branch_id=branch.id,
        service_id=service.id,
        service=service,
        business_day=day,
        sequence=sequence,
        number=format_number(service.prefix, sequence),
        priority=priority,
        source=source,
        status=TicketStatus.WAITING,
        issued_at=now,
        queue_since=now,
        appointment_due_at=appointment_due_at,
        recall_count=0,
        arrival_confirmed=not awaiting_arrival,
        moved_back_count=0,
        quoted_wait_s=quoted,
    )
    db.session.add(ticket)
    db.session.flush()
    data = {"source": source.value, "priority": priority.value}
    if awaiting_arrival:
        data["awaiting_arrival"] = True
    journal.record(
        "issued",
        session=db.session,
        branch_id=branch.id,
        now=now,
        ticket=ticket,
        actor_id=actor.id if actor else None,
        data=data,
    )
    return ticket


def quoted_wait(
    branch: Branch, service: Service, *, now: datetime, appointment_due_at: datetime | None
) -> int | None:
    """The wait a new ticket's customer is told, stored as `Ticket.quoted_wait_s`.

    An appointment checked in on time is told "we will call your number around <start>"
    (kiosk, booking/checkin.py): its quoted wait is the time left until the start (0 when
    early is over). Every other ticket is told the estimator's wait of a new ticket of its
    service as the kiosk and the phones show it at that moment (`waits.live.quote`: the
    estimate of the branch's last change, cached; what was known at arrival, as the replay
    quotes); None when no counter serving the service is open ("not known yet").
    """
    if appointment_due_at is not None:
        return max(0, math.ceil((appointment_due_at - now).total_seconds()))
    from ..waits import live

    return live.wire(live.quote(branch, service.id))["estimated_wait_s"]


def issue_plain(
    branch_code: str,
    service_code: str,
    *,
    now: datetime,
    locale: str | None,
    priority: Priority = Priority.NORMAL,
    source: Source = Source.KIOSK,
) -> fastpath.Issued | None:
    """A plain walk-in ticket (no customer, no appointment, no actor) from the codes a kiosk
    sends, in one statement on PostgreSQL (`tickets/fastpath.py`).

    None when that does not apply or the codes do not name an active branch and service:
    nothing was written, and the caller loads the branch and service and calls
    `issue_ticket`, which answers as it always does.
    """
    return fastpath.issue_plain(
        db.session,
        branch_code,
        service_code,
        now=now,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        locale=locale,
        priority=priority,
        source=source,
    )


# --- locking and checks ----------------------------------------------------------------------


# (model, id) of the rows this transaction has locked through `_lock`
_HELD = "queue_app.tickets.locked_rows"


def _lock(model, row_id: int, *options):
    """Load a row afresh and lock it until the transaction ends (no-op lock on SQLite).
    `options`: rows loaded with it in the same statement (joined, not locked).

    Once per transaction: a row this transaction has already locked here is taken from the
    session with no second statement (an API view locks what it checks, then the service
    asks again). Nobody else can have changed it since, and the session's copy carries this
    transaction's own changes. The memory ends with the transaction, and with any savepoint
    (rolling back to a savepoint releases the row locks taken after it).
    """
    held = db.session.info.setdefault(_HELD, set())
    if (model, row_id) in held:
        row = db.session.get(model, row_id)
        if row is not None:
            return row
    row = db.session.scalar(
        select(model)
        .options(*options)
        .where(model.id == row_id)
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(f"no {model.__name__.lower()} {row_id}")
    held.add((model, row_id))
    return row


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, _transaction) -> None:
    session.info.pop(_HELD, None)


def lock_ticket(ticket_id: int) -> Ticket:
    """The ticket, locked for this transaction (NotFound if there is none), with its counter,
    visit and service. For a caller that checks the ticket before an action that locks only
    the ticket (start, finish, recall, no-show, hold, cancel): the action then reads it no
    more. An action that locks a counter first (call, transfer, resume) must not be preceded
    by this, or two requests could take the two locks in opposite orders."""
    return _lock_ticket(ticket_id)


def lock_counter(counter_id: int) -> Counter:
    """The counter, locked for this transaction (NotFound if there is none); see
    `lock_ticket`. Counters are locked before tickets, so a caller may lock one first."""
    return _lock_counter(counter_id)


def _lock_ticket(ticket_id: int) -> Ticket:
    # every action at a counter checks the ticket's counter, the ones that end a visit close
    # it, and every answer names the service: all three come with the locked ticket
    return _lock(
        Ticket,
        ticket_id,
        joinedload(Ticket.counter),
        joinedload(Ticket.visit),
        joinedload(Ticket.service),
    )


def _lock_counter(counter_id: int) -> Counter:
    return _lock(Counter, counter_id)


def _is_supervisor(actor: User, branch: Branch) -> bool:
    return actor.role in {Role.BRANCH_MANAGER, Role.ADMIN} and actor.can_work_floor(branch)


def _require_floor(actor: User, branch: Branch) -> None:
    if not actor.can_work_floor(branch):
        raise NotAllowed(f"{actor.username} may not serve at branch {branch.code}")


def _require_operator(counter: Counter, actor: User) -> None:
    """The actor is the person signed in at the counter, or a supervisor of its branch."""
    _require_floor(actor, counter.branch)
    if counter.staff_id != actor.id and not _is_supervisor(actor, counter.branch):
        raise NotAllowed(f"{counter.name} is operated by someone else", "not_your_counter")


def _require_open(counter: Counter) -> None:
    if counter.status != CounterStatus.OPEN:
        raise Conflict(
            f"{counter.name} is {counter.status.value}, open it first", "counter_not_open"
        )


def active_ticket(counter: Counter) -> Ticket | None:
    return db.session.scalar(
        select(Ticket).where(
            Ticket.counter_id == counter.id,
            Ticket.status.in_((TicketStatus.CALLED, TicketStatus.SERVING)),
        )
    )


def _busy(counter: Counter, number: str, status: TicketStatus) -> Conflict:
    return Conflict(
        f"{counter.name} still has ticket {number} ({status.value}); "
        "finish, transfer or hold it first",
        "counter_busy",
    )


def _require_idle(counter: Counter) -> None:
    current = active_ticket(counter)
    if current is not None:
        raise _busy(counter, current.number, current.status)


def _require_handler(ticket: Ticket, actor: User) -> Counter:
    """Ticket actions at a counter belong to whoever operates that counter."""
    if ticket.counter is None:
        raise Conflict(f"ticket {ticket.number} is not at a counter", "not_at_counter")
    _require_operator(ticket.counter, actor)
    return ticket.counter


def _eligible_service_ids(counter: Counter, staff: User) -> list[int]:
    """The counter's active services that `staff` may serve (`User.is_competent`), in the
    counter's order: one statement, which neither loads the services nor the competences."""
    query = (
        select(CounterService.service_id)
        .join(Service, Service.id == CounterService.service_id)
        .where(CounterService.counter_id == counter.id, Service.active.is_(True))
        .order_by(CounterService.position)
    )
    if not staff.stands_in_for_anyone:
        competences = select(user_services.c.service_id).where(user_services.c.user_id == staff.id)
        query = query.where(CounterService.service_id.in_(competences))
    return list(db.session.scalars(query))


def _policy(branch: Branch) -> routing.Policy:
    return routing.Policy(
        kind=branch.priority_policy,
        interleave_priority=branch.interleave_priority,
        interleave_normal=branch.interleave_normal,
        aging_boost_s=branch.aging_boost_s,
        appointment_early_s=branch.appointment_early_s,
        appointment_grace_s=branch.appointment_grace_s,
    )


def _mark_called(ticket: Ticket, counter: Counter, staff_id: int, now: datetime, actor: User):
    before = ticket.status
    ticket.status = states.target("call", ticket.status)
    ticket.counter_id = counter.id
    ticket.counter = counter
    ticket.staff_id = staff_id
    ticket.target_counter_id = None
    if ticket.called_at is None:
        ticket.called_at = now
    ticket.last_called_at = now
    db.session.flush()
    journal.record(
        "called",
        session=db.session,
        branch_id=ticket.branch_id,
        now=now,
        ticket=ticket,
        actor_id=actor.id,
        from_status=before.value,
    )


# --- calling ---------------------------------------------------------------------------------


def call_next(counter: Counter, actor: User, *, now: datetime) -> Ticket | None:
    """Claim the best waiting ticket for this counter, or None if nobody waits for it.

    The counter row is locked first, so one counter calls one ticket at a time. Candidates are
    read without locks and ordered by the routing policy; then each is claimed in turn with
    `FOR UPDATE SKIP LOCKED` and a re-check of its status, so two counters calling at the same
    instant never get the same ticket and never wait on each other.

    A remote ticket whose customer has not confirmed arrival is never called: when its turn
    comes it goes back `branch.remote_move_back_places` places in its queue, at most
    `branch.remote_move_back_limit` times, then it expires (cancelled, reason `not_arrived`);
    either way the call goes on to the next candidate (`_not_arrived`).
    """
    counter = _lock_counter(counter.id)
    # a closed counter says so before it says whose it is (nobody operates a closed counter)
    _require_floor(actor, counter.branch)
    _require_open(counter)
    _require_operator(counter, actor)
    branch = counter.branch
    staff = counter.staff or actor
    service_ids = _eligible_service_ids(counter, staff)
    # one read for the waiting candidates and for the ticket this counter may still have
    # (`_require_idle`)
    rows = db.session.execute(
        select(
            Ticket.id,
            Ticket.service_id,
            Ticket.priority,
            Ticket.queue_since,
            Ticket.appointment_due_at,
            Ticket.target_counter_id,
            Ticket.status,
            Ticket.number,
        ).where(
            or_(
                and_(
                    Ticket.branch_id == branch.id,
                    Ticket.status == TicketStatus.WAITING,
                    # yesterday's leftovers are closed by a job; never call them meanwhile
                    Ticket.business_day == branch.business_day(now),
                    or_(
                        and_(
                            Ticket.target_counter_id.is_(None),
                            Ticket.service_id.in_(service_ids),
                        ),
                        Ticket.target_counter_id == counter.id,
                    ),
                ),
                and_(
                    Ticket.counter_id == counter.id,
                    Ticket.status.in_((TicketStatus.CALLED, TicketStatus.SERVING)),
                ),
            )
        )
    ).all()
    current = next((r for r in rows if r.status != TicketStatus.WAITING), None)
    if current is not None:
        raise _busy(counter, current.number, current.status)
    candidates = [
        routing.Candidate(
            id=r.id,
            service_id=r.service_id,
            rank=PRIORITY_RANK[r.priority],
            queue_since=r.queue_since,
            appointment_due_at=r.appointment_due_at,
            target_counter_id=r.target_counter_id,
        )
        for r in rows
    ]
    policy = _policy(branch)
    ordered = routing.order(
        candidates,
        counter_id=counter.id,
        service_order=service_ids,
        policy=policy,
        now=now,
        interleave_pos=counter.interleave_pos,
    )
    postgres = is_postgres(db.session)
    for candidate in ordered:
        # with its service, which the answer names
        query = (
            select(Ticket)
            .options(joinedload(Ticket.service))
            .where(Ticket.id == candidate.id, Ticket.status == TicketStatus.WAITING)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Ticket)
        ticket = db.session.scalar(query.execution_options(populate_existing=True))
        if ticket is None:  # another counter claimed it since we read the list
            continue
        if not ticket.arrival_confirmed:
            _not_arrived(ticket, branch, now)
            continue
        _mark_called(ticket, counter, staff.id, now, actor)
        if (
            branch.priority_policy == PriorityPolicy.INTERLEAVE
            and candidate.target_counter_id is None
        ):
            counter.interleave_pos = routing.next_interleave_pos(
                policy, counter.interleave_pos, candidate.rank
            )
        return ticket
    return None


def _not_arrived(ticket: Ticket, branch: Branch, now: datetime) -> None:
    """The turn of a remote ticket (locked) whose customer is not here yet.

    Past the branch's limit of moves it expires. Otherwise it goes back behind the ticket
    `remote_move_back_places` places later in its queue (by its `queue_since`, the queue's
    order), or behind the last one if fewer wait behind it. With nobody behind it there is
    nobody to let go first: it keeps its place and the move is not counted.
    """
    if ticket.moved_back_count >= branch.remote_move_back_limit:
        _transition(ticket, "cancel", None, now, data={"reason": "not_arrived"})
        return
    if ticket.target_counter_id is not None:
        same_queue = Ticket.target_counter_id == ticket.target_counter_id
    else:
        same_queue = (Ticket.service_id == ticket.service_id) & Ticket.target_counter_id.is_(None)
    behind = db.session.scalars(
        select(Ticket.queue_since)
        .where(
            Ticket.branch_id == ticket.branch_id,
            Ticket.status == TicketStatus.WAITING,
            Ticket.business_day == ticket.business_day,
            same_queue,
            tuple_(Ticket.queue_since, Ticket.id) > tuple_(ticket.queue_since, ticket.id),
        )
        .order_by(Ticket.queue_since, Ticket.id)
        .limit(max(branch.remote_move_back_places, 1))
    ).all()
    if not behind:
        return
    ticket.queue_since = behind[-1] + timedelta(microseconds=1)
    ticket.moved_back_count += 1
    db.session.flush()
    journal.record(
        "moved_back",
        session=db.session,
        branch_id=ticket.branch_id,
        now=now,
        ticket=ticket,
        from_status=ticket.status.value,
        data={"reason": "not_arrived", "places": len(behind), "times": ticket.moved_back_count},
    )


def call_ticket(ticket: Ticket, counter: Counter, actor: User, *, now: datetime) -> Ticket:
    """Call one particular waiting ticket to this counter (picked from the waiting list).

    Staff may call a remote ticket whose customer has not confirmed arrival yet: picking one
    ticket is a person's decision (the customer stands at the desk with a flat phone), unlike
    `call_next`, which never does.
    """
    counter = _lock_counter(counter.id)
    ticket = _lock_ticket(ticket.id)
    # a closed counter says so before it says whose it is (nobody operates a closed counter)
    _require_floor(actor, counter.branch)
    _require_open(counter)
    _require_operator(counter, actor)
    if ticket.branch_id != counter.branch_id:
        raise NotFound(f"ticket {ticket.number} is not in this branch")
    states.target("call", ticket.status)
    if ticket.target_counter_id not in (None, counter.id):
        raise NotAllowed(f"ticket {ticket.number} was sent to another counter", "other_counter")
    if ticket.target_counter_id is None and ticket.service_id not in {
        s.id for s in counter.services
    }:
        raise Conflict(f"{counter.name} does not serve {ticket.service.code}", "service_not_served")
    _require_idle(counter)
    _mark_called(ticket, counter, (counter.staff_id or actor.id), now, actor)
    return ticket


# --- at the counter --------------------------------------------------------------------------


def _transition(
    ticket: Ticket, action: str, actor: User | None, now: datetime, data=None, **changes
):
    before = ticket.status
    ticket.status = states.target(action, ticket.status)
    for key, value in changes.items():
        setattr(ticket, key, value)
    if ticket.status in (TicketStatus.FINISHED, TicketStatus.NO_SHOW, TicketStatus.CANCELLED):
        ticket.finished_at = now
        ticket.visit.closed_at = now
    db.session.flush()
    journal.record(
        action,
        session=db.session,
        branch_id=ticket.branch_id,
        now=now,
        ticket=ticket,
        actor_id=actor.id if actor else None,
        from_status=before.value,
        data=data,
    )
    return ticket


def recall(ticket: Ticket, actor: User, *, now: datetime) -> Ticket:
    """Call the same ticket again; past the branch's recall limit it becomes a no-show."""
    ticket = _lock_ticket(ticket.id)
    states.target("recall", ticket.status)
    _require_handler(ticket, actor)
    if ticket.recall_count >= ticket.branch.recall_limit:
        return _transition(ticket, "no_show", actor, now, data={"reason": "recall_limit"})
    return _transition(
        ticket, "recall", actor, now, recall_count=ticket.recall_count + 1, last_called_at=now
    )


def start(ticket: Ticket, actor: User, *, now: datetime) -> Ticket:
    ticket = _lock_ticket(ticket.id)
    states.target("start", ticket.status)
    _require_handler(ticket, actor)
    return _transition(ticket, "start", actor, now, started_at=now)


def finish(
    ticket: Ticket,
    actor: User,
    *,
    now: datetime,
    outcome: str | None = None,
    note: str | None = None,
) -> Ticket:
    ticket = _lock_ticket(ticket.id)
    states.target("finish", ticket.status)
    _require_handler(ticket, actor)
    return _transition(
        ticket,
        "finish",
        actor,
        now,
        data={"outcome": outcome} if outcome else None,
        outcome_code=outcome,
        notes=note,
    )


def mark_no_show(ticket: Ticket, actor: User, *, now: datetime) -> Ticket:
    ticket = _lock_ticket(ticket.id)
    states.target("no_show", ticket.status)
    _require_handler(ticket, actor)
    return _transition(ticket, "no_show", actor, now)


def hold(ticket: Ticket, actor: User, *, now: datetime, note: str | None = None) -> Ticket:
    """Park the ticket (the customer fetches a document); the counter is free meanwhile."""
    ticket = _lock_ticket(ticket.id)
    states.target("hold", ticket.status)
    _require_handler(ticket, actor)
    return _transition(
        ticket,
        "hold",
        actor,
        now,
        # the free text stays on the ticket, which retention blanks; the journal is
        # append-only, so it only says that a note was given
        data=dict(NOTE_GIVEN) if note else None,
        notes=note or ticket.notes,
    )


def resume(ticket: Ticket, actor: User, *, now: datetime) -> Ticket:
    """A held ticket waits again, first in line for the counter that held it.

    If that counter has closed since, nobody holds the ticket any more: it goes back to its
    service's queue (a ticket sent to a closed counter would never be called). The counter is
    locked before the ticket, as everywhere else, so it cannot close in between.
    """
    held_id = db.session.scalar(select(Ticket.counter_id).where(Ticket.id == ticket.id))
    held_at = _lock_counter(held_id) if held_id is not None else None
    ticket = _lock_ticket(ticket.id)
    states.target("resume", ticket.status)
    _require_floor(actor, ticket.branch)
    if ticket.counter_id != held_id:
        raise Conflict(f"ticket {ticket.number} changed meanwhile, try again", "changed")
    if held_at is not None and held_at.status == CounterStatus.CLOSED:
        held_at = None
    if (
        held_at is not None
        and held_at.staff_id != actor.id
        and not _is_supervisor(actor, ticket.branch)
    ):
        raise NotAllowed(f"ticket {ticket.number} is held by {held_at.name}", "not_your_counter")
    return _transition(
        ticket,
        "resume",
        actor,
        now,
        target_counter_id=held_at.id if held_at else None,
        counter_id=None,
    )


def cancel(ticket: Ticket, actor: User, *, now: datetime, reason: str | None = None) -> Ticket:
    """Take the ticket out of the queue. A called ticket belongs to the counter that called it."""
    ticket = _lock_ticket(ticket.id)
    states.target("cancel", ticket.status)
    _require_floor(actor, ticket.branch)
    if ticket.status == TicketStatus.CALLED:
        _require_handler(ticket, actor)
    return _transition(
        ticket,
        "cancel",
        actor,
        now,
        data=dict(NOTE_GIVEN) if reason else None,
        notes=reason or ticket.notes,
    )


def confirm_arrival(ticket: Ticket, *, now: datetime) -> Ticket:
    """A remote ticket's customer is at the branch ("I'm here"): it may be called now.

    Idempotent: a ticket already confirmed is answered as it is. A ticket that is no longer
    active cannot be confirmed (IllegalTransition `ticket_not_active`).
    """
    ticket = _lock_ticket(ticket.id)
    if ticket.arrival_confirmed:
        return ticket
    if not ticket.is_active:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status.value}", "ticket_not_active"
        )
    ticket.arrival_confirmed = True
    ticket.arrival_confirmed_at = now
    db.session.flush()
    journal.record(
        "arrived",
        session=db.session,
        branch_id=ticket.branch_id,
        now=now,
        ticket=ticket,
        from_status=ticket.status.value,
    )
    return ticket


def leave_queue(ticket: Ticket, *, now: datetime, reason: str = "left_by_customer") -> Ticket:
    """The customer takes their waiting ticket out of the queue (from the phone)."""
    ticket = _lock_ticket(ticket.id)
    if ticket.status != TicketStatus.WAITING:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status.value}: only a waiting ticket can "
            "leave the queue",
            "cannot_leave",
        )
    return _transition(ticket, "cancel", None, now, data={"reason": reason})


def close_past_business_days(branch: Branch, *, now: datetime) -> int:
    """Close what is still open from earlier business days of the branch; returns how many.

    Waiting, called and held tickets are cancelled and tickets still in service are finished,
    both with the reason `day_closed` in the journey log, so that yesterday's queue is never
    called today. Nothing is deleted.
    """
    today = branch.business_day(now)
    stale = db.session.scalars(
        select(Ticket)
        .where(
            Ticket.branch_id == branch.id,
            Ticket.business_day < today,
            Ticket.status.in_(
                (TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.SERVING, TicketStatus.HELD)
            ),
        )
        .order_by(Ticket.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for ticket in stale:
        action = "finish" if ticket.status == TicketStatus.SERVING else "cancel"
        _transition(ticket, action, None, now, data={"reason": "day_closed"})
    return len(stale)


def transfer(
    ticket: Ticket,
    actor: User,
    *,
    now: datetime,
    service: Service | None = None,
    counter: Counter | None = None,
    note: str | None = None,
    keep_place: bool | None = None,
) -> Ticket:
    """End this step and start the next one of the same visit, at another service or counter.

    The customer keeps their number. The new step waits at the place of the original arrival
    when `keep_place` (default: the branch's setting), otherwise at the back of the queue.
    A closed counter takes no transfers (nobody would call the ticket there); the counter is
    locked before the ticket, so it cannot close in between.
    """
    if counter is not None:
        counter = _lock_counter(counter.id)
    ticket = _lock_ticket(ticket.id)
    states.target("transfer", ticket.status)
    _require_handler(ticket, actor)
    branch = ticket.branch
    if service is None and counter is None:
        raise InvalidInput("transfer needs a service or a counter", "missing_target")
    if service is not None and (service.branch_id != branch.id or not service.active):
        raise InvalidInput(
            f"service {service.code!r} is not available at {branch.code}", "bad_service"
        )
    if counter is not None and counter.branch_id != branch.id:
        raise InvalidInput(f"counter {counter.id} is not in branch {branch.code}", "bad_counter")
    if counter is not None and counter.status == CounterStatus.CLOSED:
        raise Conflict(f"{counter.name} is closed", "counter_closed")
    new_service = service or ticket.service
    if new_service.id == ticket.service_id and (counter is None or counter.id == ticket.counter_id):
        raise InvalidInput("transfer to the same service and counter", "same_target")
    if keep_place is None:
        keep_place = branch.transfer_keeps_place
    _transition(
        ticket,
        "transfer",
        actor,
        now,
        finished_at=now,
        data={"service": new_service.code, "counter_id": counter.id if counter else None},
    )
    nxt = Ticket(
        visit_id=ticket.visit_id,
        step=ticket.step + 1,
        branch_id=branch.id,
        service_id=new_service.id,
        business_day=branch.business_day(now),
        sequence=None,
        number=ticket.number,
        priority=ticket.priority,
        source=ticket.source,
        status=TicketStatus.WAITING,
        issued_at=now,
        queue_since=ticket.visit.arrived_at if keep_place else now,
        recall_count=0,
        target_counter_id=counter.id if counter else None,
        previous_id=ticket.id,
        handover_note=note,
    )
    db.session.add(nxt)
    db.session.flush()
    journal.record(
        "transferred_in",
        session=db.session,
        branch_id=branch.id,
        now=now,
        ticket=nxt,
        actor_id=actor.id,
        data={"from_ticket": ticket.id},
    )
    return nxt


# --- counters --------------------------------------------------------------------------------


def open_counter(counter: Counter, actor: User, *, now: datetime) -> Counter:
    """Open (or resume after a pause) and sign the actor in at the counter."""
    counter = _lock_counter(counter.id)
    _require_floor(actor, counter.branch)
    taken = counter.status != CounterStatus.CLOSED and counter.staff_id not in (None, actor.id)
    if taken and not _is_supervisor(actor, counter.branch):
        raise Conflict(f"{counter.name} is already open for someone else", "counter_taken")
    elsewhere = db.session.scalar(
        select(Counter).where(
            Counter.staff_id == actor.id,
            Counter.id != counter.id,
            Counter.status != CounterStatus.CLOSED,
        )
    )
    if elsewhere is not None:
        raise Conflict(
            f"{actor.username} is signed in at {elsewhere.name}; close it first",
            "signed_in_elsewhere",
        )
    if counter.status == CounterStatus.OPEN and counter.staff_id == actor.id:
        return counter
    before = counter.status
    counter.status = CounterStatus.OPEN
    counter.staff_id = (
        counter.staff_id if before == CounterStatus.PAUSED and counter.staff_id else actor.id
    )
    counter.pause_reason = None
    counter.status_since = now
    db.session.flush()
    journal.record(
        "counter_opened",
        session=db.session,
        branch_id=counter.branch_id,
        now=now,
        counter_id=counter.id,
        actor_id=actor.id,
        data={"from": before.value},
    )
    return counter


def pause_counter(counter: Counter, actor: User, *, now: datetime, reason: str | None = None):
    counter = _lock_counter(counter.id)
    _require_floor(actor, counter.branch)
    if counter.status != CounterStatus.OPEN:
        raise Conflict(f"{counter.name} is {counter.status.value}, not open", "counter_not_open")
    _require_operator(counter, actor)
    _require_idle(counter)
    counter.status = CounterStatus.PAUSED
    counter.pause_reason = reason
    counter.status_since = now
    db.session.flush()
    journal.record(
        "counter_paused",
        session=db.session,
        branch_id=counter.branch_id,
        now=now,
        counter_id=counter.id,
        actor_id=actor.id,
        data={"reason": reason} if reason else None,
    )
    return counter


def close_counter(counter: Counter, actor: User, *, now: datetime) -> Counter:
    """Close and sign out. Tickets that were sent to this counter go back to their queue."""
    counter = _lock_counter(counter.id)
    if counter.status == CounterStatus.CLOSED:
        raise Conflict(f"{counter.name} is already closed", "counter_closed")
    _require_operator(counter, actor)
    _require_idle(counter)
    released = db.session.execute(
        update(Ticket)
        .where(Ticket.target_counter_id == counter.id, Ticket.status == TicketStatus.WAITING)
        .values(target_counter_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    counter.status = CounterStatus.CLOSED
    counter.staff_id = None
    counter.pause_reason = None
    counter.status_since = now
    db.session.flush()
    journal.record(
        "counter_closed",
        session=db.session,
        branch_id=counter.branch_id,
        now=now,
        counter_id=counter.id,
        actor_id=actor.id,
        data={"released": released} if released else None,
    )
    return counter
