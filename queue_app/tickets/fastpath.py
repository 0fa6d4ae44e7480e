"""Issuing a plain ticket on PostgreSQL in one statement.

`services.issue_ticket` does its work through the ORM: the visit, the number, the ticket, the
journal entry (numbered at `before_commit`) and, once committed, a second query for the
ticket's position. That is about 8 statements and 14 round trips, and most of the request's
CPU. On PostgreSQL this module does the same writes, and computes the same answer, in ONE
data-modifying statement (`ISSUE`):

0. `ok`: the branch and the service, as they are now: the row exists only if both are active
   and still match what the caller knows about them (ids, codes, prefix, time zone). Every
   other part of the statement reads from it, so a stale cache entry or an inactive service
   writes nothing and returns no row; the caller then takes the ORM path, which answers
   exactly as before (404, 422, 409, or a ticket);
1. `seq`: the service's number for the business day (`INSERT ... ON CONFLICT DO UPDATE ...
   RETURNING`, the same upsert as `services.next_sequence`);
2. `v`, `t`: the visit and its first ticket, numbered like `services.format_number`;
3. `b`: the branch's next event sequence number. The UPDATE joins `t`, so it runs only after
   the number row is locked: the lock order stays "sequence row, then branch row", as in the
   ORM path, and two transactions never wait on each other in opposite orders;
4. `e`: the `issued` journal entry with that sequence number;
5. the answer: the number, the tickets ahead of this one in its queue, the open counters
   serving the service, its expected duration and names (read in the statement's snapshot,
   which does not see the new ticket itself; the ORM path reads the same after its commit).

The ticket stores the wait its customer is shown (`quoted_wait_s`, what feedback compares
with the actual wait): the estimator's wait of a new ticket of the service, read from the
per-process cache of `waits.live` before the statement and bound as a parameter (NULL when no
counter is open); the answer's `estimated_wait_s` is the same value, as on the ORM path.

The journal guarantee is `journal.py`'s: the branch row stays locked from this statement
until the COMMIT that follows it, so per-branch sequence numbers are strictly increasing in
commit order and a reader never sees a gap. A request is one round trip plus COMMIT, and no
read after the commit (a second transaction, whose ROLLBACK at the end of the request would
also make psycopg drop its prepared statements).

It covers a first ticket that needs nothing else: on PostgreSQL, no customer, no appointment,
in a unit of work with no other journal entry waiting (their numbers must stay in the order
the changes were made). Everything else takes the ORM path.

Two entry points:

- `issue(session, branch, service, ...)`: what `services.issue_ticket` calls with ORM objects;
  it returns a `Ticket` attached to the session as if a query had loaded it;
- `issue_plain(session, branch_code, service_code, ...)`: for the API, from the codes in the
  request. The ids, prefix and time zone come from a small per-process cache (`_CACHE`),
  never trusted: the `ok` part of the statement checks them against the rows every time, and
  a mismatch drops the entry and answers None (the caller takes the ORM path). Nothing else
  is cached: names, expected duration, open counters and the active flags are read by the
  statement itself, so a change is seen by the next ticket.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.session import make_transient_to_detached

from ..branches.models import Branch, CounterStatus, Service
from ..core.events import publish
from ..core.types import UTCDateTime
from . import journal
from .models import Priority, Source, Ticket, TicketStatus, Visit

# literals, not parameters: a prepared statement's generic plan can use the partial index
# ix_tickets_waiting only if its WHERE clause is visible in the statement
WAITING = TicketStatus.WAITING.value
OPEN = CounterStatus.OPEN.value

ISSUE = text(
    f"""
WITH ok AS MATERIALIZED (
  SELECT s.expected_duration_s, s.name, s.names,
         (SELECT count(*) FROM tickets w
           WHERE w.branch_id = :branch_id AND w.status = '{WAITING}'
             AND w.service_id = :service_id AND w.target_counter_id IS NULL
             AND w.queue_since <= :now) AS ahead,
         (SELECT count(*) FROM counter_services cs JOIN counters c ON c.id = cs.counter_id
           WHERE cs.service_id = :service_id AND c.status = '{OPEN}') AS open_counters
  FROM services s JOIN branches b ON b.id = s.branch_id
  WHERE s.id = :service_id AND b.id = :branch_id AND s.code = :service_code
    AND b.code = :branch_code AND s.prefix = :prefix AND b.timezone = :timezone
    AND s.active AND b.active
    AND (CAST(:estimated_seq AS bigint) IS NULL OR b.event_seq = :estimated_seq)
), seq AS (
  INSERT INTO ticket_sequences (branch_id, service_id, business_day, last_value)
  SELECT :branch_id, :service_id, :day, 1 FROM ok
  ON CONFLICT (service_id, business_day)
  DO UPDATE SET last_value = ticket_sequences.last_value + 1
  RETURNING last_value
), v AS (
  INSERT INTO visits (branch_id, token, arrived_at)
  SELECT :branch_id, :token, :now FROM seq
  RETURNING id
), t AS (
  INSERT INTO tickets (visit_id, step, branch_id, service_id, business_day, sequence, number,
                       priority, source, status, issued_at, queue_since, recall_count,
                       quoted_wait_s)
  SELECT v.id, 1, :branch_id, :service_id, :day, seq.last_value,
         :prefix || CASE WHEN seq.last_value < 1000
                         THEN lpad(seq.last_value::text, 3, '0')
                         ELSE seq.last_value::text END,
         :priority, :source, '{WAITING}', :now, :now, 0,
         CAST(:quoted_wait_s AS integer)
  FROM v, seq, ok
  RETURNING id, visit_id, sequence, number, quoted_wait_s
), b AS (
  UPDATE branches SET event_seq = branches.event_seq + 1
  FROM t
  WHERE branches.id = :branch_id
  RETURNING branches.event_seq
), e AS (
  INSERT INTO journey_events (branch_id, seq, at, kind, visit_id, ticket_id, actor_id,
                              to_status, data)
  SELECT :branch_id, b.event_seq, :now, 'issued', t.visit_id, t.id,
         CAST(:actor_id AS integer), '{WAITING}', CAST(:data AS json)
  FROM t, b
)
SELECT t.id, t.visit_id, t.sequence, t.number, t.quoted_wait_s, b.event_seq,
       ok.ahead, ok.open_counters, ok.expected_duration_s, ok.name, ok.names
FROM t, b, ok
"""  # constants of this module (enum values); values are parameters  # nosec B608
).bindparams(
    bindparam("now", type_=UTCDateTime()),
)

# what `issue_plain` needs to know about a branch before it can write: one query on a miss
BRANCH_SERVICES = text(
    """
SELECT b.id, b.timezone, s.code, s.id, s.prefix
FROM branches b LEFT JOIN services s ON s.branch_id = b.id
WHERE b.code = :code AND b.active
"""
)


@dataclass(frozen=True, slots=True)
class Issued:
    """A ticket issued by `issue_plain`: everything its answer shows."""

    id: int
    visit_id: int
    number: str
    token: str
    branch_code: str
    service_code: str
    service_name: str
    priority: Priority
    source: Source
    issued_at: datetime
    position: int
    estimated_wait_s: int | None


@dataclass(frozen=True, slots=True)
class _BranchKey:
    id: int
    timezone: str
    zone: ZoneInfo
    services: dict  # code -> (id, prefix)


_CACHE: dict[tuple[int, str], _BranchKey] = {}
_CACHE_MAX = 4096  # branches per process; a bound, not a tuning knob
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def applies(
    session: Session,
    *,
    customer,
    source: Source,
    appointment_due_at: datetime | None,
) -> bool:
    """Can this ticket be issued by the one statement?"""
    return (
        customer is None
        and appointment_due_at is None
        and source != Source.APPOINTMENT
        and not journal.pending(session)
        and session.get_bind().dialect.name == "postgresql"
    )


def _run(
    session: Session,
    *,
    branch_id: int,
    branch_code: str,
    timezone: str,
    service_id: int,
    service_code: str,
    prefix: str,
    day: date,
    now: datetime,
    token: str,
    priority: Priority,
    source: Source,
    actor_id: int | None,
    quoted_wait_s: int | None,
    estimated_seq: int | None = None,
    autocommit: bool = False,
):
    """Execute `ISSUE`; the row, or None when `ok` found nothing (nothing was written).

    `autocommit`: the statement is the whole unit of work and commits itself (see
    `issue_plain`); otherwise it joins the session's transaction and the caller commits.
    """
    if autocommit:
        connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    else:
        connection = session.connection()
    row = connection.execute(
        ISSUE,
        {
            "branch_id": branch_id,
            "branch_code": branch_code,
            "timezone": timezone,
            "service_id": service_id,
            "service_code": service_code,
            "prefix": prefix,
            "day": day,
            "token": token,
            "now": now,
            "priority": priority.value,
            "source": source.value,
            "actor_id": actor_id,
            "quoted_wait_s": quoted_wait_s,
            "estimated_seq": estimated_seq,
            # the text the ORM's JSON type stores for the same entry
            "data": json.dumps({"source": source.value, "priority": priority.value}),
        },
    ).one_or_none()
    if row is None:
        return None
    publish(
        session,
        "journey",
        branch_id=branch_id,
        seq=row.event_seq,
        kind="issued",
        ticket_id=row.id,
        counter_id=None,
    )
    return row


def _standing(row) -> tuple[int, int | None]:
    """The issue answer's (position, estimate): the place from the statement's count, the wait
    quoted at issue (what `queries.issue_standing` answers on the ORM path)."""
    return row.ahead + 1, row.quoted_wait_s


def _attach(session: Session, obj, relations: dict) -> None:
    """Put a fully populated new object in the session as if a query had loaded it."""
    make_transient_to_detached(obj)
    session.add(obj)
    for name, value in relations.items():
        set_committed_value(obj, name, value)


def issue(
    session: Session,
    branch: Branch,
    service: Service,
    *,
    day: date,
    now: datetime,
    token: str,
    priority: Priority,
    source: Source,
    actor_id: int | None,
    quoted_wait_s: int | None,
) -> Ticket | None:
    """Issue the first ticket of a new visit in one statement; None if it could not.

    None means nothing was written (the branch or the service is inactive or not what the
    objects say): the caller takes the ORM path, which gives the proper answer.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()  # the statement runs on the connection, without the ORM's autoflush
    row = _run(
        session,
        branch_id=branch.id,
        branch_code=branch.code,
        timezone=branch.timezone,
        service_id=service.id,
        service_code=service.code,
        prefix=service.prefix,
        day=day,
        now=now,
        token=token,
        priority=priority,
        source=source,
        actor_id=actor_id,
        quoted_wait_s=quoted_wait_s,
    )
    if row is None:
        return None
    visit = Visit(
        id=row.visit_id,
        branch_id=branch.id,
        customer_id=None,
        token=token,
        arrived_at=now,
        closed_at=None,
    )
    ticket = Ticket(
        id=row.id,
        visit_id=row.visit_id,
        step=1,
        branch_id=branch.id,
        service_id=service.id,
        business_day=day,
        sequence=row.sequence,
        number=row.number,
        priority=priority,
        source=source,
        status=TicketStatus.WAITING,
        issued_at=now,
        queue_since=now,
        appointment_due_at=None,
        called_at=None,
        last_called_at=None,
        started_at=None,
        finished_at=None,
        recall_count=0,
        counter_id=None,
        staff_id=None,
        target_counter_id=None,
        previous_id=None,
        outcome_code=None,
        notes=None,
        handover_note=None,
        quoted_wait_s=row.quoted_wait_s,
    )
    _attach(session, visit, {"branch": branch, "customer": None, "tickets": [ticket]})
    _attach(
        session,
        ticket,
        {
            "visit": visit,
            "branch": branch,
            "service": service,
            "counter": None,
            "target_counter": None,
            "staff": None,
            "previous": None,
        },
    )
    ticket.__dict__["_standing"] = _standing(row)
    return ticket


def precomputed_standing(ticket: Ticket) -> tuple[int | None, int | None] | None:
    """The (position, estimate) `issue` computed for this ticket in its statement.

    Given once, and only while the ticket still waits in its service's queue as issued;
    anything else asks `queries.standing`.
    """
    standing = ticket.__dict__.pop("_standing", None)
    if standing is None or ticket.status != TicketStatus.WAITING:
        return None
    if ticket.target_counter_id is not None or ticket.queue_since != ticket.issued_at:
        return None
    return standing


def _session(session) -> Session:
    """The Session itself, also when given Flask-SQLAlchemy's scoped proxy of it."""
    return session() if isinstance(session, scoped_session) else session


def _plausible(code: str) -> bool:
    return 0 < len(code) <= 64 and "\x00" not in code


def _branch_key(session: Session, code: str) -> _BranchKey | None:
    key = (id(session.get_bind()), code)
    entry = _CACHE.get(key)
    if entry is not None:
        return entry
    rows = session.connection().execute(BRANCH_SERVICES, {"code": code}).all()
    if not rows:
        return None
    branch_id, timezone = rows[0][0], rows[0][1]
    entry = _BranchKey(
        id=branch_id,
        timezone=timezone,
        zone=ZoneInfo(timezone),
        services={r[2]: (r[3], r[4]) for r in rows if r[2] is not None},
    )
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = entry
    return entry


def _forget(session: Session, code: str) -> None:
    with _CACHE_LOCK:
        _CACHE.pop((id(session.get_bind()), code), None)


def issue_plain(
    session: Session,
    branch_code: str,
    service_code: str,
    *,
    now: datetime,
    token: str,
    locale: str | None,
    priority: Priority = Priority.NORMAL,
    source: Source = Source.KIOSK,
) -> Issued | None:
    """Issue a plain walk-in ticket from the codes of a request, or None.

    None means nothing was written and the caller must take the ORM path (`issue_ticket`
    with the loaded branch and service), which answers as it always did: not PostgreSQL, an
    unknown or inactive branch or service, a stale cache entry, a source the fast path does
    not cover.
    """
    if source == Source.APPOINTMENT or journal.pending(session):
        return None
    if not (_plausible(branch_code) and _plausible(service_code)):
        return None  # names nothing; NUL cannot even be sent to PostgreSQL
    if session.get_bind().dialect.name != "postgresql":
        return None
    branch = _branch_key(session, branch_code)
    if branch is None:
        return None
    service = branch.services.get(service_code)
    if service is None:
        _forget(session, branch_code)  # perhaps a service added since: ask again next time
        return None
    service_id, prefix = service
    from ..waits import live

    known, pending = live.last_estimates_pending(branch.id)
    if known is None:
        return None  # a cold process: the ORM path estimates the branch once
    quoted = live.wire(known.new_wait(service_id))["estimated_wait_s"]
    # the quote must be for the branch's state now (the statement checks the sequence), unless
    # the estimator may not run again yet (`EWT_MIN_INTERVAL_S`): then the last one stands
    estimated_seq = None if pending else known.seq
    row = _run(
        # the statement is the unit of work when nothing else has touched the database in
        # this request: it commits inside the server, so the number row and the branch row
        # are locked only while PostgreSQL runs it and flushes the commit, never while this
        # thread waits for the GIL between the statement and a COMMIT. The caller's
        # `session.commit()` then only delivers the events.
        session,
        branch_id=branch.id,
        branch_code=branch_code,
        timezone=branch.timezone,
        service_id=service_id,
        service_code=service_code,
        prefix=prefix,
        day=now.astimezone(branch.zone).date(),  # Branch.business_day
        now=now,
        token=token,
        priority=priority,
        source=source,
        actor_id=None,
        quoted_wait_s=quoted,
        estimated_seq=estimated_seq,
        autocommit=not _session(session).in_transaction(),
    )
    if row is None:
        _forget(session, branch_code)
        return None
    position, wait = _standing(row)
    return Issued(
        id=row.id,
        visit_id=row.visit_id,
        number=row.number,
        token=token,
        branch_code=branch_code,
        service_code=service_code,
        # Service.display_name
        service_name=(row.names or {}).get(locale or "", row.name),
        priority=priority,
        source=source,
        issued_at=now,
        position=position,
        estimated_wait_s=wait,
    )
