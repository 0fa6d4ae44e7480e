"""What each audience of the floor may see: snapshots and change pushes, as plain JSON data.

Displays, kiosks and phones get public data only (ticket number, service, status, counter
display name): never a customer's name or phone number. Staff get the working view (ticket
ids, priority, waiting since, targeted counter, the customer's masked name when identified).
Everything here reads committed rows through the session it is given.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from ..branches.models import Branch, Counter, Service
from ..customers.privacy import mask_name
from ..tickets import queries
from ..tickets.models import JourneyEvent, Ticket, TicketStatus, Visit

LAST_CALLS = 8
CALL_KINDS = ("called", "recall")
# events after which the positions and estimates of other waiting tickets may have moved
QUEUE_MOVING = {
    "called",
    "cancel",
    "transfer",
    "transferred_in",
    "resume",
    "hold",
    "counter_opened",
    "counter_paused",
    "counter_closed",
    "moved_back",  # a remote ticket not yet in the branch went back a few places
}


# entries that change nothing a lobby display or a kiosk shows (no call, no queue count, no
# estimate): their rooms do not hear them, and each push names the previous one they heard
PUBLIC_QUIET = frozenset({"start", "finish"})


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def branch_info(branch: Branch) -> dict:
    return {
        "code": branch.code,
        "name": branch.name,
        "locale": branch.locale,
        "timezone": branch.timezone,
    }


def service_info(service: Service) -> dict:
    return {
        "code": service.code,
        "prefix": service.prefix,
        "name": service.name,
        "names": dict(service.names or {}),
    }


def counter_public(counter: Counter | None) -> dict | None:
    if counter is None:
        return None
    return {"id": counter.id, "name": counter.name}


def ticket_public(ticket: Ticket, status: str | None = None) -> dict:
    """The ticket as a lobby display, a kiosk or its own phone may see it."""
    return {
        "number": ticket.number,
        "service": service_info(ticket.service),
        "status": status or ticket.status.value,
        "counter": counter_public(ticket.counter),
        "recall_count": ticket.recall_count,
    }


def ticket_staff(ticket: Ticket, status: str | None = None) -> dict:
    customer = ticket.visit.customer if ticket.visit is not None else None
    return {
        **ticket_public(ticket, status),
        "id": ticket.id,
        "priority": ticket.priority.value,
        "source": ticket.source.value,
        "waiting_since": iso(ticket.queue_since),
        "issued_at": iso(ticket.issued_at),
        "called_at": iso(ticket.last_called_at),
        "target_counter_id": ticket.target_counter_id,
        "transferred": ticket.previous_id is not None,
        # the room holds everyone who may view the branch (executives, CX agents too): the
        # masked name; the counter screen reads the name in full from its own state
        "customer": {"name": mask_name(customer.name)} if customer is not None else None,
    }


def service_queues(
    session, branch: Branch, service_ids=None, *, serving=None, event_seq=None, at=None
) -> list[dict]:
    """Waiting count and the estimated wait of a ticket taken now, per active service.

    The estimate is the estimator's (`waits.live`, made at the branch's last change, at most
    once per `EWT_MIN_INTERVAL_S`): `estimated_wait_s` (its mean) and `estimated_wait_range`
    ({low_s, high_s}, what customers read as "10-15 min"); None while no counter serves it.

    `serving` (open counters per service id, `queries.open_counters`) and `event_seq` (as
    `waits.live.branch_estimates` takes it): what the caller read in this transaction already
    (`_floor`); None: read here. `at`: the time of change `event_seq` when the caller holds its
    journal entry (an estimate made here is then of that moment without reading it again).
    """
    from ..waits import live

    waiting = dict(
        session.execute(
            select(Ticket.service_id, func.count())
            .where(
                Ticket.branch_id == branch.id,
                Ticket.status == TicketStatus.WAITING,
                Ticket.target_counter_id.is_(None),
            )
            .group_by(Ticket.service_id)
        ).all()
    )
    if serving is None:
        serving = queries.open_counters(branch.id)[0]
    result = []
    estimates = live.branch_estimates(branch, at, event_seq=event_seq) if serving else None
    for service in branch.services:
        if not service.active or (service_ids is not None and service.id not in service_ids):
            continue
        n = waiting.get(service.id, 0)
        open_ = serving.get(service.id, 0)
        est = estimates.new_wait(service.id) if open_ else None
        result.append(
            {
                **service_info(service),
                "waiting": n,
                "open_counters": open_,
                **live.wire(est),
            }
        )
    return result


def last_calls(session, branch_id: int, limit: int = LAST_CALLS) -> list[dict]:
    """The branch's latest calls and recalls of today's tickets, newest first."""
    rows = session.execute(
        select(JourneyEvent, Ticket)
        .join(Ticket, Ticket.id == JourneyEvent.ticket_id)
        .options(joinedload(Ticket.service))
        .where(JourneyEvent.branch_id == branch_id, JourneyEvent.kind.in_(CALL_KINDS))
        .order_by(JourneyEvent.seq.desc())
        .limit(limit)
    ).all()
    counters = {
        c.id: c for c in session.scalars(select(Counter).where(Counter.branch_id == branch_id))
    }
    return [
        {
            "seq": event.seq,
            "kind": event.kind,
            "at": iso(event.at),
            "ticket": {
                "number": ticket.number,
                "service": service_info(ticket.service),
                "status": ticket.status.value,
            },
            "counter": counter_public(counters.get(event.counter_id)),
        }
        for event, ticket in rows
    ]


def _public_before_query(branch_id: int, seq: int):
    """The sequence number of the branch's last entry before `seq` that displays and kiosks
    heard (NULL when none)."""
    return select(func.max(JourneyEvent.seq)).where(
        JourneyEvent.branch_id == branch_id,
        JourneyEvent.seq < seq,
        JourneyEvent.kind.not_in(PUBLIC_QUIET),
    )


def _floor(
    session, branch_id: int, *, services: bool = True, public_before: int | None = None
) -> tuple[Branch, int | None]:
    """The branch read afresh with its counters, their staff and service links in one
    statement, and with `services` its services in a second: what the pushes show of it,
    without a lazy load per relationship.

    Afresh (`populate_existing`: whatever the session held of it is overwritten): its
    `event_seq` is the committed sequence as of this read, in this transaction, and it is read
    before any row the pushes show next to an estimate; `waits.live` keys its estimate by it
    instead of reading it again (the state it estimates is then never older than that key,
    as when it reads it itself). `public_before`: also `_public_before_query(..., public_before)`
    in the same statement, returned second (0 when none; None without it)."""
    columns = [Branch]
    if public_before is not None:
        columns.append(_public_before_query(branch_id, public_before).scalar_subquery())
    counters = joinedload(Branch.counters)
    options = [counters.joinedload(Counter.staff), counters.joinedload(Counter.service_links)]
    if services:
        options.append(selectinload(Branch.services))
    row = (
        session.execute(
            select(*columns)
            .where(Branch.id == branch_id)
            .options(*options)
            .execution_options(populate_existing=True)
        )
        .unique()
        .one()
    )
    return row[0], (row[1] or 0) if public_before is not None else None


def _seq(session, branch_id: int) -> int:
    return session.scalar(select(Branch.event_seq).where(Branch.id == branch_id)) or 0


# --- snapshots -------------------------------------------------------------------------------


def display_snapshot(session, branch: Branch, device_settings: dict | None) -> dict:
    settings = device_settings or {}
    return {
        "audience": "display",
        "seq": _seq(session, branch.id),
        "every_seq": True,
        "branch": branch_info(branch),
        "calls": last_calls(session, branch.id),
        "services": service_queues(session, branch),
        "messages": [str(m) for m in settings.get("messages", []) if m][:10],
        "images": [str(u) for u in settings.get("images", []) if u][:10],
    }


def kiosk_snapshot(session, branch: Branch) -> dict:
    return {
        "audience": "kiosk",
        "seq": _seq(session, branch.id),
        "every_seq": True,
        "branch": branch_info(branch),
        "services": service_queues(session, branch),
    }


def staff_snapshot(session, branch: Branch) -> dict:
    seq = _seq(session, branch.id)  # read first: anything later is covered by a push
    # the counters first: the tickets' `counter` is then found in the session
    branch_counters = queries.counters_of(branch.id)
    active = queries.active_tickets_by_counter(branch.id, customers=True)
    waiting = session.scalars(
        select(Ticket)
        .options(joinedload(Ticket.service), joinedload(Ticket.visit).joinedload(Visit.customer))
        .where(Ticket.branch_id == branch.id, Ticket.status == TicketStatus.WAITING)
        .order_by(Ticket.queue_since, Ticket.id)
    ).all()
    # what was read here, not read again: the open counters, and the sequence that keys the
    # estimate (read before the rows it is shown next to, as `_floor` does)
    opened = queries.open_counters(branch.id, branch_counters)
    standings = queries.standings(branch.id, waiting, opened=opened, event_seq=seq)
    counters = []
    for counter in branch_counters:
        ticket = active.get(counter.id)
        counters.append(
            {
                "id": counter.id,
                "name": counter.name,
                "status": counter.status.value,
                "pause_reason": counter.pause_reason,
                "since": iso(counter.status_since),
                "staff": {"id": counter.staff.id, "name": counter.staff.display_name}
                if counter.staff is not None
                else None,
                "services": [s.code for s in counter.services],
                "ticket": ticket_staff(ticket) if ticket is not None else None,
            }
        )
    return {
        "audience": "staff",
        "seq": seq,
        "every_seq": True,
        "branch": branch_info(branch),
        "counters": counters,
        "services": service_queues(session, branch, serving=opened[0], event_seq=seq),
        "waiting": [
            {
                **ticket_staff(t),
                "position": standings[t.id][0],
                "estimated_wait_s": standings[t.id][1],
            }
            for t in waiting
        ],
    }


def feedback_snapshot(session, device) -> dict:
    """A feedback tablet's state (`feedback/tablet_state.py`): the survey it shows, if any."""
    from ..core.types import utcnow
    from ..feedback.tablet_state import tablet_state

    seq = _seq(session, device.branch_id)
    return {
        "audience": "feedback",
        "seq": seq,
        # a tablet hears only the finishes of its own counter: gaps are normal
        "every_seq": False,
        **tablet_state(device, utcnow()),
    }


def ticket_view(ticket: Ticket, *, event_seq: int | None = None) -> dict:
    """A ticket's public view with its place and the estimator's wait and range
    (`waits.live`), both None unless it waits and an open counter serves it. `event_seq`: as
    `waits.live.branch_estimates` takes it."""
    from ..waits import live

    position, estimate = queries.standing(ticket, event_seq=event_seq)
    wire = {"estimated_wait_s": None, "estimated_wait_range": None}
    if estimate is not None:
        wire = live.wire(queries.ticket_estimate(ticket, event_seq=event_seq))
    return {
        **ticket_public(ticket),
        "position": position,
        **wire,
        "called_at": iso(ticket.last_called_at),
    }


def ticket_snapshot(session, ticket: Ticket) -> dict:
    return {
        "audience": "ticket",
        "seq": _seq(session, ticket.branch_id),
        # a phone hears only about its own ticket: gaps in the branch sequence are normal
        "every_seq": False,
        "branch": branch_info(ticket.branch),
        "ticket": ticket_view(ticket),
    }


# --- changes ---------------------------------------------------------------------------------


def changes_for(session, branch_id: int, seqs: list[int]) -> list[tuple[str, dict]]:
    """The pushes of a batch of committed journal entries of one branch: (room, payload) pairs,
    in sequence order. Built from the journal rows (what happened, as it was) and the rows they
    point to."""
    return [push for step in change_steps(session, branch_id, seqs) for push in step]


def change_steps(session, branch_id: int, seqs: list[int], wanted=None):
    """`changes_for` in two steps, so the caller can send the first before the second is
    built: the entries' own pushes (display, kiosk, staff and the ticket's room), then the new
    places of the other waiting tickets (one room per ticket: the costly part). The caller may
    end the read transaction between the steps; the second reads the waiting tickets afresh
    and takes the open counters and the sequence the first read with the branch (plain values,
    `_places`), not the branch again.

    `wanted(room)`: only the pushes of rooms it accepts (the rooms somebody listens to);
    the places are computed only when a waiting ticket's room is wanted."""

    want = wanted or (lambda _room: True)
    events = session.scalars(
        select(JourneyEvent)
        .where(JourneyEvent.branch_id == branch_id, JourneyEvent.seq.in_(seqs))
        .order_by(JourneyEvent.seq)
    ).all()
    if not events:
        return
    # `prev` of the public pushes: the entry before each that displays and kiosks heard
    public = any(want(f"{a}:{branch_id}") for a in ("display", "kiosk"))
    branch, public_prev = _floor(
        session, branch_id, public_before=events[0].seq if public else None
    )
    ticket_ids = {e.ticket_id for e in events if e.ticket_id}
    tickets = {
        t.id: t
        for t in session.scalars(
            select(Ticket)
            .options(
                joinedload(Ticket.service), joinedload(Ticket.visit), joinedload(Ticket.counter)
            )
            .where(Ticket.id.in_(ticket_ids))
        )
    }
    counters = {c.id: c for c in branch.counters}
    touched: set[int] = set()
    for e in events:
        if e.ticket_id in tickets:
            touched.add(tickets[e.ticket_id].service_id)
        if e.counter_id in counters and e.kind.startswith("counter_"):
            touched.update(s.id for s in counters[e.counter_id].services)
    seq = branch.event_seq
    opened = queries.open_counters(branch_id, branch.counters)
    serving = opened[0]
    # the estimate is of the moment of the branch's last change: the last entry here if it is
    # that one (`waits.live.branch_estimates`, else it reads it)
    at = events[-1].at if events[-1].seq == seq else None
    queues = (
        service_queues(session, branch, touched, serving=serving, event_seq=seq, at=at)
        if touched
        else []
    )
    out: list[tuple[str, dict]] = []
    for e in events:
        ticket = tickets.get(e.ticket_id)
        counter = counters.get(e.counter_id)
        base = {"seq": e.seq, "kind": e.kind, "at": iso(e.at), "branch": branch.code}
        if ticket is not None:
            mine = [q for q in queues if q["code"] == ticket.service.code]
        else:
            mine = [
                q for q in queues if counter and q["code"] in {s.code for s in counter.services}
            ]
        status = e.to_status
        public = {
            **base,
            "ticket": ticket_public(ticket, status) if ticket is not None else None,
            "counter": counter_public(counter) if counter is not None else None,
            "queues": mine,
        }
        if ticket is not None and public["ticket"] is not None and counter is not None:
            public["ticket"]["counter"] = counter_public(counter)
        staff = {
            **public,
            "ticket": ticket_staff(ticket, status) if ticket is not None else None,
            "counter": {
                **counter_public(counter),
                "status": counter.status.value,
                "staff": {"id": counter.staff.id, "name": counter.staff.display_name}
                if counter.staff is not None
                else None,
            }
            if counter is not None
            else None,
            "actor_id": e.actor_id,
            "from_status": e.from_status,
        }
        if ticket is not None and counter is not None:
            staff["ticket"]["counter"] = counter_public(counter)
        if e.kind not in PUBLIC_QUIET:
            public["prev"] = public_prev
            public_prev = e.seq
            for room in (f"display:{branch_id}", f"kiosk:{branch_id}"):
                if want(room):
                    out.append((room, public))
        if want(f"staff:{branch_id}"):
            out.append((f"staff:{branch_id}", staff))
        if e.kind == "finish" and e.to_status == TicketStatus.FINISHED.value and counter:
            # the feedback tablets of the counter show the survey of the step just finished
            room = f"feedback:{branch_id}:{counter.id}"
            if want(room):
                from ..feedback.tablet_state import finished_survey

                survey = finished_survey(ticket, counter.id)
                if survey is not None:
                    out.append((room, {**base, "survey": survey}))
        if ticket is not None and want(f"ticket:{ticket.id}"):
            out.append(
                (
                    f"ticket:{ticket.id}",
                    {
                        **base,
                        "self": True,
                        "ticket": {**ticket_view(ticket, event_seq=seq), "status": status},
                    },
                )
            )
    # what the second step needs, as plain values: the caller may end the transaction (and
    # expire every row read so far) before it asks for the second step
    moved = [(e.seq, e.kind, e.at) for e in events if e.kind in QUEUE_MOVING]
    own = {e.ticket_id for e in events}
    code = branch.code
    yield out
    out = []
    # the other waiting tickets of the queues that moved hear their new place
    if moved:
        last_seq, last_kind, last_at = moved[-1]
        base = {"seq": last_seq, "kind": last_kind, "at": iso(last_at), "branch": code}

        def moved_queue(t: Ticket) -> bool:
            return t.id not in own and (t.service_id in touched or t.target_counter_id is not None)

        out = _places(session, branch_id, base, want, moved_queue, floor=(opened, seq))
    yield out


def _places(
    session, branch_id: int, base: dict, want, include, floor=None
) -> list[tuple[str, dict]]:
    """The place and estimated wait of each waiting ticket of the branch that `include`
    accepts and whose room is wanted, as a `self: false` push with the fields of `base`.

    `floor`: (`queries.open_counters`, the branch's sequence) as the first step read them with
    the branch (`_floor`), plain values that outlive its transaction; None: read here. The
    waiting tickets are read here, after that sequence: the state shown is never older than the
    estimate's key (`_floor`), and a change meanwhile has a push of its own."""
    from ..waits import live

    # with their branch: the estimate asks for it (`queries.standings`), and what the first
    # step read of it expired with its transaction
    waiting = session.scalars(
        select(Ticket)
        .options(joinedload(Ticket.service), joinedload(Ticket.branch))
        .where(Ticket.branch_id == branch_id, Ticket.status == TicketStatus.WAITING)
        .order_by(Ticket.queue_since, Ticket.id)
    ).all()
    listening = {t.id for t in waiting if want(f"ticket:{t.id}")}
    standings, seq = {}, None
    if listening:
        if floor is None:
            branch, _ = _floor(session, branch_id, services=False)
            floor = (queries.open_counters(branch_id, branch.counters), branch.event_seq)
        opened, seq = floor
        standings = queries.standings(branch_id, waiting, opened=opened, event_seq=seq)
    out = []
    for t in waiting:
        if t.id not in listening or not include(t):
            continue
        position, estimate = standings[t.id]
        wire = live.wire(
            queries.ticket_estimate(t, event_seq=seq) if estimate is not None else None
        )
        out.append(
            (
                f"ticket:{t.id}",
                {
                    **base,
                    "self": False,
                    "ticket": {
                        **ticket_public(t),
                        "position": position,
                        **wire,
                        "called_at": None,
                    },
                },
            )
        )
    return out


def estimate_steps(session, branch: Branch, estimate, wanted=None):
    """The pushes of a newer estimate of the branch's state, made after the change it is for
    was pushed (the change was *pending*, `waits.live`; `pushes.Pusher` sends these when the
    interval ends): a `change` of kind `estimate` that records no entry. `estimate`: the
    `waits.live.Live` just made; its `seq` is the change it is for.

    Two steps, as `change_steps`: the queues of every active service to the display, kiosk and
    staff rooms (`{seq, prev, kind, at, branch, queues}`; `prev` for displays and kiosks: the
    last entry they heard up to `seq`), then each waiting ticket's place and estimate to its
    phone (`{seq, kind, at, branch, self: false, ticket}`). A client applies it when it has
    applied `prev` (or `seq`) and nothing after `seq` (static/js/floor.js)."""
    want = wanted or (lambda _room: True)
    branch_id, seq = branch.id, estimate.seq
    base = {"seq": seq, "kind": "estimate", "at": iso(estimate.at), "branch": branch.code}
    out: list[tuple[str, dict]] = []
    rooms = [f"{a}:{branch_id}" for a in ("display", "kiosk", "staff")]
    floor = None
    if any(want(room) for room in rooms):
        fresh, prev = _floor(session, branch_id, public_before=seq + 1)
        floor = (queries.open_counters(branch_id, fresh.counters), fresh.event_seq)
        queues = service_queues(session, fresh, serving=floor[0][0], event_seq=floor[1])
        public = {**base, "prev": prev, "queues": queues}
        for room in rooms[:2]:
            if want(room):
                out.append((room, public))
        if want(rooms[2]):
            out.append((rooms[2], {**base, "queues": queues}))
    yield out
    yield _places(session, branch_id, base, want, lambda _t: True, floor=floor)
